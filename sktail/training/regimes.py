"""Training regimes: which parameters train, where batches come from, what FGM perturbs.

One loop (:class:`~sktail.training.Trainer`) runs every regime:

* :class:`AllLayers` (``train_encoder="all"``): the whole network trains; FGM
  perturbs the encoder's word-embedding matrix ``E``.
* :class:`TopLayers` (``train_encoder=k``): the top ``k`` transformer layers
  and the head train, the embeddings and lower layers are frozen. FGM still
  perturbs the frozen ``E``: it keeps ``requires_grad`` so ``g = dL/dE`` is
  computed, but it is left out of the optimizer and of clipping, so its values
  never change.
* :class:`CachedFeatures` (``train_encoder="none"``): the pretrained encoder is
  never changed. The pooled features of the training and validation texts are
  computed once (optionally through a feature cache), standardised, and only
  the dropout + head train on them. FGM perturbs the head's input, each batch's
  feature tensor ``X``: ``r = eps * g / ||g||_2`` with ``g = dL/dX`` and one
  norm over the batch tensor. Since ``dL/dF`` of the whole feature table ``F``
  is zero outside the batch's rows, this is FGM on ``F`` as if ``F`` were the
  embedding matrix. The standardisation is folded into the head afterwards.

The network that is kept, predicted with and pickled is the plain encoder +
dropout + head in every regime.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from numbers import Integral

import numpy as np
import torch
from torch import nn

from .._progress import write_line
from ..encoders._base import EncoderNetwork, TextClassifierNetwork
from ..inference import extract_features, open_feature_cache

__all__ = [
    "HEAD_DEFAULTS",
    "AllLayers",
    "CachedFeatures",
    "Regime",
    "TopLayers",
    "fold_standardization",
    "freeze_lower_layers",
    "regime_for",
    "standardization",
    "transformer_layers",
]

logger = logging.getLogger("sktail")

#: ``"auto"`` values of head-only training: a linear head on fixed features
#: needs many cheap epochs and a larger step.
HEAD_DEFAULTS = {"epochs": 20, "batch_size": 32, "learning_rate": 1e-3}


class Regime:
    """What trains and what FGM perturbs; the base trains every layer.

    Subclasses override the hooks the loop calls: :meth:`setup` before the
    optimizer is built, :meth:`after_optimizer`, :meth:`prepare` on the data,
    :meth:`adversarial` per batch, :meth:`context` around the epochs and
    :meth:`finish` at the end (also after a failure).

    Attributes
    ----------
    name : str
        The ``train_encoder`` value this regime implements.
    defaults : dict
        ``"auto"`` values that replace the encoder's own.
    distributed : bool
        Whether the regime runs under data-parallel training.
    """

    name = "all"
    defaults: dict = {}
    distributed = True

    def check(self, encoder) -> None:
        """Raise ``ValueError`` when ``encoder`` cannot be trained this way.

        Parameters
        ----------
        encoder : TextEncoder
            The unfitted encoder of this fit.
        """

    def setup(self, network: TextClassifierNetwork) -> nn.Module:
        """The module the loop trains, before its optimizer is built.

        Parameters
        ----------
        network : TextClassifierNetwork
            The classifier network.

        Returns
        -------
        torch.nn.Module
        """
        return network

    def after_optimizer(self, network: nn.Module, fgm_enabled: bool) -> None:
        """Adjust parameters once the optimizer holds the trainable ones.

        Parameters
        ----------
        network : torch.nn.Module
            The module returned by :meth:`setup`.
        fgm_enabled : bool
            Whether FGM is on.
        """

    def prepare(self, trainer, train, validation):
        """The training and validation data the loop iterates over.

        Parameters
        ----------
        trainer : Trainer
            The loop (for its device, precision and verbosity).
        train : tuple (ids, y, w)
            Token ids, class indices, sample weights.
        validation : tuple (ids, y) or None
            Held-out rows.

        Returns
        -------
        train, validation
            In the form :meth:`collator` batches.
        """
        return train, validation

    def collator(self, encoder):
        """The object whose ``collate(rows)`` builds a batch from training rows.

        Parameters
        ----------
        encoder : TextEncoder
            The fitted encoder.

        Returns
        -------
        object
        """
        return encoder

    def adversarial(self, network: nn.Module, batch: dict):
        """The batch to forward and FGM's explicit target for it.

        Parameters
        ----------
        network : torch.nn.Module
            The trained module.
        batch : dict of str to Tensor
            A collated batch on the device.

        Returns
        -------
        batch : dict of str to Tensor
        target : Tensor
            The tensor FGM perturbs: here the word-embedding matrix ``E``.
        """
        return batch, network.encoder.input_embeddings()

    def context(self, device):
        """Context around the epochs (a no-op here).

        Parameters
        ----------
        device : torch.device
            The training device.

        Returns
        -------
        contextlib.AbstractContextManager
        """
        return contextlib.nullcontext()

    def finish(self, network: nn.Module) -> None:
        """Leave the classifier network in its plain form after training.

        Parameters
        ----------
        network : torch.nn.Module
            The module returned by :meth:`setup`.
        """


class AllLayers(Regime):
    """Every parameter trains (``train_encoder="all"``, the paper's fine-tuning)."""


def transformer_layers(encoder_network: nn.Module) -> nn.ModuleList:
    """The stack of transformer layers of an encoder network.

    Parameters
    ----------
    encoder_network : EncoderNetwork
        A network whose ``layer_stack()`` returns its layers (the Hugging Face
        network finds them at ``model.encoder.layer``: BERT, RoBERTa, XLM-R,
        ELECTRA and relatives).

    Returns
    -------
    torch.nn.ModuleList
        Layers from the bottom (next to the embeddings) to the top.

    Raises
    ------
    ValueError
        If the network has no such stack.
    """
    stack = getattr(encoder_network, "layer_stack", None)
    layers = stack() if callable(stack) else None
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        model = getattr(encoder_network, "model", None)
        kind = type(model if model is not None else encoder_network).__name__
        raise ValueError(
            f"train_encoder=<int> needs a BERT-like model with its layers at model.encoder.layer; "
            f"{kind} has none. Use train_encoder='all' or 'none' with this encoder."
        )
    return layers


def freeze_lower_layers(network: TextClassifierNetwork, n_layers: int) -> None:
    """Freeze the embeddings and all but the top ``n_layers`` transformer layers.

    Parameters
    ----------
    network : TextClassifierNetwork
        The classifier network, changed in place; the dropout and head stay
        trainable.
    n_layers : int
        Number of top layers to train (1 to the number of layers).

    Raises
    ------
    ValueError
        If ``n_layers`` exceeds the number of layers, or the encoder has no
        layer stack (see :func:`transformer_layers`).
    """
    layers = transformer_layers(network.encoder)
    if not isinstance(n_layers, Integral) or not 1 <= n_layers <= len(layers):
        raise ValueError(
            f"train_encoder={n_layers!r} must be between 1 and the encoder's {len(layers)} layers."
        )
    for parameter in network.encoder.parameters():
        parameter.requires_grad_(False)
    for layer in layers[len(layers) - n_layers :]:
        for parameter in layer.parameters():
            parameter.requires_grad_(True)


def _needs_pretrained(train_encoder, encoder) -> None:
    if not getattr(encoder, "pretrained", False):
        raise ValueError(
            f"train_encoder={train_encoder!r} needs a pretrained transformer encoder; the "
            f"{encoder.describe()} encoder starts from random embeddings learnt in fit and has no "
            "layers, so it is always trained whole. Use train_encoder='all' with it, or a "
            "transformer encoder such as encoder='e5-small'."
        )


class TopLayers(Regime):
    """The top ``n_layers`` transformer layers and the head train (``train_encoder=k``).

    Parameters
    ----------
    n_layers : int
        Number of top layers to train.
    """

    distributed = False

    def __init__(self, n_layers: int):
        self.n_layers = n_layers
        self.name = n_layers

    def check(self, encoder):
        """Only pretrained transformer encoders have layers to freeze."""
        _needs_pretrained(self.n_layers, encoder)

    def setup(self, network):
        """Freeze all but the top layers (the optimizer then skips them)."""
        freeze_lower_layers(network, self.n_layers)
        return network

    def after_optimizer(self, network, fgm_enabled):
        """Give the frozen word embeddings ``requires_grad`` back when FGM needs ``dL/dE``."""
        if fgm_enabled:
            network.encoder.input_embeddings().requires_grad_(True)

    def finish(self, network):
        """Make every parameter trainable again; the frozen ones are bit-identical to the pretrained."""
        for parameter in network.parameters():
            parameter.requires_grad_(True)


class CachedFeatureNetwork(EncoderNetwork):
    """Stand-in encoder whose "pooled output" is a batch of precomputed features.

    Parameters
    ----------
    hidden_size : int
        Width of the features.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.hidden_size = int(hidden_size)

    def forward(self, batch):
        """The batch's features, unchanged."""
        return batch["features"]

    def input_embeddings(self):
        """None: FGM's target is each batch's feature tensor (see :meth:`CachedFeatures.adversarial`)."""
        return None


class _HeadNetwork(TextClassifierNetwork):
    """The dropout and head of ``network`` (shared, not copied) over cached features."""

    def __init__(self, network: TextClassifierNetwork):
        nn.Module.__init__(self)  # no fresh head: the classifier's own is trained in place
        self.encoder = CachedFeatureNetwork(network.encoder.hidden_size)
        self.dropout = network.dropout
        self.head = network.head


class _FeatureCollator:
    """Stacks rows of a feature matrix into a batch."""

    @staticmethod
    def collate(rows):
        return {"features": torch.from_numpy(np.stack(rows).astype(np.float32, copy=False))}


_THREADS_LOCK = threading.Lock()
_THREADS_STATE = {"users": 0, "previous": None}


@contextlib.contextmanager
def _one_cpu_thread(device):
    """One torch intra-op thread while any head training runs in this process.

    The setting is process-wide: the first entrant saves it and the last one
    to leave restores it, so concurrent fits (threads) leave it as found.
    """
    if device.type != "cpu":
        yield
        return
    with _THREADS_LOCK:
        if _THREADS_STATE["users"] == 0:
            _THREADS_STATE["previous"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _THREADS_STATE["users"] += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_STATE["users"] -= 1
            if _THREADS_STATE["users"] == 0:
                torch.set_num_threads(_THREADS_STATE["previous"])


class CachedFeatures(Regime):
    """Only the dropout + head train, on features computed once (``train_encoder="none"``).

    Parameters
    ----------
    cache : None, str, os.PathLike or joblib.Memory, default=None
        The ``feature_cache`` parameter: where features are looked up and stored.

    Attributes
    ----------
    n_encoded_ : int
        Distinct texts run through the encoder by :meth:`prepare`.
    encoding_seconds_ : float
        Time spent obtaining the features (cache reads and encoding).
    """

    name = "none"
    defaults = HEAD_DEFAULTS
    distributed = False

    def __init__(self, cache=None):
        self.cache = cache
        self._network = None
        self._standardization = None

    def check(self, encoder):
        """Only pretrained encoders give features worth freezing."""
        _needs_pretrained("none", encoder)

    def setup(self, network):
        """The classifier's dropout and head over a stand-in encoder of cached features."""
        self._network = network
        return _HeadNetwork(network)

    def features(self, trainer, ids) -> np.ndarray:
        """Pooled features of the texts, from the cache or the frozen encoder.

        Parameters
        ----------
        trainer : Trainer
            For the device, precision, batch size and verbosity.
        ids : list of ndarray
            Token ids of the texts.

        Returns
        -------
        ndarray of float32, shape (n_texts, hidden_size)
        """
        config = trainer.config
        start = time.perf_counter()
        encoder_network = self._network.encoder.to(config.device)
        try:
            features, self.n_encoded_ = extract_features(
                encoder_network, trainer.encoder, ids, batch_size=max(64, 2 * config.batch_size),
                device=config.device, autocast_dtype=config.autocast_dtype,
                cache=open_feature_cache(self.cache, self._network.encoder, config.autocast_dtype),
            )
        finally:
            encoder_network.to("cpu")
        self.encoding_seconds_ = time.perf_counter() - start
        message = (
            f"features of {len(ids)} texts: {self.n_encoded_} encoded, "
            f"{len(ids) - self.n_encoded_} from the cache ({self.encoding_seconds_:.1f}s)"
        )
        logger.info(message)
        if config.verbose and trainer.parallel.is_main_process:
            write_line(message)
        return features

    def prepare(self, trainer, train, validation):
        """Encode the texts once and standardise the features with the training rows' statistics."""
        ids, y, w = train
        val_ids = [] if validation is None else list(validation[0])
        features = self.features(trainer, list(ids) + val_ids)
        mean, scale = standardization(features[: len(ids)])
        self._standardization = (mean, scale)
        features = (features - mean) / scale
        head_validation = None if validation is None else (features[len(ids) :], validation[1])
        return (features[: len(ids)], y, w), head_validation

    def collator(self, encoder):
        """Stacks feature rows."""
        return _FeatureCollator()

    def adversarial(self, network, batch):
        """The batch's feature tensor, made a leaf so that ``g = dL/dX`` is computed, is FGM's target."""
        inputs = nn.Parameter(batch["features"])
        return {"features": inputs}, inputs

    def context(self, device):
        """One intra-op thread on the CPU while the head trains.

        The head's operations are far too small to gain from several threads,
        and on a busy CPU the threads' synchronisation makes each step tens of
        times slower. The caller's setting is restored afterwards.
        """
        return _one_cpu_thread(device)

    def finish(self, network):
        """Fold the standardisation into the head, which then takes the raw features."""
        if self._standardization is not None:
            fold_standardization(network.head, *self._standardization)


def regime_for(train_encoder, encoder, *, feature_cache=None, distributed: bool = False) -> Regime:
    """The regime of a ``train_encoder`` value, checked against the encoder.

    Parameters
    ----------
    train_encoder : {"all", "none"} or int
        The classifier's parameter.
    encoder : TextEncoder
        The unfitted encoder of this fit.
    feature_cache : None, str, os.PathLike or joblib.Memory, default=None
        Used by ``"none"``.
    distributed : bool, default=False
        Whether the fit is one rank of a distributed job.

    Returns
    -------
    Regime

    Raises
    ------
    ValueError
        For a bool; for a regime that does not run data-parallel; or when the
        encoder cannot be trained that way (see :meth:`Regime.check`).
    """
    if isinstance(train_encoder, (bool, np.bool_)):
        raise ValueError(f"train_encoder must be 'all', 'none' or a positive int, got {train_encoder!r}.")
    if isinstance(train_encoder, str):
        if train_encoder not in ("all", "none"):
            raise ValueError(f"train_encoder must be 'all', 'none' or a positive int, got {train_encoder!r}.")
        regime = AllLayers() if train_encoder == "all" else CachedFeatures(feature_cache)
    else:
        regime = TopLayers(train_encoder)
    if distributed and not regime.distributed:
        raise ValueError(
            f"train_encoder={train_encoder!r} trains in one process; distributed training supports "
            "only train_encoder='all'."
        )
    regime.check(encoder)
    return regime


def standardization(features):
    """Per-dimension mean and scale of the training features.

    Pooled transformer features are strongly anisotropic (for e5-small most of
    a [CLS] vector's norm is a direction shared by all texts, and the rest
    varies by about 0.06 per dimension), so the head is trained on
    standardised features ``(F - mean) / scale``; this also gives FGM's radius
    the same meaning for every encoder. Dimensions that do not vary get scale 1.

    Parameters
    ----------
    features : ndarray of shape (n_texts, hidden_size)
        Training rows only (no validation row leaks into the statistics).

    Returns
    -------
    mean, scale : ndarray of float32, shape (hidden_size,)
    """
    mean = features.mean(axis=0, dtype=np.float64)
    scale = features.std(axis=0, dtype=np.float64)
    scale[~(scale > 1e-6)] = 1.0
    return mean.astype(np.float32), scale.astype(np.float32)


def fold_standardization(head: nn.Linear, mean, scale) -> None:
    """Fold ``x -> (x - mean) / scale`` into a linear head, in place.

    ``W (x - m) / s + b = (W / s) x + (b - (W / s) m)``: the head then takes
    the raw features, so the kept network is the plain encoder + head.

    Parameters
    ----------
    head : torch.nn.Linear
        Trained on standardised features.
    mean, scale : ndarray of shape (in_features,)
        From :func:`standardization`.
    """
    with torch.no_grad():
        weight = head.weight.double() / torch.as_tensor(scale, dtype=torch.float64, device=head.weight.device)
        bias = head.bias.double() - weight @ torch.as_tensor(mean, dtype=torch.float64, device=head.weight.device)
        head.weight.copy_(weight)
        head.bias.copy_(bias)
