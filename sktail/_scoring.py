"""Scoring texts with a fitted network: frozen features through the feature cache and a memo.

A model whose encoder is frozen (the default ``"tfidf-e5"``, whose e5 channel
never trains, or ``train_encoder="none"``) is scored in two steps: the frozen
module's features of each text, then the trained part over them. The features
come, in this order, from

1. the memo of the model's last scored batch (``predict`` then
   ``predict_proba`` on the same texts encode once);
2. the ``feature_cache`` folder, under the namespace fits use (the frozen
   module's fingerprint and the inference path, keys from the token ids), so a
   grid search scores its folds from the features its fits computed;
3. the frozen module itself, whose new features fill the cache.

Every other model runs its whole network (:func:`sktail.inference.predict_logits`).
The memo lives on the frozen module of the fitted network: a refit builds a new
network, and pickles and model files hold state dicts only, so it never
travels with a model.
"""

from __future__ import annotations

import numpy as np
import torch

from ._feature_cache import text_keys
from .inference import extract_features, open_feature_cache, predict_logits

__all__ = ["MEMO_ROWS", "frozen_scorer", "score_texts"]

#: Most texts whose features a fitted model remembers from its last scored batch
#: (32,768 rows of 384 float32 features are 48 MiB).
MEMO_ROWS = 32768
_MEMO = "_sktail_last_features"
#: Rows of the trained part scored at once over ready features.
_HEAD_ROWS = 1024


class FrozenScorer:
    """The frozen module of a network, the ids it reads, and the trained part over its features.

    Parameters
    ----------
    network : torch.nn.Module
        The whole classifier network (put in eval mode while scoring).
    module : torch.nn.Module
        The frozen feature extractor (its output is what the cache holds).
    feature_ids : callable
        Maps the model's token ids to the ids ``module`` reads.
    collator : object
        Its ``collate(ids)`` pads the ids ``module`` reads.
    head : callable
        ``head(ids, features)`` maps the model's token ids and the raw features
        of a few rows to their logits (a float32 tensor).
    """

    def __init__(self, network, module, feature_ids, collator, head):
        self.network, self.module = network, module
        self.feature_ids, self.collator, self.head = feature_ids, collator, head
        self._keys, self._features = [], []

    def _memo_key(self, precision, device) -> tuple:
        return precision.cache_tag, str(device)

    def features(self, ids, *, batch_size, device, precision, feature_cache, progress) -> np.ndarray:
        """Raw features of the texts: from the memo, else the cache, else computed (and cached).

        Parameters
        ----------
        ids : list of ndarray
            The model's token ids of the texts.
        batch_size : int
            Texts per forward pass of the frozen module.
        device : torch.device
            Where the frozen module runs.
        precision : InferencePrecision
            The inference path (the one the fit computed its features on).
        feature_cache : None, str, os.PathLike or joblib.Memory
            The classifier's ``feature_cache`` parameter.
        progress : bool
            Show a progress bar.

        Returns
        -------
        ndarray of float32, shape (n_texts, hidden_size)
        """
        inner = self.feature_ids(ids)
        keys = text_keys(inner)
        features = np.zeros((len(ids), self.module.hidden_size), dtype=np.float32)
        found = np.zeros(len(ids), dtype=bool)
        memo = getattr(self.module, _MEMO, None)
        if memo is not None and memo[0] == self._memo_key(precision, device):
            rows = {key: row for row, key in enumerate(memo[1].tolist())}
            for row, key in enumerate(keys.tolist()):
                hit = rows.get(key)
                if hit is not None:
                    features[row], found[row] = memo[2][hit], True
        missing = np.flatnonzero(~found)
        if len(missing):
            cache = open_feature_cache(feature_cache, self.module, precision=precision)
            features[missing], _ = extract_features(
                self.module, self.collator, [inner[i] for i in missing], batch_size=batch_size, device=device,
                precision=precision, cache=cache, progress=progress, desc="predict",
            )
        self._keys.append(keys)
        self._features.append(features)
        return features

    def logits(self, ids, features) -> np.ndarray:
        """Logits of the texts from their raw features, in blocks of rows.

        Parameters
        ----------
        ids : list of ndarray
            The model's token ids of the texts.
        features : ndarray of float32, shape (n_texts, hidden_size)
            Their raw features (:meth:`features`).

        Returns
        -------
        ndarray of float32, shape (n_texts, n_classes)
        """
        out = np.empty((len(ids), self.network.head.out_features), dtype=np.float32)
        was_training = self.network.training
        self.network.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(ids), _HEAD_ROWS):
                    rows = slice(start, start + _HEAD_ROWS)
                    out[rows] = self.head(ids[rows], torch.from_numpy(features[rows])).float().cpu().numpy()
        finally:
            self.network.train(was_training)
        return out

    def remember(self, precision, device) -> None:
        """Keep the features of the batch just scored on the module (up to :data:`MEMO_ROWS` texts).

        Parameters
        ----------
        precision : InferencePrecision
            The path the features were computed on.
        device : torch.device
            Where they were computed.
        """
        keys = np.concatenate(self._keys) if self._keys else np.zeros(0, dtype="S16")
        self._keys, features, self._features = [], self._features, []
        if 0 < len(keys) <= MEMO_ROWS:
            setattr(self.module, _MEMO, (self._memo_key(precision, device), keys, np.concatenate(features)))
        elif hasattr(self.module, _MEMO):
            delattr(self.module, _MEMO)


