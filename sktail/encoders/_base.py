"""The encoder contract shared by the built-in and the Hugging Face encoders.

An encoder has two halves:

* a :class:`TextEncoder` (pure Python, picklable) that owns the tokenizer,
  turns texts into id arrays, pads batches and builds the network;
* the network it builds, an ``nn.Module`` following :class:`EncoderNetwork`:
  ``forward(batch) -> pooled`` of shape ``(batch, hidden_size)`` and
  ``input_embeddings()`` returning the word-embedding matrix that FGM perturbs.

A family declares what it can do: :attr:`TextEncoder.pretrained` (whether its
weights come pretrained, which frozen and partial training need) and
:meth:`EncoderNetwork.layer_stack` (the transformer layers, for
``train_encoder=k``). A new family is one file with a subclass of each, plus
one registration line in :mod:`sktail.encoders._registry`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import nn

__all__ = ["EncoderNetwork", "TextClassifierNetwork", "TextEncoder"]


class EncoderNetwork(nn.Module, ABC):
    """Network half of an encoder: texts' ids in, one pooled vector per text out.

    An abstract :class:`torch.nn.Module`: subclasses set ``hidden_size`` (the
    width of the pooled vector) and implement :meth:`forward` and
    :meth:`input_embeddings`; those with transformer layers also return them
    from :meth:`layer_stack`.

    Parameters
    ----------
    *args, **kwargs
        Passed to :class:`torch.nn.Module`; subclasses take their own settings.

    See Also
    --------
    TextEncoder : The tokenizer half, which builds this network.
    TextClassifierNetwork : This network, dropout and a linear head.
    BagNetwork : The built-in offline network.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sktail.encoders import EncoderNetwork
    >>> class MeanOfEmbeddings(EncoderNetwork):
    ...     def __init__(self, vocab_size, hidden_size):
    ...         super().__init__()
    ...         self.hidden_size = hidden_size
    ...         self.embedding = nn.Embedding(vocab_size, hidden_size)
    ...     def forward(self, batch):
    ...         return self.embedding(batch["input_ids"]).mean(dim=1)
    ...     def input_embeddings(self):
    ...         return self.embedding.weight
    >>> network = MeanOfEmbeddings(10, 4)
    >>> network({"input_ids": torch.tensor([[1, 2], [3, 4]])}).shape
    torch.Size([2, 4])
    >>> network.layer_stack() is None
    True
    """

    hidden_size: int

    @abstractmethod
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pool a padded batch into features.

        Parameters
        ----------
        batch : dict of str to Tensor
            Output of the encoder's :meth:`TextEncoder.collate`.

        Returns
        -------
        Tensor of shape (batch, hidden_size)
            One pooled vector per text.
        """

    @abstractmethod
    def input_embeddings(self) -> nn.Parameter:
        """Return the input word-embedding matrix ``E``, FGM's target.

        Returns
        -------
        torch.nn.Parameter
            The matrix itself (not a copy), of shape ``(vocab_size, dim)``.
        """

    def layer_stack(self) -> nn.ModuleList | None:
        """Return the transformer layers from the bottom up, or None for a network without layers.

        Returns
        -------
        torch.nn.ModuleList or None
            The layers ``train_encoder=k`` freezes all but the top ``k`` of;
            None here.
        """
        return None


