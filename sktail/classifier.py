"""``AutoTailClassifier``: the scikit-learn estimator facade."""

from __future__ import annotations

import io
import os
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._classifier_doc import documented
from ._fit_plan import plan_fit, release_device_memory, train, validation_key
from ._scoring import score_texts
from ._validation import check_texts, nested_encoder_options
from .adversarial import MAX_FGM_EPSILON
from .devices import resolve_device, resolve_inference_precision
from .inference import inference_batch_size

__all__ = ["AutoTailClassifier", "load"]

_AUTO = StrOptions({"auto"})
#: Texts tokenized and scored together by ``decision_function``.
PREDICT_CHUNK_SIZE = 8192
_POSITIVE_INT = Interval(Integral, 1, None, closed="left")


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


@documented
class AutoTailClassifier(ClassifierMixin, BaseEstimator):

    _parameter_constraints: dict = {
        "encoder": [str],
        "max_length": [_POSITIVE_INT, _AUTO],
        "epochs": [_POSITIVE_INT, _AUTO],
        "batch_size": [_POSITIVE_INT, _AUTO],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), _AUTO],
        "weight_decay": [Interval(Real, 0, None, closed="left"), _AUTO],
        "warmup_ratio": [Interval(Real, 0, 1, closed="both")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "tail_gate": ["boolean", _AUTO],
        "gate_threshold": [Interval(Real, 0, 1, closed="both")],
        "tail_tau": [Interval(Real, 0, None, closed="left")],
        "prior_alpha": [Interval(Real, 0, None, closed="neither")],
        "bs_weight": [Interval(Real, 0, 1, closed="both")],
        "bs_temperature": [Interval(Real, 0, None, closed="left")],
        "fgm_epsilon": [Interval(Real, 0, MAX_FGM_EPSILON, closed="both")],
        "fgm_weight": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None, _AUTO],
        "epoch_selection": [StrOptions({"auto", "last", "accuracy", "balanced_accuracy"})],
        "encoder_options": [dict, None],
        "train_encoder": [StrOptions({"all", "none"}), _POSITIVE_INT],
        "feature_cache": [str, os.PathLike, HasMethods(["cache"]), None],
        "precision": [StrOptions({"auto", "fp32", "bf16", "fp16", "int8"})],
        "grad_accumulation_steps": [_POSITIVE_INT],
        "device": [str],
        "distributed": ["boolean", _AUTO],
        "keep_on_device": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "checkpoint_dir": [str, os.PathLike, None],
        "checkpoint_interval": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        encoder="tfidf-e5",
        *,
        max_length="auto",
        epochs="auto",
        batch_size="auto",
        learning_rate="auto",
        weight_decay="auto",
        warmup_ratio=0.1,
        max_grad_norm=1.0,
        dropout=0.1,
        label_smoothing=0.05,
        tail_gate="auto",
        gate_threshold=0.1,
        tail_tau=0.15,
        prior_alpha=1.0,
        bs_weight=0.1,
        bs_temperature=0.25,
        fgm_epsilon=0.3,
        fgm_weight=0.5,
        validation_fraction="auto",
        epoch_selection="auto",
        encoder_options=None,
        train_encoder="all",
        feature_cache=None,
        precision="auto",
        grad_accumulation_steps=1,
        device="auto",
        distributed="auto",
        keep_on_device=False,
        random_state=None,
        verbose=0,
        checkpoint_dir=None,
        checkpoint_interval=600.0,
    ):
        self.encoder = encoder
        self.max_length = max_length
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.max_grad_norm = max_grad_norm
        self.dropout = dropout
        self.label_smoothing = label_smoothing
        self.tail_gate = tail_gate
        self.gate_threshold = gate_threshold
        self.tail_tau = tail_tau
        self.prior_alpha = prior_alpha
        self.bs_weight = bs_weight
        self.bs_temperature = bs_temperature
        self.fgm_epsilon = fgm_epsilon
        self.fgm_weight = fgm_weight
        self.validation_fraction = validation_fraction
        self.epoch_selection = epoch_selection
        self.encoder_options = encoder_options
        self.train_encoder = train_encoder
        self.feature_cache = feature_cache
        self.precision = precision
        self.grad_accumulation_steps = grad_accumulation_steps
        self.device = device
        self.distributed = distributed
        self.keep_on_device = keep_on_device
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_interval = checkpoint_interval

    # -- scikit-learn plumbing ------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        return tags

    # -- public API ---------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, validation_data=None):
        """Fit the encoder and head on texts and labels.

        Parameters
        ----------
        X : array-like of str of shape (n_samples,)
            Training texts (list, numpy array, pandas Series or one-column DataFrame).
        y : array-like of shape (n_samples,)
            Class labels (any hashable values of one type).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative per-text weights of the loss.
        validation_data : tuple (X_val, y_val), default=None
            Held-out texts for best-epoch selection; replaces the internal
            ``validation_fraction`` split.

        Returns
        -------
        self : AutoTailClassifier
            The fitted estimator.
        """
        # Nothing is set on the estimator before training succeeded: a fit that fails
        # (on a parameter, on the data, on a non-finite loss) leaves the previous fitted
        # state exactly as it was, as a failed scikit-learn fit does.
        plan = plan_fit(self.get_params(deep=False), X, y, sample_weight, validation_data)
        network, history, best_epoch = train(plan)
        # Every fitted attribute is set here, after training succeeded.
        prior = plan.prior
        fitted = {
            "classes_": plan.classes, "class_counts_": plan.class_counts,
            "imbalance_index_": prior.imbalance_index, "tail_gate_on_": prior.gate_on,
            "tail_classes_": plan.classes[prior.tail_mask], "prior_offsets_": prior.offsets,
            **{name + "_": value for name, value in plan.resolved.items()},
            "history_": history, "best_epoch_": best_epoch, "encoder_": plan.encoder,
            "network_": network, "n_iter_": len(history),
            "world_size_": 1 if plan.context is None else plan.context.world_size,
        }
        kept = [h for h in history if h["epoch"] == best_epoch]
        fitted["best_validation_score_"] = kept[0].get(validation_key(self.epoch_selection)) if kept else None
        self.__dict__.update(fitted)
        return self

    def set_params(self, **params):
        """Set parameters; ``encoder_options__NAME=value`` sets one encoder option.

        Parameters
        ----------
        **params : dict
            Estimator parameters. A key ``encoder_options__NAME`` replaces
            ``encoder_options`` by a copy with ``NAME`` set (so grid searches
            can tune one option); the dict passed before is not changed.

        Returns
        -------
        self : AutoTailClassifier
            The estimator.
        """
        return super().set_params(**nested_encoder_options(params, self.encoder_options))

    def decision_function(self, X):
        """Raw logits of the head, one column per class.

        Unlike scikit-learn's binary convention, two classes also give two
        columns: the raw logits are what the method trains. For binary
        ``roc_auc`` scoring use a scorer that reads :meth:`predict_proba`,
        e.g. ``make_scorer(roc_auc_score, response_method="predict_proba")``.

        Parameters
        ----------
        X : array-like of str of shape (n_samples,)
            Texts.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Logits, columns in the order of ``classes_``.
        """
        return self._logits(X)

    def _logits(self, X):
        """Logits of shape (n_samples, n_classes), columns following ``classes_``."""
        check_is_fitted(self)
        texts = check_texts(X)
        device = resolve_device(self.device)
        network = self.network_.to(device)
        # The same path as the features of a frozen-encoder fit (CachedFeatures.features).
        precision = resolve_inference_precision(self.precision, device, network)
        try:
            # Chunks of texts (bounded memory); frozen features come from the last
            # batch's memo and the feature cache, as in fit (sktail/_scoring.py).
            return score_texts(
                network, self.encoder_, texts, max_length=self.max_length_,
                batch_size=inference_batch_size(self.batch_size_), device=device, precision=precision,
                chunk_size=PREDICT_CHUNK_SIZE, progress=self.verbose >= 1,
                frozen=self.train_encoder == "none", feature_cache=self.feature_cache,
            )
        finally:
            if device.type != "cpu" and not self.keep_on_device:
                self.network_.to("cpu")
                release_device_memory(device)

    def predict_proba(self, X):
        """Class probabilities: the softmax of the raw logits.

        Parameters
        ----------
        X : array-like of str of shape (n_samples,)
            Texts.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Rows sum to 1; columns follow ``classes_``.
        """
        return _softmax(self._logits(X))

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed stably.

        Parameters
        ----------
        X : array-like of str of shape (n_samples,)
            Texts.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Log-probabilities; columns follow ``classes_``.
        """
        z = self._logits(X).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def predict(self, X):
        """Most likely label of each text.

        Parameters
        ----------
        X : array-like of str of shape (n_samples,)
            Texts.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        logits = self._logits(X)
        return self.classes_[logits.argmax(axis=1)]

    def save(self, path):
        """Write the fitted classifier to a pickle-free model file.

        The file holds JSON settings, safetensors weights and the encoder's
        tokenizer data, with a format version and checksums; it is written
        atomically. Read it back with :func:`sktail.load`.

        Parameters
        ----------
        path : str or path-like
            Destination file (conventionally ``*.sktail``).

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        from ._persistence import save

        return save(self, path)

    def __sklearn_is_fitted__(self):
        """Fitted once a trained network exists (a failed ``fit`` changes nothing)."""
        return hasattr(self, "network_")

    # -- pickling: CPU weights as a torch blob, the network rebuilt on load ------
    def __getstate__(self):
        state = dict(super().__getstate__())
        network = state.pop("network_", None)
        if network is not None:
            buffer = io.BytesIO()
            torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, buffer)
            state["_network_weights"] = buffer.getvalue()
        return state

    def __setstate__(self, state):
        weights = state.pop("_network_weights", None)
        super().__setstate__(state)
        if weights is not None:
            self.network_ = self._rebuild_network(weights)

    def _rebuild_network(self, weights: bytes):
        # Always onto the CPU, whatever device tag the tensors carry (a blob
        # written where CUDA existed loads where it does not); predictions
        # move the network to ``device`` when needed.
        state_dict = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
        return self._network_from_state_dict(state_dict)

    def _network_from_state_dict(self, state_dict):
        """Build the network from the fitted encoder's configuration and load ``state_dict``."""
        with torch.random.fork_rng(devices=[]):
            network = self.encoder_.build_classifier(len(self.classes_), self.dropout, pretrained=False)
        network.load_state_dict(state_dict)
        return network.to("cpu").eval()