def _hybrid_scorer(network, encoder):
    from .encoders._hybrid_network import _E5Collator, _lexical_batch

    dense_channel = network.encoder

    def feature_ids(ids):
        return [encoder.split_ids(a)[2] for a in ids]

    def head(ids, raw):
        parts = [encoder.split_ids(a) for a in ids]
        lex_ids = [p[0] for p in parts]
        batch = _lexical_batch(lex_ids, encoder.vectorizer.values(lex_ids, [p[1] for p in parts]))
        raw = raw.to(dense_channel.mean.device)
        batch = {k: v.to(raw.device) for k, v in batch.items()}
        batch["dense"] = dense_channel.standardize(raw)
        return network(batch)

    return FrozenScorer(network, dense_channel.features, feature_ids, _E5Collator(encoder.e5_pad_id_), head)


def frozen_scorer(network, encoder, *, frozen: bool):
    """The two-step scoring of a fitted network whose encoder is frozen, or None.

    Parameters
    ----------
    network : torch.nn.Module
        The fitted classifier network.
    encoder : TextEncoder
        The fitted encoder.
    frozen : bool
        Whether a :class:`~sktail.encoders.TextClassifierNetwork` was fitted with
        its encoder frozen (``train_encoder="none"``); the ``"tfidf-e5"``
        network is always frozen.

    Returns
    -------
    FrozenScorer or None
        None for networks whose encoder trained.
    """
    from .encoders._base import TextClassifierNetwork
    from .encoders._hybrid_network import HybridClassifierNetwork

    if isinstance(network, HybridClassifierNetwork):
        return _hybrid_scorer(network, encoder)
    if frozen and type(network) is TextClassifierNetwork:
        return FrozenScorer(network, network.encoder, list, encoder,
                            lambda ids, raw: network.head(network.dropout(raw.to(network.head.weight.device))))
    return None


def score_texts(network, encoder, texts, *, max_length, batch_size, device, precision, chunk_size,
                progress=False, frozen=False, feature_cache=None) -> np.ndarray:
    """Logits of texts, tokenized and scored ``chunk_size`` at a time (memory stays bounded).

    Parameters
    ----------
    network : torch.nn.Module
        The fitted classifier network, on ``device``.
    encoder : TextEncoder
        The fitted encoder.
    texts : list of str
        Texts.
    max_length : int
        Tokens per text.
    batch_size : int
        Texts per forward pass.
    device : torch.device
        Where to run.
    precision : InferencePrecision
        The inference path.
    chunk_size : int
        Texts tokenized together.
    progress : bool, default=False
        Show progress bars.
    frozen : bool, default=False
        The fit kept a pretrained encoder frozen (see :func:`frozen_scorer`).
    feature_cache : None, str, os.PathLike or joblib.Memory, default=None
        Where frozen features are looked up and stored.

    Returns
    -------
    ndarray of float32, shape (n_texts, n_classes)
        Logits in the input order.
    """
    logits = np.empty((len(texts), network.head.out_features), dtype=np.float32)
    scorer = frozen_scorer(network, encoder, frozen=frozen)
    for start in range(0, len(texts), chunk_size):
        chunk = texts[start : start + chunk_size]
        ids = encoder.tokenize(chunk, max_length)
        if scorer is None:
            out = predict_logits(network, encoder, ids, batch_size=batch_size, device=device,
                                 precision=precision, progress=progress)
        else:
            features = scorer.features(ids, batch_size=batch_size, device=device, precision=precision,
                                       feature_cache=feature_cache, progress=progress)
            out = scorer.logits(ids, features)
        logits[start : start + len(chunk)] = out
    if scorer is not None:
        scorer.remember(precision, device)
    return logits
