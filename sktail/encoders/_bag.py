"""The built-in offline encoder: a mean bag of jieba word, character and bigram embeddings."""

from __future__ import annotations

import json
import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from torch import nn

from .._tokenize import PAD, UNK, JiebaVocabulary
from ._base import EncoderNetwork, TextEncoder

__all__ = ["BagEncoder", "BagNetwork", "MAX_EMBEDDING_DIM", "MAX_TABLE_BYTES"]

#: Widest embedding accepted (``encoder_options={"embedding_dim": ...}``); the default is 64.
MAX_EMBEDDING_DIM = 65536
#: Largest embedding table built (float32 bytes; the model-file limit on the weights).
MAX_TABLE_BYTES = 8 << 30


class BagNetwork(EncoderNetwork):
    """Mean of token embeddings (``nn.EmbeddingBag``), with token dropout in training.

    Parameters
    ----------
    vocab_size : int
        Number of rows of the embedding table.
    embedding_dim : int
        Width of each embedding, and of the pooled vector.
    init_std : float
        Standard deviation of the normal initialisation.
    token_dropout : float, default=0.0
        In training mode, each token of a text is left out of its mean with
        this probability (the mean is then taken over the kept tokens). In
        evaluation mode every token counts.

    See Also
    --------
    BagEncoder : The encoder that builds this network.
    EncoderNetwork : The network contract.

    Examples
    --------
    >>> import torch
    >>> from sktail.encoders import BagNetwork
    >>> network = BagNetwork(vocab_size=10, embedding_dim=4, init_std=0.1).eval()
    >>> batch = {"ids": torch.tensor([1, 2, 3]), "offsets": torch.tensor([0, 2])}  # texts [1, 2] and [3]
    >>> network(batch).shape
    torch.Size([2, 4])
    >>> network.input_embeddings().shape
    torch.Size([10, 4])
    """

    def __init__(self, vocab_size: int, embedding_dim: int, init_std: float, token_dropout: float = 0.0):
        super().__init__()
        self.hidden_size = embedding_dim
        self.token_dropout = float(token_dropout)
        self.bag = nn.EmbeddingBag(vocab_size, embedding_dim, mode="mean")
        nn.init.normal_(self.bag.weight, std=init_std)

    def forward(self, batch):
        """Mean-pool each text's embeddings; an empty text pools to zeros.

        Parameters
        ----------
        batch : dict of str to Tensor
            ``ids``, the concatenated token ids of the texts, and ``offsets``,
            where each text starts in ``ids`` (see :meth:`BagEncoder.collate`).

        Returns
        -------
        Tensor of shape (n_texts, embedding_dim)
            The mean embedding of each text (over its kept tokens in training).
        """
        ids, offsets = batch["ids"], batch["offsets"]
        if not (self.training and self.token_dropout > 0):
            return self.bag(ids, offsets)
        keep = (torch.rand(ids.shape, device=ids.device) >= self.token_dropout).to(self.bag.weight.dtype)
        lengths = torch.diff(offsets, append=offsets.new_tensor([ids.numel()]))
        text_of_token = torch.repeat_interleave(torch.arange(len(offsets), device=ids.device), lengths)
        kept = torch.zeros(len(offsets), dtype=keep.dtype, device=ids.device).index_add_(0, text_of_token, keep)
        weights = keep / kept.clamp(min=1)[text_of_token]
        return nn.functional.embedding_bag(
            ids, self.bag.weight, offsets, mode="sum", per_sample_weights=weights
        )

    def input_embeddings(self):
        """Return the embedding table, FGM's target.

        Returns
        -------
        torch.nn.Parameter
            The ``(vocab_size, embedding_dim)`` weight of the ``EmbeddingBag``.
        """
        return self.bag.weight