def load(path):
    """Read a model file written by :meth:`AutoTailClassifier.save`.

    Nothing in the file is unpickled or executed: JSON, safetensors and
    tokenizer data are parsed, every member's SHA-256 is checked against the
    manifest, and the network is rebuilt from its configuration. The loaded
    estimator predicts exactly like the saved one.

    Parameters
    ----------
    path : str or path-like
        A file written by :meth:`AutoTailClassifier.save`.

    Returns
    -------
    AutoTailClassifier
        The fitted classifier.

    Raises
    ------
    ModelFileError
        (a ``ValueError``) if the file is not an sktail model file, is
        truncated or altered, or has an unsupported format version.
    FileNotFoundError
        If ``path`` does not exist.

    See Also
    --------
    AutoTailClassifier.save : Write a model file.

    Examples
    --------
    >>> import sktail, tempfile, os
    >>> texts = ["深度学习模型", "水稻种植技术"] * 4
    >>> clf = sktail.AutoTailClassifier(epochs=2, validation_fraction=None, random_state=0)
    >>> clf = clf.fit(texts, ["工学", "农学"] * 4)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.sktail")
    >>> _ = clf.save(path)
    >>> (sktail.load(path).predict_proba(texts) == clf.predict_proba(texts)).all()
    np.True_
    """
    from ._persistence import load as read_model

    return read_model(path, AutoTailClassifier)
