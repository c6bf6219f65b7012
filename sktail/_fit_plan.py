"""The data path of ``fit`` as plain steps: check, plan, train.

:func:`plan_fit` turns the estimator's parameters and the data into a
:class:`FitPlan`: validated inputs, class indices, the hold-out split, the
class counts and the tail prior and loss built from them, the encoder and its
regime, the resolved ``"auto"`` values, the token ids and the seed.
:func:`train` runs the plan and returns the trained network with its history.
Neither touches the estimator: ``fit`` sets every fitted attribute from their
results at the very end, so a failure anywhere leaves the previous fitted
state as it was.
"""

from __future__ import annotations

import gc
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._split import stratified_holdout
from ._validation import check_labels, check_sample_weight, check_texts, label_kind
from .devices import resolve_device, resolve_precision
from .encoders._registry import make_encoder
from .objective import AutoTailLoss, compute_tail_prior
from .training import Trainer, TrainingConfig, regime_for
from .training.checkpoint import Checkpointer, fit_fingerprint
from .training.data_parallel import DataParallel
from .training.process_group import init_distributed, main_process_first, shared_random_state

__all__ = ["FitPlan", "plan_fit", "train"]

_RESOLVED = ("max_length", "epochs", "batch_size", "learning_rate", "weight_decay")
#: The paper's values of the "auto" settings that encoder families may change.
_PAPER = {"weight_decay": 0.01}


@dataclass
class FitPlan:
    """Everything one ``fit`` trains from; computed by :func:`plan_fit`.

    Attributes
    ----------
    params : dict
        The estimator's parameters.
    classes : ndarray
        Sorted class labels.
    class_counts : ndarray of int
        Training rows per class (after the hold-out).
    prior : TailPrior
        Gate, imbalance index, tail set and offsets of the counts.
    loss_fn : AutoTailLoss
        The supervised loss.
    encoder : TextEncoder
        The encoder, fitted on the training texts.
    regime : Regime
        What trains (from ``train_encoder``).
    resolved : dict
        ``max_length``, ``epochs``, ``batch_size``, ``learning_rate``, ``weight_decay``
        with no ``"auto"`` left.
    train : tuple (ids, y, w)
        Training token ids, class indices, sample weights.
    validation : tuple (ids, y) or None
        Held-out token ids and class indices.
    seed : int
        Seeds torch (initialisation, dropout).
    rng : numpy.random.RandomState
        Batch order (the same stream on every rank).
    device : torch.device
        Training device.
    context : DistributedContext or None
        This process's place in a data-parallel job.
    checkpointer : Checkpointer or None
        The run's checkpoint file.
    """

    params: dict
    classes: np.ndarray
    class_counts: np.ndarray
    prior: object
    loss_fn: AutoTailLoss
    encoder: object
    regime: object
    resolved: dict
    train: tuple
    validation: tuple | None
    seed: int
    rng: np.random.RandomState
    device: torch.device
    context: object
    checkpointer: Checkpointer | None


def _class_indices(labels):
    try:
        classes, y_idx = np.unique(labels, return_inverse=True)
    except TypeError as error:
        raise TypeError(f"y labels cannot be ordered: {error}") from error
    if len(classes) < 2:
        raise ValueError(f"y has a single class ({classes[0]!r}); at least 2 classes are required.")
    return classes, y_idx


def _validation_indices(validation_data, classes):
    """Texts and class indices of ``validation_data``, checked against ``classes``."""
    if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
        raise ValueError("validation_data must be a pair (X_val, y_val).")
    texts = check_texts(validation_data[0], name="X_val")
    labels = check_labels(validation_data[1], len(texts), name="y_val", x_name="X_val")
    kind, val_kind = label_kind(classes[0]), label_kind(labels[0])
    if kind != val_kind:
        raise TypeError(f"y_val holds {val_kind} labels but y holds {kind} labels; use the same type.")
    index = {c: i for i, c in enumerate(classes.tolist())}
    unseen = sorted({str(v) for v in labels.tolist() if v not in index})
    if unseen:
        raise ValueError(f"y_val has labels not present in y: {unseen[:5]}.")
    return texts, np.fromiter((index[v] for v in labels.tolist()), dtype=np.int64, count=len(labels))


