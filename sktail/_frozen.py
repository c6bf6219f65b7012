"""Frozen and partly frozen encoders (``train_encoder="none"`` or an int).

* ``train_encoder="none"``: the pretrained encoder is never changed. The pooled
  features of the training and validation texts are computed once per fit
  (``torch.inference_mode``, length-sorted batches, optionally read from and
  written to a :mod:`~sktail._feature_cache`), then only the dropout + linear
  head is trained on them with the AutoTail-BSFGM objective. FGM perturbs the
  head's input, the batch's feature tensor ``X``: ``r = eps * g / ||g||_2``
  with ``g = dL/dX`` and one norm over the whole batch tensor.
* ``train_encoder=k``: the top ``k`` transformer layers and the head are
  trained; the embeddings and the lower layers are frozen. FGM still perturbs
  the (frozen) word-embedding matrix ``E``: ``E`` keeps ``requires_grad`` so
  that ``g = dL/dE`` is computed, but it is left out of the optimizer and of
  gradient clipping, so its values never change.

The network that is kept, predicted with and pickled is the usual plain
encoder + dropout + head, exactly as with full fine-tuning.
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

from ._feature_cache import FeatureCache, network_fingerprint, resolve_cache_location, text_keys
from ._training import Trainer, batched_inference
from .encoders._base import EncoderNetwork, TextClassifierNetwork

__all__ = [
    "HEAD_DEFAULTS",
    "CachedFeatureNetwork",
    "FrozenEncoderTrainer",
    "HeadTrainer",
    "PartialTrainer",
    "check_train_encoder",
    "encode_features",
    "extract_features",
    "fold_standardization",
    "freeze_lower_layers",
    "open_feature_cache",
    "resolve_defaults",
    "standardization",
    "transformer_layers",
]

logger = logging.getLogger("sktail")

#: ``"auto"`` values of the head-only training of ``train_encoder="none"``: a
#: linear head on fixed features needs many cheap epochs and a larger step.
HEAD_DEFAULTS = {"epochs": 20, "batch_size": 32, "learning_rate": 1e-3}


# -- the parameter -------------------------------------------------------------
def check_train_encoder(train_encoder, encoder, *, distributed: bool = False) -> None:
    """Reject ``train_encoder`` values that do not apply to ``encoder``.

    Parameters
    ----------
    train_encoder : {"all", "none"} or int
        The classifier's parameter.
    encoder : TextEncoder
        The unfitted encoder of this fit.
    distributed : bool, default=False
        Whether the fit is one rank of a distributed job.

    Raises
    ------
    ValueError
        For a bool; for ``"none"``/an int in distributed training (frozen
        and partly frozen training runs in one process); or with the built-in
        encoder, whose embeddings are learnt from scratch in ``fit`` (freezing
        them would train a head on random features) and which has no layers.
    """
    if isinstance(train_encoder, (bool, np.bool_)):
        raise ValueError(f"train_encoder must be 'all', 'none' or a positive int, got {train_encoder!r}.")
    if isinstance(train_encoder, str) and train_encoder == "all":
        return
    if distributed:
        raise ValueError(
            f"train_encoder={train_encoder!r} trains in one process; distributed training supports "
            "only train_encoder='all'."
        )
    from .encoders._bag import BagEncoder

    if isinstance(encoder, BagEncoder):
        raise ValueError(
            f"train_encoder={train_encoder!r} needs a pretrained transformer encoder; the built-in "
            "'jieba-bag' encoder starts from random embeddings learnt in fit and has no layers, "
            "so it is always trained whole. Use train_encoder='all' with it, or a transformer "
            "encoder such as encoder='e5-small'."
        )


def resolve_defaults(defaults: dict, train_encoder) -> dict:
    """The ``"auto"`` values for this ``train_encoder``.

    Parameters
    ----------
    defaults : dict
        The encoder family's defaults.
    train_encoder : {"all", "none"} or int

    Returns
    -------
    dict
        ``defaults``, with :data:`HEAD_DEFAULTS` replacing the optimisation
        settings when only the head is trained.
    """
    if isinstance(train_encoder, str) and train_encoder == "none":
        return {**defaults, **HEAD_DEFAULTS}
    return dict(defaults)


# -- partial freezing ----------------------------------------------------------
def transformer_layers(encoder_network: nn.Module) -> nn.ModuleList:
    """The stack of transformer layers of a BERT-like encoder network.

    Parameters
    ----------
    encoder_network : EncoderNetwork
        A network whose ``model.encoder.layer`` is an ``nn.ModuleList``
        (BERT, RoBERTa, XLM-R, ELECTRA and relatives in ``transformers``).

    Returns
    -------
    torch.nn.ModuleList
        Layers from the bottom (next to the embeddings) to the top.

    Raises
    ------
    ValueError
        If the network has no such stack.
    """
    model = getattr(encoder_network, "model", None)
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        kind = type(model if model is not None else encoder_network).__name__
        raise ValueError(
            f"train_encoder=<int> needs a BERT-like model with its layers at model.encoder.layer; "
            f"{kind} has none. Use train_encoder='all' or 'none' with this encoder."
        )
    return layers


def freeze_lower_layers(network: TextClassifierNetwork, n_layers: int) -> None:
    """Freeze the embeddings and all but the top ``n_layers`` transformer layers.

    Every encoder parameter outside the top ``n_layers`` layers (embeddings,
    lower layers, any pooler) gets ``requires_grad=False``; the dropout and
    head are left trainable.

    Parameters
    ----------
    network : TextClassifierNetwork
        The classifier network, changed in place.
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


