"""The network and training regime of ``encoder="tfidf-e5"`` (the encoder is :mod:`._hybrid`).

:class:`HybridClassifierNetwork` is one linear model over [TF-IDF (sparse),
standardised e5 features]: an ``nn.EmbeddingBag`` applied with the TF-IDF
values as ``per_sample_weights`` and an ``nn.Linear`` on the dense channel,
:class:`HybridNetwork`. :class:`HybridRegime` computes the e5 features once
per fit through the module prediction uses (and the feature cache), then
trains on rows of (TF-IDF ids, values, dense vector); FGM perturbs both inputs
of the head, each with its own norm.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import nn

from ..training.base_regime import Regime
from ._base import EncoderNetwork, pad_ids
from ._e5_memory import E5_WIDTH, E5MeanPool

__all__ = ["HybridClassifierNetwork", "HybridNetwork", "HybridRegime"]

logger = logging.getLogger("sktail")


class HybridNetwork(EncoderNetwork):
    """The dense channel: ``(e5(text) - mean) / scale * dense_scale``.

    Parameters
    ----------
    features : E5MeanPool
        The frozen feature extractor.
    dense_scale : float
        Factor on the standardised features.
    """

    def __init__(self, features: E5MeanPool, dense_scale: float):
        super().__init__()
        self.hidden_size = E5_WIDTH
        self.dense_scale = float(dense_scale)
        self.features = features
        self.register_buffer("mean", torch.zeros(E5_WIDTH))
        self.register_buffer("scale", torch.ones(E5_WIDTH))

    def standardize(self, raw: torch.Tensor) -> torch.Tensor:
        """Standardise and scale raw pooled features (the same arithmetic as training's)."""
        return (raw.float() - self.mean) / self.scale * self.dense_scale

    def forward(self, batch):
        """The batch's ready dense vectors (training) or those of its e5 ids."""
        if "dense" in batch:
            return batch["dense"]
        return self.standardize(self.features(batch))

    def input_embeddings(self):
        """None: FGM perturbs each batch's inputs (see :meth:`HybridRegime.adversarial`)."""
        return None


class HybridClassifierNetwork(nn.Module):
    """One linear model over [TF-IDF (sparse), dense]: ``x W_lex + d W_dense + b``, zero-initialised.

    Parameters
    ----------
    encoder : HybridNetwork
        The dense channel.
    vocab_size : int
        TF-IDF features ``V``.
    n_classes : int
        Logits ``K``.
    dropout : float
        Dropout on the TF-IDF values and on the dense vector.
    """

    def __init__(self, encoder: HybridNetwork, vocab_size: int, n_classes: int, dropout: float):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        # nn.EmbeddingBag's own normal_ initialisation, then zeros: the draws keep the random
        # stream of later dropout as it was; on the meta device of a model file's shape check
        # there is nothing to draw (and normal_ would cost seconds of decomposition imports).
        table = torch.empty(max(1, int(vocab_size)), n_classes)
        if not table.is_meta:
            nn.init.normal_(table)
        self.lexical = nn.EmbeddingBag(table.shape[0], n_classes, mode="sum", _weight=table)
        nn.init.zeros_(self.lexical.weight)
        self.head = nn.Linear(encoder.hidden_size, n_classes)
        for tensor in (self.head.weight, self.head.bias):
            nn.init.zeros_(tensor)

    def forward(self, batch):
        """Raw logits; the head runs in float32 whatever the autocast around it."""
        dense = self.encoder(batch)
        with torch.autocast(dense.device.type, enabled=False):
            values = self.dropout(batch["lex_values"].float())
            lexical = self.lexical(batch["lex_ids"], batch["lex_offsets"],
                                   per_sample_weights=values)
            return lexical + self.head(self.dropout(dense.float()))


def _lexical_batch(ids, values) -> dict:
    lengths = np.fromiter((len(a) for a in ids), dtype=np.int64, count=len(ids))
    offsets = np.zeros(len(ids), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    flat = np.concatenate(ids) if lengths.sum() else np.zeros(0, dtype=np.int64)
    return {"lex_ids": torch.from_numpy(flat.astype(np.int64, copy=False)),
            "lex_offsets": torch.from_numpy(offsets),
            "lex_values": torch.from_numpy(np.asarray(values, dtype=np.float32))}


class _RowCollator:
    """Batches of training rows ``(TF-IDF ids, TF-IDF values, dense vector)``."""

    @staticmethod
    def collate(rows):
        batch = _lexical_batch([r[0] for r in rows], np.concatenate([r[1] for r in rows]))
        dense = np.stack([r[2] for r in rows]).astype(np.float32, copy=False)
        batch["dense"] = torch.from_numpy(dense)
        return batch


class _E5Collator:
    """Pads e5 ids (for feature extraction)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def collate(self, ids):
        input_ids, attention_mask = pad_ids(ids, self.pad_id)
        return {"input_ids": input_ids, "attention_mask": attention_mask}


class HybridRegime(Regime):
    """e5 features once per fit (inference mode, feature cache); TF-IDF weights and head train.

    Parameters
    ----------
    cache : None, str, os.PathLike or joblib.Memory, default=None
        The ``feature_cache`` parameter.

    Attributes
    ----------
    n_encoded_ : int
        Distinct texts run through e5 by :meth:`prepare` (0: all from the cache).
    encoding_seconds_ : float
        Time spent obtaining the features.
    """

    name = "all"
    defaults: dict = {}
    distributed = False

    def __init__(self, cache=None):
        self.cache = cache
        self._network = None

    def setup(self, network):
        """The whole classifier network trains (e5 is not part of it)."""
        self._network = network
        return network

    def features(self, trainer, e5_ids) -> np.ndarray:
        """Raw pooled e5 features of the texts, on the path ``predict`` takes.

        Parameters
        ----------
        trainer : Trainer
        e5_ids : list of ndarray

        Returns
        -------
        ndarray of float32, shape (n_texts, 384)
        """
        from ..devices import resolve_inference_precision
        from ..inference import extract_features, inference_batch_size, open_feature_cache
        from ..training.cached_features import _requested_precision

        config, module = trainer.config, self._network.encoder.features
        # The path predict() resolves too (AutoTailClassifier._logits), as for cached features.
        precision = resolve_inference_precision(
            _requested_precision(config), config.device, self._network)
        start = time.perf_counter()
        features, self.n_encoded_ = extract_features(
            module, _E5Collator(trainer.encoder.e5_pad_id_), e5_ids,
            batch_size=inference_batch_size(config.batch_size), device=config.device, precision=precision,
            cache=open_feature_cache(self.cache, module, precision=precision),
            progress=config.verbose >= 1,
        )
        self.encoding_seconds_ = time.perf_counter() - start
        logger.info("e5 features of %d texts: %d encoded, %d from the cache (%.1fs)", len(e5_ids),
                    self.n_encoded_, len(e5_ids) - self.n_encoded_, self.encoding_seconds_)
        return features

    def prepare(self, trainer, train, validation):
        """Rows (TF-IDF ids, values, standardised scaled e5 vector); statistics of training rows."""
        from ..training.cached_features import standardization

        ids, y, w = train
        all_ids = list(ids) + ([] if validation is None else list(validation[0]))
        parts = [trainer.encoder.split_ids(a) for a in all_ids]
        raw = self.features(trainer, [p[2] for p in parts])
        mean, scale = standardization(raw[: len(ids)])
        encoder = self._network.encoder
        with torch.no_grad():
            encoder.mean.copy_(torch.from_numpy(mean))
            encoder.scale.copy_(torch.from_numpy(scale))
        dense = (raw - mean) / scale * np.float32(encoder.dense_scale)
        lex_ids = [p[0] for p in parts]
        values = trainer.encoder.vectorizer.values(lex_ids, [p[1] for p in parts])
        values = np.split(values, np.cumsum([len(a) for a in lex_ids])[:-1])
        rows = list(zip(lex_ids, values, dense))
        head_validation = None if validation is None else (rows[len(ids) :], validation[1])
        return (rows[: len(ids)], y, w), head_validation

    def collator(self, encoder):
        """Batches of prepared rows."""
        return _RowCollator()

    def adversarial(self, network, batch):
        """Both inputs of the head, made leaves: the batch's TF-IDF values and dense vectors."""
        values, dense = nn.Parameter(batch["lex_values"]), nn.Parameter(batch["dense"])
        return {**batch, "lex_values": values, "dense": dense}, (values, dense)

    def context(self, device):
        """One intra-op thread on the CPU while the head trains (as for cached features)."""
        from ..training.cached_features import _one_cpu_thread

        return _one_cpu_thread(device)
