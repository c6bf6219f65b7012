"""Head-only training on features computed once (``train_encoder="none"``).

The pretrained encoder is never changed. The pooled features of the training
and validation texts are computed once (in inference mode, optionally through
a feature cache), standardised with the training rows' statistics, and only
the dropout + head train on them. FGM perturbs the head's input, each batch's
feature tensor ``X``: ``r = eps * g / ||g||_2`` with ``g = dL/dX`` and one norm
over the batch tensor. Since ``dL/dF`` of the whole feature table ``F`` is zero
outside the batch's rows, this is FGM on ``F`` as if ``F`` were the embedding
matrix. The standardisation is folded into the head afterwards, so the kept
network is the plain encoder + dropout + head.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import numpy as np
import torch
from torch import nn

from .._progress import write_line
from ..devices import resolve_inference_precision
from ..encoders._base import EncoderNetwork, TextClassifierNetwork
from ..inference import extract_features, inference_batch_size, open_feature_cache
from .base_regime import Regime, needs_pretrained

__all__ = ["HEAD_DEFAULTS", "CachedFeatureNetwork", "CachedFeatures", "fold_standardization", "standardization"]

logger = logging.getLogger("sktail")

#: ``"auto"`` values of head-only training: a linear head on fixed features
#: needs many cheap epochs and a larger step.
HEAD_DEFAULTS = {"epochs": 20, "batch_size": 32, "learning_rate": 1e-3}


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


def _requested_precision(config) -> str:
    """The ``precision`` setting behind a training config.

    The config's own ``precision`` when it has one; else read back from the
    training dtype: an autocast dtype was asked for (or is CUDA's "auto"),
    none means "auto" (or an explicit "fp32") on the CPU.
    """
    requested = getattr(config, "precision", None)
    if requested is not None:
        return requested
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(config.autocast_dtype, "auto")


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

    See Also
    --------
    AllLayers : Every parameter trains.
    TopLayers : The top ``k`` transformer layers and the head train.
    sktail.inference.extract_features : The pooled features of a set of texts.

    Examples
    --------
    >>> import numpy as np
    >>> from sktail.training import CachedFeatures
    >>> regime = CachedFeatures()
    >>> regime.name, regime.distributed
    ('none', False)
    >>> batch = regime.collator(None).collate([np.zeros(3), np.ones(3)])
    >>> batch["features"].shape
    torch.Size([2, 3])
    """

    name = "none"
    defaults = HEAD_DEFAULTS
    distributed = False

    def __init__(self, cache=None):
        self.cache = cache
        self._network = None
        self._standardization = None

    def check(self, encoder):
        """Raise ``ValueError`` unless ``encoder`` is pretrained (only those give features worth freezing).

        Parameters
        ----------
        encoder : TextEncoder
            The unfitted encoder of this fit.
        """
        needs_pretrained("none", encoder)

    def setup(self, network):
        """Return the classifier's dropout and head over a stand-in encoder of cached features.

        Parameters
        ----------
        network : TextClassifierNetwork
            The classifier network; its dropout and head are shared, not copied.

        Returns
        -------
        TextClassifierNetwork
            A network whose encoder returns each batch's ``"features"``.
        """
        self._network = network
        return _HeadNetwork(network)

    def features(self, trainer, ids) -> np.ndarray:
        """Compute the pooled features of the texts, from the cache or the frozen encoder.

        Parameters
        ----------
        trainer : Trainer
            For the device, precision, batch size and verbosity.
        ids : list of ndarray
            Token ids of the texts.

        Returns
        -------
        ndarray of float32, shape (n_texts, hidden_size)
            One row per text, in the order of ``ids``.
        """
        config = trainer.config
        start = time.perf_counter()
        encoder_network = self._network.encoder.to(config.device)
        # The inference path predict() resolves too (AutoTailClassifier._logits): the
        # head learns on the features it will be applied to.
        precision = resolve_inference_precision(_requested_precision(config), config.device, encoder_network)
        try:
            features, self.n_encoded_ = extract_features(
                encoder_network, trainer.encoder, ids, batch_size=inference_batch_size(config.batch_size),
                device=config.device, precision=precision,
                cache=open_feature_cache(self.cache, self._network.encoder, precision=precision),
                progress=config.verbose >= 1 and trainer.parallel.is_main_process,
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
        """Encode the texts once and standardise the features with the training rows' statistics.

        Parameters
        ----------
        trainer : Trainer
            The loop (for its device, precision, batch size and verbosity).
        train : tuple (ids, y, w)
            Token ids, class indices, sample weights.
        validation : tuple (ids, y) or None
            Held-out rows.

        Returns
        -------
        train : tuple (features, y, w)
            Standardised feature rows in place of the token ids.
        validation : tuple (features, y) or None
            The same for the held-out rows.
        """
        ids, y, w = train
        val_ids = [] if validation is None else list(validation[0])
        features = self.features(trainer, list(ids) + val_ids)
        mean, scale = standardization(features[: len(ids)])
        self._standardization = (mean, scale)
        features = (features - mean) / scale
        head_validation = None if validation is None else (features[len(ids) :], validation[1])
        return (features[: len(ids)], y, w), head_validation

    def collator(self, encoder):
        """Return the collator that stacks feature rows into a batch.

        Parameters
        ----------
        encoder : TextEncoder
            The fitted encoder (not used: rows are features, not token ids).

        Returns
        -------
        object
            Its ``collate(rows)`` returns ``{"features": float32 tensor}``.
        """
        return _FeatureCollator()

    def adversarial(self, network, batch):
        """Make the batch's feature tensor FGM's target, a leaf so that ``g = dL/dX`` is computed.

        Parameters
        ----------
        network : torch.nn.Module
            The trained module (not used).
        batch : dict of str to Tensor
            A collated batch on the device.

        Returns
        -------
        batch : dict of str to Tensor
            ``{"features": inputs}``.
        target : torch.nn.Parameter
            ``inputs``, the batch's features as a parameter.
        """
        inputs = nn.Parameter(batch["features"])
        return {"features": inputs}, inputs

    def context(self, device):
        """Return a context that keeps torch to one intra-op thread on the CPU while the head trains.

        The head's operations are far too small to gain from several threads,
        and on a busy CPU the threads' synchronisation makes each step tens of
        times slower. The caller's setting is restored afterwards.

        Parameters
        ----------
        device : torch.device
            The training device; on other devices than the CPU nothing changes.

        Returns
        -------
        contextlib.AbstractContextManager
            The thread-limiting context.
        """
        return _one_cpu_thread(device)

    def finish(self, network):
        """Fold the standardisation into the head, which then takes the raw features.

        Parameters
        ----------
        network : TextClassifierNetwork
            The classifier network; its head is changed in place.
        """
        if self._standardization is not None:
            fold_standardization(network.head, *self._standardization)


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