class PartialTrainer(Trainer):
    """:class:`~sktail._training.Trainer` of the top ``n_layers`` layers and the head.

    The optimizer is built over the trainable parameters only. When FGM is on,
    the frozen word-embedding matrix ``E`` gets ``requires_grad`` back after
    the optimizer is built, so ``g = dL/dE`` is computed for the attack, while
    ``E`` stays out of the optimizer and of clipping (``Trainer.optimizer_step``
    clips the optimizer's parameters and clears every gradient of the network).
    With FGM off the backward pass stops at the lowest trained layer.

    Parameters
    ----------
    network, encoder, loss_fn, config, rng
        As for :class:`~sktail._training.Trainer`.
    n_layers : int
        Number of top transformer layers to train.
    checkpointer : Checkpointer, default=None
        As for :class:`~sktail._training.Trainer`.
    """

    def __init__(self, network, encoder, loss_fn, config, rng, n_layers: int, checkpointer=None):
        freeze_lower_layers(network, n_layers)
        super().__init__(network, encoder, loss_fn, config, rng, checkpointer)
        if self.fgm.enabled:
            self.fgm.embedding.requires_grad_(True)

    def fit(self, train, validation=None):
        """Train as :meth:`Trainer.fit`, then make every parameter trainable again.

        The frozen parameters are bit-identical to the pretrained ones; only
        their ``requires_grad`` flag is restored, so the kept network looks
        like any other.
        """
        try:
            return super().fit(train, validation)
        finally:
            for parameter in self.network.parameters():
                parameter.requires_grad_(True)


# -- feature extraction --------------------------------------------------------
def open_feature_cache(feature_cache, encoder_network, autocast_dtype=None):
    """The cache namespace of ``encoder_network`` in the ``feature_cache`` location.

    Parameters
    ----------
    feature_cache : None, str, os.PathLike or joblib.Memory
        The classifier's ``feature_cache`` parameter.
    encoder_network : EncoderNetwork
        The frozen encoder whose features are cached.
    autocast_dtype : torch.dtype, default=None
        Precision the features are computed in (part of the namespace).

    Returns
    -------
    FeatureCache or None
        None when caching is off.
    """
    location = resolve_cache_location(feature_cache)
    if location is None:
        return None
    return FeatureCache(location, network_fingerprint(encoder_network, f"autocast={autocast_dtype}"))