class BagEncoder(TextEncoder):
    """Embed and average jieba words, characters and character bigrams.

    The vocabulary is built in ``fit`` from the training texts only.

    Parameters
    ----------
    embedding_dim : int, default=64
        Width of the embeddings.
    min_count : int, default=2
        Minimum training count of a token to enter the vocabulary (tokens
        seen once cannot generalise and would only enlarge the table).
    words, chars, bigrams : bool, default=True
        Token kinds, see :func:`sktail._tokenize.jieba_tokens`.
    trigrams : bool, default=False
        Also use character trigrams.
    init_std : float, default=0.1
        Standard deviation of the embedding initialisation.
    token_dropout : float, default=0.4
        Probability of leaving each token out of a text's mean during
        training (see :class:`BagNetwork`).

    See Also
    --------
    BagNetwork : The network it builds.
    HFEncoder : A pretrained transformer encoder.
    TextEncoder : The encoder contract.

    Examples
    --------
    >>> from sktail.encoders import BagEncoder
    >>> encoder = BagEncoder(min_count=1)
    >>> ids = encoder.fit_tokenize(["深度学习", "水稻种植"], max_length=16)
    >>> encoder.describe()
    'jieba-bag(dim=64, vocab=20)'
    >>> batch = encoder.collate(ids)
    >>> encoder.build_network()(batch).shape
    torch.Size([2, 64])
    """

    # 2,048 ids hold the words, characters and bigrams of a 500-character abstract.
    # No hold-out: every row trains and the last epoch is kept, whose seed-to-seed spread on the
    # CSL title split was smaller than that of the best epoch on a 10% hold-out (docs/results.md).
    defaults = {"max_length": 2048, "epochs": 8, "batch_size": 128, "learning_rate": 1e-2,
                "validation_fraction": None}
    # Embeddings start random, so small training sets need more passes: 450 steps
    # keep the 8 epochs of the 8,000-title CSL split and give the 3,000-abstract
    # split 21 (chosen on the CSL dev splits).
    min_training_steps = 450

    token_dropout = 0.0  # encoders pickled before the option existed

    def __init__(
        self, embedding_dim=64, min_count=2, words=True, chars=True, bigrams=True, trigrams=False,
        init_std=0.1, token_dropout=0.4,
    ):
        for name, value in (("embedding_dim", embedding_dim), ("min_count", min_count)):
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"encoder option {name} must be a positive int, got {value!r}.")
        if embedding_dim > MAX_EMBEDDING_DIM:
            raise ValueError(
                f"encoder option embedding_dim={embedding_dim} is over the limit of {MAX_EMBEDDING_DIM}: "
                f"each vocabulary token would take {4 * embedding_dim:,} bytes. The default is 64; "
                "a few hundred is plenty for a bag of embeddings."
            )
        if not isinstance(init_std, Real) or not math.isfinite(init_std) or init_std <= 0:
            raise ValueError(f"encoder option init_std must be a finite float > 0, got {init_std!r}.")
        if not isinstance(token_dropout, Real) or isinstance(token_dropout, bool) or not 0 <= token_dropout < 1:
            raise ValueError(f"encoder option token_dropout must be a float in [0, 1), got {token_dropout!r}.")
        if not (words or chars or bigrams or trigrams):
            raise ValueError(
                "encoder options words, chars, bigrams and trigrams are all False; enable at least one."
            )
        self.embedding_dim = int(embedding_dim)
        self.init_std = float(init_std)
        self.token_dropout = float(token_dropout)
        self.vocabulary = JiebaVocabulary(
            min_count, words=words, chars=chars, bigrams=bigrams, trigrams=trigrams
        )

    def fit_tokenize(self, texts, max_length):
        """Build the vocabulary from the training texts and return their ids.

        Parameters
        ----------
        texts : list of str
            Training texts.
        max_length : int
            Most ids per text (longer texts are truncated).

        Returns
        -------
        list of ndarray of int64
            One id array per text.
        """
        return self.vocabulary.fit_encode(texts, max_length)

    def tokenize(self, texts, max_length):
        """Map texts to token ids with the fitted vocabulary (unknown tokens get the ``<unk>`` id).

        Parameters
        ----------
        texts : list of str
            Texts.
        max_length : int
            Most ids per text (longer texts are truncated).

        Returns
        -------
        list of ndarray of int64
            One id array per text.
        """
        return self.vocabulary.encode(texts, max_length)

    def collate(self, ids):
        """Flatten a batch into ``EmbeddingBag`` inputs (``ids`` and ``offsets``).

        Parameters
        ----------
        ids : list of ndarray
            One id array per text.

        Returns
        -------
        dict of str to Tensor
            ``ids``, the concatenated ids, and ``offsets``, the start of each
            text in them (int64).
        """
        lengths = np.fromiter((len(a) for a in ids), dtype=np.int64, count=len(ids))
        offsets = np.zeros(len(ids), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        flat = np.concatenate(ids) if len(ids) else np.zeros(0, dtype=np.int64)
        return {"ids": torch.from_numpy(flat.astype(np.int64)), "offsets": torch.from_numpy(offsets)}

    def build_network(self, *, pretrained=True):
        """Create a freshly initialised :class:`BagNetwork` sized to the vocabulary.

        Parameters
        ----------
        pretrained : bool, default=True
            Not used: the embeddings always start random (no pretrained weights).

        Returns
        -------
        BagNetwork
            One embedding row per vocabulary token.
        """
        size = 4 * len(self.vocabulary) * self.embedding_dim
        if size > MAX_TABLE_BYTES:
            raise ValueError(
                f"the embedding table would take {size / 2**30:.1f} GiB ({len(self.vocabulary):,} tokens x "
                f"embedding_dim={self.embedding_dim}), over the limit of {MAX_TABLE_BYTES / 2**30:g} GiB; "
                "lower encoder option embedding_dim or raise min_count."
            )
        return BagNetwork(len(self.vocabulary), self.embedding_dim, self.init_std, self.token_dropout)

    def make_regime(self, train_encoder, feature_cache=None):
        """No regime of its own; warn that ``feature_cache`` has nothing to cache.

        Parameters
        ----------
        train_encoder : {"all", "none"} or int
            The classifier's parameter.
        feature_cache : None, str, os.PathLike or joblib.Memory, default=None
            The classifier's parameter.

        Returns
        -------
        None
            :func:`sktail.training.regime_for` picks the regime.
        """
        if feature_cache is not None:
            warnings.warn(
                "feature_cache is ignored with encoder='jieba-bag': its embeddings always train, so "
                "there are no frozen features to cache. Drop feature_cache, or use a pretrained "
                "encoder with train_encoder='none' (or encoder='tfidf-e5').",
                UserWarning, stacklevel=4,
            )
        return None

    def describe(self):
        """Describe the encoder: its name, embedding width and vocabulary size.

        Returns
        -------
        str
            E.g. ``"jieba-bag(dim=64, vocab=5000)"`` (``vocab=unfitted`` before fit).
        """
        size = len(self.vocabulary) if hasattr(self.vocabulary, "tokens_") else "unfitted"
        return f"jieba-bag(dim={self.embedding_dim}, vocab={size})"

    def to_config(self):
        """Serialise the settings and the vocabulary (``vocabulary.json``, the id-ordered token list).

        Returns
        -------
        config : dict
            The constructor's settings.
        files : dict of str to bytes
            ``{"vocabulary.json": ...}``, the tokens as an ASCII JSON list.
        """
        vocabulary = self.vocabulary
        config = {
            "embedding_dim": self.embedding_dim, "init_std": self.init_std,
            "token_dropout": self.token_dropout,
            "min_count": vocabulary.min_count, "words": vocabulary.words,
            "chars": vocabulary.chars, "bigrams": vocabulary.bigrams, "trigrams": vocabulary.trigrams,
        }
        return config, {"vocabulary.json": json.dumps(vocabulary.tokens_).encode("ascii")}

    @classmethod
    def from_config(cls, config, files):
        """Rebuild the fitted encoder from :meth:`to_config` output."""
        # files written before token dropout existed were trained without it
        encoder = cls(**{"token_dropout": 0.0, **config})
        tokens = json.loads(files["vocabulary.json"].decode("ascii"))
        if (
            not isinstance(tokens, list) or tokens[:2] != [PAD, UNK]
            or not all(isinstance(t, str) for t in tokens) or len(set(tokens)) != len(tokens)
        ):
            raise ValueError("vocabulary.json is not a valid vocabulary: expected unique str tokens starting with <pad>, <unk>.")
        encoder.vocabulary.tokens_ = tokens
        encoder.vocabulary._index = {t: i for i, t in enumerate(tokens)}
        return encoder