def _holdout(params, encoder, y_idx, validation_data, rng):
    """Training rows and, if any, validation rows of the given data."""
    fraction = params["validation_fraction"]
    if isinstance(fraction, str) and fraction == "auto":
        fraction = encoder.defaults.get("validation_fraction", 0.1)
    if validation_data is not None or not fraction:
        return np.arange(len(y_idx)), None
    train, val = stratified_holdout(y_idx, fraction, rng)
    if len(val) == 0:
        raise ValueError(
            f"validation_fraction={fraction} leaves no validation rows for "
            f"{len(y_idx)} texts; pass a larger fraction, validation_data, or validation_fraction=0."
        )
    return train, val


def _loss(params, counts):
    prior = compute_tail_prior(
        counts, tail_gate=params["tail_gate"], threshold=params["gate_threshold"],
        tau=params["tail_tau"], alpha=params["prior_alpha"],
    )
    loss = AutoTailLoss(
        prior.offsets, counts, label_smoothing=params["label_smoothing"],
        bs_weight=params["bs_weight"], bs_temperature=params["bs_temperature"],
    )
    return prior, loss


def _resolve(params, encoder, regime, n_train: int) -> dict:
    """The ``"auto"`` values: the encoder's defaults, those of the regime over them."""
    defaults = {**_PAPER, **encoder.defaults, **regime.defaults}
    resolved = {}
    for name in _RESOLVED:
        value = params[name]
        resolved[name] = defaults[name] if isinstance(value, str) and value == "auto" else value
    if params["epochs"] == "auto" and regime.name == "all":
        rows_per_step = resolved["batch_size"] * params["grad_accumulation_steps"]
        resolved["epochs"] = encoder.auto_epochs(n_train, rows_per_step)
    return resolved


def _checkpointer(params, seed, device, texts, y_idx, classes, weights, train_rows, validation):
    """The run's :class:`Checkpointer`, or None without ``checkpoint_dir``."""
    if params["checkpoint_dir"] is None:
        return None
    if params["random_state"] is None:
        warnings.warn(
            "checkpoint_dir is set but random_state is None: every fit draws a new seed, so an "
            "interrupted fit cannot be resumed. Pass an int random_state.", UserWarning, stacklevel=4,
        )
    ignored = ("checkpoint_dir", "checkpoint_interval", "verbose", "device", "random_state")
    settings = {k: v for k, v in params.items() if k not in ignored}
    settings["device"] = str(device)
    fingerprint = fit_fingerprint(
        settings,
        {"classes": classes, "y": y_idx, "sample_weight": weights, "train_rows": train_rows,
         "y_val": None if validation is None else validation[1], "seed": np.int64(seed)},
        {"X": texts, "X_val": [] if validation is None else validation[0]},
    )
    return Checkpointer(params["checkpoint_dir"], fingerprint, params["checkpoint_interval"])