class TextClassifierNetwork(nn.Module):
    """Encoder, dropout on the pooled vector, linear head (``docs/method.md`` §7).

    Parameters
    ----------
    encoder : EncoderNetwork
        Produces the pooled features.
    n_classes : int
        Number of output logits.
    dropout : float, default=0.1
        Dropout on the pooled vector.

    See Also
    --------
    EncoderNetwork : The encoder's network.
    TextEncoder.build_classifier : Builds this network for an encoder.

    Examples
    --------
    >>> import torch
    >>> from sktail.encoders import BagNetwork, TextClassifierNetwork
    >>> network = TextClassifierNetwork(BagNetwork(10, 4, init_std=0.1), n_classes=3)
    >>> batch = {"ids": torch.tensor([1, 2, 3]), "offsets": torch.tensor([0, 2])}
    >>> network(batch).shape
    torch.Size([2, 3])
    """

    def __init__(self, encoder: EncoderNetwork, n_classes: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.hidden_size, n_classes)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Compute the raw logits ``z``.

        Parameters
        ----------
        batch : dict of str to Tensor
            A collated batch.

        Returns
        -------
        Tensor of shape (batch, n_classes)
            ``head(dropout(encoder(batch)))``.
        """
        return self.head(self.dropout(self.encoder(batch)))


class TextEncoder(ABC):
    """Tokenizer and network factory of one encoder family.

    Subclasses keep only picklable state (configuration, vocabulary, tokenizer
    files), so a fitted classifier can store them and rebuild the network
    without the network connection or the original model directory.

    See Also
    --------
    EncoderNetwork : The network half.
    BagEncoder : The built-in offline encoder.
    HFEncoder : Any Hugging Face encoder model.
    register : Add a family under its ``encoder=`` name.

    Examples
    --------
    >>> from sktail.encoders import BagEncoder, TextEncoder
    >>> encoder = BagEncoder(min_count=1)
    >>> isinstance(encoder, TextEncoder)
    True
    >>> ids = encoder.fit_tokenize(["深度学习", "水稻种植"], max_length=16)
    >>> network = encoder.build_classifier(n_classes=2, dropout=0.1)
    >>> network(encoder.collate(ids)).shape
    torch.Size([2, 2])
    """

    #: ``"auto"`` values of the classifier, resolved per encoder family.
    defaults: dict = {}

    #: Fewest optimizer steps that ``epochs="auto"`` aims for (0: no minimum).
    min_training_steps: int = 0

    #: Whether the weights come pretrained (frozen and partial training need it).
    pretrained: bool = False

    @classmethod
    def from_name(cls, name: str, **options) -> TextEncoder:
        """Create the unfitted encoder for an ``encoder=`` value of this family.

        Parameters
        ----------
        name : str
            The ``encoder=`` string (unused by families with one name).
        **options
            The classifier's ``encoder_options``.

        Returns
        -------
        TextEncoder
            ``cls(**options)`` here.
        """
        return cls(**options)

    def auto_epochs(self, n_rows: int, batch_size: int) -> int:
        """Return the ``"auto"`` number of epochs for ``n_rows`` training rows.

        ``defaults["epochs"]``, raised where needed so that training takes at
        least :attr:`min_training_steps` optimizer steps (small training sets
        otherwise get too few updates).

        Parameters
        ----------
        n_rows : int
            Training rows after the validation hold-out.
        batch_size : int
            Rows per optimizer step.

        Returns
        -------
        int
            The number of epochs.
        """
        epochs = self.defaults["epochs"]
        if self.min_training_steps:
            steps_per_epoch = max(1, math.ceil(n_rows / batch_size))
            epochs = max(epochs, math.ceil(self.min_training_steps / steps_per_epoch))
        return epochs

    def fit_tokenize(self, texts, max_length: int) -> list[np.ndarray]:
        """Learn any tokenizer state from the training texts and return their ids.

        The default learns nothing and is the same as :meth:`tokenize`.

        Parameters
        ----------
        texts : list of str
            Training texts.
        max_length : int
            Most ids per text.

        Returns
        -------
        list of ndarray of int64
            One id array per text.
        """
        return self.tokenize(texts, max_length)

    @abstractmethod
    def tokenize(self, texts, max_length: int) -> list[np.ndarray]:
        """Map texts to id arrays.

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

    @abstractmethod
    def collate(self, ids: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Pad a list of id arrays into the network's batch.

        Parameters
        ----------
        ids : list of ndarray
            One id array per text.

        Returns
        -------
        dict of str to Tensor
            What the network's ``forward`` takes.
        """

    @abstractmethod
    def build_network(self, *, pretrained: bool = True) -> EncoderNetwork:
        """Create the network.

        Parameters
        ----------
        pretrained : bool, default=True
            Load pretrained weights; False builds the architecture from the
            stored configuration only (weights loaded afterwards).

        Returns
        -------
        EncoderNetwork
            A new network, on the CPU.
        """

    def build_classifier(self, n_classes: int, dropout: float, *, pretrained: bool = True) -> nn.Module:
        """Build the whole classifier network: this encoder's network, dropout, a linear head.

        Families whose pooled output is not a dense vector (a sparse lexical
        channel, say) override this to return their own encoder + dropout +
        linear head module with the same interface (``forward(batch) ->
        logits``, ``head.out_features``).

        Parameters
        ----------
        n_classes : int
            Number of logits.
        dropout : float
            Dropout on the pooled output.
        pretrained : bool, default=True
            As for :meth:`build_network`.

        Returns
        -------
        torch.nn.Module
            A :class:`TextClassifierNetwork` here.
        """
        return TextClassifierNetwork(self.build_network(pretrained=pretrained), n_classes, dropout)

    def make_regime(self, train_encoder, feature_cache=None):
        """Return the training regime this family needs, or None for the usual ones.

        Parameters
        ----------
        train_encoder : {"all", "none"} or int
            The classifier's parameter.
        feature_cache : None, str, os.PathLike or joblib.Memory, default=None
            The classifier's parameter.

        Returns
        -------
        Regime or None
            None: :func:`sktail.training.regime_for` picks the regime.
        """
        return None

    def pad_id(self) -> int:
        """Return the id used for padding.

        Returns
        -------
        int
            0 here.
        """
        return 0

    def to_config(self) -> tuple[dict, dict[str, bytes]]:
        """Serialise the fitted encoder as JSON settings plus named data files, for :func:`sktail.load`.

        Together with :meth:`from_config` this is the pickle-free serialisation
        used by :meth:`AutoTailClassifier.save`: the settings must be
        JSON-serialisable and the files plain data (vocabularies, tokenizer and
        model configuration), never code.

        Returns
        -------
        config : dict
            JSON-serialisable settings.
        files : dict of str to bytes
            File name (no directory part) to content.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support saving with to_config().")

    @classmethod
    def from_config(cls, config: dict, files: dict[str, bytes]) -> TextEncoder:
        """Rebuild a fitted encoder from the output of :meth:`to_config`.

        Parameters
        ----------
        config : dict
            Settings returned by :meth:`to_config`.
        files : dict of str to bytes
            Data files returned by :meth:`to_config`.

        Returns
        -------
        TextEncoder
            An encoder that tokenizes exactly like the saved one and builds its
            network with ``build_network(pretrained=False)``.
        """
        raise NotImplementedError(f"{cls.__name__} does not support loading with from_config().")

    def describe(self) -> str:
        """Describe the encoder in a few words.

        Returns
        -------
        str
            A short human-readable identity (here the class name).
        """
        return type(self).__name__


def pad_ids(ids: list[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id arrays to the longest one (at least length 1).

    Parameters
    ----------
    ids : list of ndarray
        One id array per text.
    pad_id : int
        Filler id.

    Returns
    -------
    input_ids : LongTensor of shape (n, max_len)
    attention_mask : LongTensor of shape (n, max_len)
    """
    width = max(1, max((len(a) for a in ids), default=1))
    out = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, a in enumerate(ids):
        out[row, : len(a)] = a
        mask[row, : len(a)] = 1
    return torch.from_numpy(out), torch.from_numpy(mask)