def encode_features(encoder_network, text_encoder, ids, *, batch_size: int, device, autocast_dtype=None) -> np.ndarray:
    """Pooled features of texts, in inference mode and length-sorted batches.

    Parameters
    ----------
    encoder_network : EncoderNetwork
        The encoder, already on ``device``.
    text_encoder : TextEncoder
        Pads the batches.
    ids : list of ndarray
        Token ids of each text.
    batch_size : int
        Texts per forward pass.
    device : torch.device
        Where to run.
    autocast_dtype : torch.dtype, default=None
        Mixed precision of the forward pass.

    Returns
    -------
    ndarray of float32, shape (n_texts, hidden_size)
        Features in the input order.
    """
    return batched_inference(
        encoder_network, text_encoder, ids, width=encoder_network.hidden_size, batch_size=batch_size,
        device=device, autocast_dtype=autocast_dtype,
    )


def extract_features(encoder_network, text_encoder, ids, *, batch_size: int, device, autocast_dtype=None, cache=None):
    """Features of texts, read from ``cache`` where present, else computed and stored.

    Parameters
    ----------
    encoder_network, text_encoder, ids, batch_size, device, autocast_dtype
        As for :func:`encode_features`.
    cache : FeatureCache, default=None
        Where to look up and store features; None computes all of them.

    Returns
    -------
    features : ndarray of float32, shape (n_texts, hidden_size)
    n_encoded : int
        Number of distinct texts that were run through the encoder.
    """
    if cache is None:
        features = encode_features(
            encoder_network, text_encoder, ids, batch_size=batch_size, device=device, autocast_dtype=autocast_dtype
        )
        return features, len(ids)
    keys = text_keys(ids)
    features, found = cache.lookup(keys)
    if features is None:
        features = np.zeros((len(ids), encoder_network.hidden_size), dtype=np.float32)
    missing = np.flatnonzero(~found)
    if len(missing):
        _, first = np.unique(keys[missing], return_index=True)
        todo = missing[np.sort(first)]
        fresh = encode_features(
            encoder_network, text_encoder, [ids[i] for i in todo], batch_size=batch_size,
            device=device, autocast_dtype=autocast_dtype,
        )
        cache.store(keys[todo], fresh)
        position = {key: row for row, key in enumerate(keys[todo].tolist())}
        for row in missing:
            features[row] = fresh[position[keys[row]]]
        return features, len(todo)
    return features, 0


# -- head training on cached features ------------------------------------------
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
        """An empty placeholder: there is no embedding matrix.

        FGM's target is each batch's feature tensor, which
        :class:`HeadTrainer` hands to FGM batch by batch.
        """
        return nn.Parameter(torch.zeros(0, self.hidden_size), requires_grad=False)


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


class _HeadNetwork(TextClassifierNetwork):
    """The dropout and head of ``network`` (shared, not copied) over cached features."""

    def __init__(self, network: TextClassifierNetwork):
        nn.Module.__init__(self)  # no fresh head: the classifier's own is trained in place
        self.encoder = CachedFeatureNetwork(network.encoder.hidden_size)
        self.dropout = network.dropout
        self.head = network.head


class _FeatureCollator:
    """Stacks rows of a feature matrix into a batch (the ``encoder`` of :class:`HeadTrainer`)."""

    @staticmethod
    def collate(rows):
        return {"features": torch.from_numpy(np.stack(rows).astype(np.float32, copy=False))}