def plan_fit(params: dict, X, y, sample_weight=None, validation_data=None) -> FitPlan:
    """Check the inputs and compute everything training needs.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params(deep=False)``.
    X, y, sample_weight, validation_data
        As for :meth:`AutoTailClassifier.fit`.

    Returns
    -------
    FitPlan
    """
    texts = check_texts(X)
    labels = check_labels(y, len(texts))
    weights = check_sample_weight(sample_weight, len(texts))
    device = resolve_device(params["device"])
    context = init_distributed(params["distributed"], device)
    if context is not None:
        device = context.device
    classes, y_idx = _class_indices(labels)
    validation = None if validation_data is None else _validation_indices(validation_data, classes)
    with main_process_first(context):
        encoder = make_encoder(params["encoder"], params["encoder_options"])
    random_state = params["random_state"]
    rng = shared_random_state(random_state, check_random_state(random_state), context)
    train_rows, val_rows = _holdout(params, encoder, y_idx, validation_data, rng)
    if val_rows is not None:
        validation = ([texts[i] for i in val_rows], y_idx[val_rows])
    y_train = y_idx[train_rows]
    counts = np.bincount(y_train, minlength=len(classes))
    prior, loss_fn = _loss(params, counts)
    regime = regime_for(params["train_encoder"], encoder, feature_cache=params["feature_cache"],
                        distributed=context is not None)
    resolved = _resolve(params, encoder, regime, len(train_rows))
    train_ids = encoder.fit_tokenize([texts[i] for i in train_rows], resolved["max_length"])
    val_pair = None if validation is None else (encoder.tokenize(validation[0], resolved["max_length"]), validation[1])
    train_w = None if weights is None else weights[train_rows]

    seed = int(rng.randint(np.iinfo(np.int32).max))
    checkpointer = _checkpointer(params, seed, device, texts, y_idx, classes, weights, train_rows, validation)
    return FitPlan(
        params=params, classes=classes, class_counts=counts, prior=prior, loss_fn=loss_fn,
        encoder=encoder, regime=regime, resolved=resolved, train=(train_ids, y_train, train_w),
        validation=val_pair, seed=seed, rng=rng, device=device, context=context, checkpointer=checkpointer,
    )


def release_device_memory(device: torch.device) -> None:
    """Collect garbage and return the CUDA cache (no-op elsewhere).

    Parameters
    ----------
    device : torch.device
    """
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


#: The epoch-record key that each ``epoch_selection`` maximises (None: keep the last epoch).
MONITORS = {"auto": "val_accuracy", "accuracy": "val_accuracy",
            "balanced_accuracy": "val_balanced_accuracy", "last": None}


def validation_key(selection: str) -> str:
    """The epoch-record key reported as ``best_validation_score_`` under ``epoch_selection``."""
    return MONITORS[selection] or "val_accuracy"


def train(plan: FitPlan):
    """Build the network and train it as ``plan`` says.

    Initialisation and dropout are seeded inside :func:`torch.random.fork_rng`,
    so the caller's global torch RNG state is left untouched.

    Parameters
    ----------
    plan : FitPlan

    Returns
    -------
    network : TextClassifierNetwork
        The trained network in eval mode (on the CPU unless ``keep_on_device``).
    history : list of dict
    best_epoch : int
    """
    params, device = plan.params, plan.device
    dtype, use_scaler = resolve_precision(params["precision"], device)
    config = TrainingConfig(
        epochs=plan.resolved["epochs"], batch_size=plan.resolved["batch_size"],
        learning_rate=plan.resolved["learning_rate"], weight_decay=plan.resolved["weight_decay"],
        warmup_ratio=params["warmup_ratio"], max_grad_norm=params["max_grad_norm"],
        fgm_epsilon=params["fgm_epsilon"], fgm_weight=params["fgm_weight"],
        grad_accumulation_steps=params["grad_accumulation_steps"], device=device,
        autocast_dtype=dtype, use_scaler=use_scaler, verbose=params["verbose"], precision=params["precision"],
        monitor=MONITORS[params["epoch_selection"]],
    )
    parallel = None if plan.context is None else DataParallel(plan.context)
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(plan.seed)
        network = plan.encoder.build_classifier(len(plan.classes), params["dropout"])
        trainer = Trainer(network, plan.encoder, plan.loss_fn, config, plan.rng, plan.checkpointer,
                          regime=plan.regime, parallel=parallel)
        try:
            history, best_epoch = trainer.fit(plan.train, plan.validation)
        finally:
            if not params["keep_on_device"]:
                network.to("cpu")
            # The optimizer state (twice the weights) goes with the trainer.
            del trainer
            release_device_memory(device)
    return network.eval(), history, best_epoch