class HeadTrainer(Trainer):
    """:class:`~sktail._training.Trainer` of the dropout + head over cached features.

    The training "ids" are the rows of the feature matrix. For each batch the
    feature tensor ``X`` becomes a leaf tensor and FGM's target, so the
    inherited step computes ``g = dL/dX``, perturbs ``X <- X + r`` with
    ``r = eps * g / ||g||_2`` (one norm over the batch), adds
    ``w_adv * L(X + r)`` and restores ``X``. Since ``dL/dF`` of the whole
    feature table ``F`` is zero outside the batch's rows, this is FGM on ``F``
    as if ``F`` were the embedding matrix, without copying ``F`` at each step.

    Parameters
    ----------
    network : TextClassifierNetwork
        Over a :class:`CachedFeatureNetwork`.
    loss_fn, config, rng
        As for :class:`~sktail._training.Trainer`.
    """

    def __init__(self, network, loss_fn, config, rng):
        super().__init__(network, _FeatureCollator(), loss_fn, config, rng)

    def fit(self, train, validation=None):
        """As :meth:`Trainer.fit`; on the CPU with one intra-op thread.

        The head's operations are far too small to gain from several threads,
        and on a busy CPU the threads' synchronisation makes each step tens of
        times slower. The caller's thread setting is restored afterwards.
        """
        with _one_cpu_thread(self.device):
            return super().fit(train, validation)

    def train_step(self, batch, target, weight) -> float:
        """One clean and one adversarial step with FGM on the batch's features."""
        inputs = nn.Parameter(batch["features"])
        self.fgm.embedding = inputs
        return super().train_step({"features": inputs}, target, weight)


class FrozenEncoderTrainer:
    """Training with ``train_encoder="none"``: features once, then the head alone.

    Has the ``fit(train, validation)`` interface of
    :class:`~sktail._training.Trainer`; the classifier network's encoder is
    never changed and its head is trained in place.

    Parameters
    ----------
    network : TextClassifierNetwork
        Pretrained encoder + dropout + freshly initialised head.
    encoder : TextEncoder
        Pads the batches of token ids.
    loss_fn : AutoTailLoss
        The supervised loss.
    config : TrainingConfig
        Settings of the head training (and device and precision of encoding).
    rng : numpy.random.RandomState
        Source of the batch shuffles.
    cache : None, str, os.PathLike or joblib.Memory, default=None
        The ``feature_cache`` parameter.

    Attributes
    ----------
    n_encoded_ : int
        Distinct texts run through the encoder by :meth:`fit`.
    encoding_seconds_ : float
        Time spent obtaining the features (cache reads and encoding).
    """

    def __init__(self, network, encoder, loss_fn, config, rng, cache=None):
        self.network = network
        self.encoder = encoder
        self.loss_fn = loss_fn
        self.config = config
        self.rng = rng
        self.cache = cache

    def features(self, ids) -> np.ndarray:
        """Pooled features of the texts, from the cache or the encoder."""
        start = time.perf_counter()
        encoder_network = self.network.encoder.to(self.config.device)
        try:
            features, self.n_encoded_ = extract_features(
                encoder_network, self.encoder, ids, batch_size=max(64, 2 * self.config.batch_size),
                device=self.config.device, autocast_dtype=self.config.autocast_dtype,
                cache=open_feature_cache(self.cache, self.network.encoder, self.config.autocast_dtype),
            )
        finally:
            encoder_network.to("cpu")
        self.encoding_seconds_ = time.perf_counter() - start
        message = (
            f"features of {len(ids)} texts: {self.n_encoded_} encoded, "
            f"{len(ids) - self.n_encoded_} from the cache ({self.encoding_seconds_:.1f}s)"
        )
        logger.info(message)
        if self.config.verbose:
            print(message, flush=True)
        return features

    def fit(self, train, validation=None):
        """Encode the texts once, then train the head on the features.

        Parameters
        ----------
        train : tuple (ids, y, w)
            Training token ids, class indices and optional sample weights.
        validation : tuple (ids, y), default=None
            Held-out rows for best-epoch selection.

        Returns
        -------
        history : list of dict
        best_epoch : int
            As returned by :meth:`sktail._training.Trainer.fit`.
        """
        ids, y, w = train
        val_ids = [] if validation is None else list(validation[0])
        features = self.features(list(ids) + val_ids)
        mean, scale = standardization(features[: len(ids)])
        features = (features - mean) / scale
        head_network = _HeadNetwork(self.network)
        trainer = HeadTrainer(head_network, self.loss_fn, self.config, self.rng)
        head_validation = None if validation is None else (features[len(ids) :], validation[1])
        try:
            return trainer.fit((features[: len(ids)], y, w), head_validation)
        finally:
            fold_standardization(self.network.head, mean, scale)


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
