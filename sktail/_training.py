"""The training loop: batching, one AutoTail-BSFGM step, epochs, best-epoch selection.

Small functions and one :class:`Trainer` whose stages (``compute_loss``,
``train_step``, ``run_epoch``, ``evaluate``, ``fit``) can each be overridden
and tested on their own.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .adversarial import FGM

__all__ = [
    "NonFiniteError",
    "Trainer",
    "TrainingConfig",
    "batched_inference",
    "build_optimizer",
    "length_bucketed_batches",
    "length_sorted_batches",
    "linear_warmup_decay",
    "predict_logits",
    "progress_bar",
    "resolve_device",
    "resolve_precision",
]

logger = logging.getLogger("sktail")


class NonFiniteError(FloatingPointError):
    """Raised when a loss or gradient stops being finite during training."""


# -- devices and precision -----------------------------------------------------
def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU.

    Parameters
    ----------
    device : str, default="auto"
        ``"auto"`` or any string accepted by :class:`torch.device`.

    Returns
    -------
    torch.device
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device={device!r} is not a valid torch device: {error}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    return resolved


def resolve_precision(precision: str, device: torch.device):
    """Choose the autocast dtype and whether a gradient scaler is needed.

    Parameters
    ----------
    precision : {"auto", "fp32", "bf16", "fp16"}
        ``"auto"``: bf16 on CUDA devices that support it, fp16 with a gradient
        scaler on other CUDA devices, fp32 elsewhere.
    device : torch.device
        The training device.

    Returns
    -------
    dtype : torch.dtype or None
        Autocast dtype; None means full fp32.
    use_scaler : bool
        True for fp16 on CUDA.
    """
    if precision == "auto":
        if device.type != "cuda":
            return None, False
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp32":
        return None, False
    if precision == "bf16":
        return torch.bfloat16, False
    if precision == "fp16":
        return torch.float16, device.type == "cuda"
    raise ValueError(f"precision must be 'auto', 'fp32', 'bf16' or 'fp16', got {precision!r}.")


def _autocast(device: torch.device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# -- batching ------------------------------------------------------------------
def length_bucketed_batches(lengths, batch_size: int, rng: np.random.RandomState, pool: int = 50):
    """Shuffled batches of similar-length texts (less padding in training).

    The order is shuffled, cut into pools of ``pool * batch_size`` rows, each
    pool is sorted by length and cut into batches, and the batches are
    shuffled.

    Parameters
    ----------
    lengths : array-like of int
        Length of each text in ids.
    batch_size : int
        Rows per batch.
    rng : numpy.random.RandomState
        Source of the shuffles.
    pool : int, default=50
        Pool size in batches.

    Returns
    -------
    list of ndarray
        Row indices of each batch; every row appears exactly once.
    """
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    span = batch_size * pool
    batches = []
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def length_sorted_batches(lengths, batch_size: int):
    """Batches of rows sorted by length, longest first (for inference).

    Parameters
    ----------
    lengths : array-like of int
        Length of each text in ids.
    batch_size : int
        Rows per batch.

    Returns
    -------
    list of ndarray
        Row indices of each batch.
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


# -- progress ------------------------------------------------------------------
def progress_bar(iterable, *, enabled: bool, desc: str, unit: str = "batch", leave: bool = True):
    """Wrap ``iterable`` in a :mod:`tqdm` bar on stderr when ``enabled``.

    :mod:`tqdm` is imported only here, and only when a bar is asked for; when it
    is not installed (``pip install "sktail[progress]"``) the iterable is
    returned unchanged.

    Parameters
    ----------
    iterable : iterable
        What to iterate over.
    enabled : bool
        Show a bar (``verbose >= 1``) or not.
    desc : str
        Label of the bar.
    unit : str, default="batch"
        What one step counts.
    leave : bool, default=True
        Keep the finished bar on screen.

    Returns
    -------
    iterable
        ``iterable`` itself or a :class:`tqdm.tqdm` over it.
    """
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)


def _write_line(line: str):
    """Print ``line`` to stdout without breaking an active progress bar."""
    tqdm = sys.modules.get("tqdm")
    if tqdm is not None:
        tqdm.tqdm.write(line, file=sys.stdout)
    else:
        print(line, flush=True)


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


# -- optimisation --------------------------------------------------------------
def build_optimizer(network: torch.nn.Module, learning_rate: float, weight_decay: float):
    """AdamW with weight decay on matrices only (not on biases or norms).

    Parameters
    ----------
    network : torch.nn.Module
        Parameters that require gradients are optimised.
    learning_rate : float
        Peak learning rate.
    weight_decay : float
        Decoupled weight decay of the 2-D parameters.

    Returns
    -------
    torch.optim.AdamW
        Fused where the device and torch build support it.
    """
    params = [p for p in network.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # The fused kernel updates every tensor in one pass (on a CPU about 8x
    # faster than the default loop for a base-size model); torch builds or
    # devices without it fall back to the default implementation.
    try:
        return torch.optim.AdamW(groups, lr=learning_rate, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.AdamW(groups, lr=learning_rate)


def linear_warmup_decay(total_steps: int, warmup_ratio: float):
    """Learning-rate multiplier: linear warm-up, then linear decay to 0.

    Parameters
    ----------
    total_steps : int
        Number of optimizer steps of the whole run.
    warmup_ratio : float
        Fraction of the steps spent warming up.

    Returns
    -------
    callable
        ``step -> factor`` for :class:`torch.optim.lr_scheduler.LambdaLR`.

    Examples
    --------
    >>> f = linear_warmup_decay(100, 0.1)
    >>> [round(f(s), 3) for s in (0, 5, 10, 55, 100)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    warmup = int(math.ceil(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return step / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


# -- inference -----------------------------------------------------------------
def predict_logits(network, encoder, ids, *, batch_size: int, device, autocast_dtype=None, progress=False):
    """Raw logits of every text, computed in length-sorted batches.

    Parameters
    ----------
    network : TextClassifierNetwork
        The classifier network, already on ``device``.
    encoder : TextEncoder
        Pads the batches.
    ids : list of ndarray
        Token ids of each text.
    batch_size : int
        Texts per forward pass.
    device : torch.device
        Where to run.
    autocast_dtype : torch.dtype, default=None
        Mixed precision for the forward pass.
    progress : bool, default=False
        Show a progress bar over the batches (see :func:`progress_bar`).

    Returns
    -------
    ndarray of float32, shape (n_texts, n_classes)
        Logits in the input order.
    """
    return batched_inference(
        network, encoder, ids, width=network.head.out_features, batch_size=batch_size,
        device=device, autocast_dtype=autocast_dtype, progress=progress,
    )


def batched_inference(module, encoder, ids, *, width: int, batch_size: int, device,
                      autocast_dtype=None, progress: bool = False) -> np.ndarray:
    """Run ``module`` over texts in eval mode and length-sorted batches.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a padded batch to a ``(batch, width)`` tensor; already on ``device``.
    encoder : TextEncoder
        Pads the batches.
    ids : list of ndarray
        Token ids of each text.
    width : int
        Number of output columns.
    batch_size : int
        Texts per forward pass.
    device : torch.device
        Where to run.
    autocast_dtype : torch.dtype, default=None
        Mixed precision for the forward pass.
    progress : bool, default=False
        Show a progress bar over the batches (see :func:`progress_bar`).

    Returns
    -------
    ndarray of float32, shape (n_texts, width)
        Outputs in the input order.
    """
    out = np.empty((len(ids), width), dtype=np.float32)
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            batches = length_sorted_batches([len(a) for a in ids], batch_size)
            for rows in progress_bar(batches, enabled=progress, desc="predict", leave=False):
                batch = _to_device(encoder.collate([ids[i] for i in rows]), device)
                with _autocast(device, autocast_dtype):
                    result = module(batch)
                out[rows] = result.float().cpu().numpy()
    finally:
        module.train(was_training)
    return out


# -- training ------------------------------------------------------------------
@dataclass
class TrainingConfig:
    """Resolved settings of one training run (no ``"auto"`` left).

    Attributes
    ----------
    epochs, batch_size, learning_rate, weight_decay, warmup_ratio, max_grad_norm
        Optimisation settings (METHOD.md §7).
    fgm_epsilon, fgm_weight : float
        FGM radius and weight of the adversarial loss (METHOD.md §6).
    grad_accumulation_steps : int
        Batches whose gradients are summed before each optimizer step.
    device : torch.device
        Training device.
    autocast_dtype : torch.dtype or None
        Mixed-precision dtype.
    use_scaler : bool
        Whether fp16 gradient scaling is used.
    verbose : int
        0 is silent; 1 or more prints one line per epoch and shows progress
        bars over the epochs and the batches.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    fgm_epsilon: float = 0.3
    fgm_weight: float = 0.5
    grad_accumulation_steps: int = 1
    device: torch.device = torch.device("cpu")
    autocast_dtype: torch.dtype | None = None
    use_scaler: bool = False
    verbose: int = 0


def _accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(logits.argmax(axis=1) == y)) if len(y) else float("nan")


def _cpu_state(network) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in network.state_dict().items()}


class Trainer:
    """Runs AutoTail-BSFGM training of one network.

    Parameters
    ----------
    network : TextClassifierNetwork
        Encoder + dropout + head; moved to ``config.device``.
    encoder : TextEncoder
        Pads batches.
    loss_fn : AutoTailLoss
        The supervised loss ``L``.
    config : TrainingConfig
        Resolved settings.
    rng : numpy.random.RandomState
        Source of the batch shuffles.
    checkpointer : Checkpointer, default=None
        When given, the state is saved at every epoch end and, inside epochs,
        whenever the checkpointer is due; :meth:`fit` resumes from its file.
        Only the main process writes it.

    Attributes
    ----------
    is_main_process : bool
        True unless this is a rank other than 0 of a data-parallel job; only
        the main process logs and writes files.
    """

    is_main_process = True

    def __init__(self, network, encoder, loss_fn, config: TrainingConfig, rng, checkpointer=None):
        self.checkpointer = checkpointer
        self.config = config
        self.device = config.device
        self.network = network.to(self.device)
        self.encoder = encoder
        self.loss_fn = loss_fn.to(self.device)
        self.rng = rng
        self.fgm = FGM(network.encoder.input_embeddings(), config.fgm_epsilon)
        self.optimizer = build_optimizer(network, config.learning_rate, config.weight_decay)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.use_scaler)
        self.scheduler = None
        self.forward_passes = 0
        # Progress of fit (saved in checkpoints): next epoch, position inside it, results so far.
        self.epoch, self.progress = 1, None
        self.history, self.best_state, self.best_epoch, self.best_score = [], None, config.epochs, -np.inf

    # -- one batch ---------------------------------------------------------
    def compute_loss(self, batch, target, weight):
        """Forward pass and loss ``L`` of one batch."""
        self.forward_passes += 1
        with _autocast(self.device, self.config.autocast_dtype):
            logits = self.network(batch)
        return self.loss_fn(logits.float(), target, weight)

    def _backward(self, loss):
        self.scaler.scale(loss / self.config.grad_accumulation_steps).backward()

    def train_step(self, batch, target, weight) -> float:
        """Clean and (when FGM is on) adversarial forward/backward of one batch.

        Gradients accumulate; the optimizer step is taken by :meth:`optimizer_step`.

        Returns
        -------
        float
            The clean loss of the batch.
        """
        embedding = self.fgm.embedding
        held = None
        if self.fgm.enabled and self.config.grad_accumulation_steps > 1 and embedding.grad is not None:
            held = embedding.grad.detach().clone()
        loss = self.compute_loss(batch, target, weight)
        self._backward(loss)
        # Read the loss only once the backward pass is queued, so the device
        # is kept busy during this host sync.
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise NonFiniteError(f"the training loss became {loss_value}")
        if self.fgm.enabled:
            grad = None if held is None else embedding.grad - held
            with self.fgm.perturb(grad) as applied:
                if applied:
                    adv_loss = self.compute_loss(batch, target, weight)
                    self._backward(self.config.fgm_weight * adv_loss)
        return loss_value

    def optimizer_step(self):
        """Clip the gradient norm, step optimizer and schedule, clear gradients.

        Only the optimizer's parameters are clipped and stepped; every gradient
        of the network is cleared, including those of parameters that are not
        trained but whose gradient FGM reads (a frozen embedding matrix).
        """
        self.scaler.unscale_(self.optimizer)
        trained = [p for group in self.optimizer.param_groups for p in group["params"]]
        norm = torch.nn.utils.clip_grad_norm_(trained, self.config.max_grad_norm)
        if not self.config.use_scaler and not torch.isfinite(norm):
            raise NonFiniteError(f"the gradient norm became {float(norm)}")
        try:
            self.scaler.step(self.optimizer)
        except RuntimeError as error:  # e.g. a learning rate too large for float32 arithmetic
            if "overflow" not in str(error):
                raise
            raise NonFiniteError(f"the optimizer step overflowed ({error})") from error
        self.scaler.update()
        self.scheduler.step()
        self.network.zero_grad(set_to_none=True)

    # -- epochs ------------------------------------------------------------
    def _batches(self, ids, y, w, rows):
        batch = _to_device(self.encoder.collate([ids[i] for i in rows]), self.device)
        target = torch.as_tensor(y[rows], dtype=torch.long).to(self.device, non_blocking=True)
        weight = None if w is None else torch.as_tensor(w[rows], dtype=torch.float32).to(self.device)
        return batch, target, weight

    def run_epoch(self, ids, y, w=None) -> float:
        """One pass over the training rows in length-bucketed shuffled batches.

        Returns
        -------
        float
            Mean clean loss over the batches.
        """
        self.network.train()
        if self.progress is None:  # a new epoch (else: resuming one from a checkpoint)
            batches = length_bucketed_batches([len(a) for a in ids], self.config.batch_size, self.rng)
            self.progress = {"batches": batches, "next": 0, "total": 0.0}
        progress = self.progress
        batches = progress["batches"]
        accum = self.config.grad_accumulation_steps
        steps = range(progress["next"], len(batches))
        bar = progress_bar(steps, enabled=self.config.verbose >= 1 and self.is_main_process, desc="batches", leave=False)
        for i in bar:
            progress["total"] += self.train_step(*self._batches(ids, y, w, batches[i]))
            if (i + 1) % accum == 0 or i + 1 == len(batches):
                self.optimizer_step()
                progress["next"] = i + 1
                if i + 1 < len(batches):
                    self.on_step_end()
            if bar is not steps:
                bar.set_postfix(loss=f"{progress['total'] / (i + 1):.4f}", refresh=False)
        self.progress = None
        return progress["total"] / max(1, len(batches))

    def check_finite_weights(self):
        """Raise :class:`NonFiniteError` if any weight is NaN or infinite."""
        for name, param in self.network.named_parameters():
            if not bool(torch.isfinite(param).all()):
                raise NonFiniteError(f"the weights {name} became non-finite")

    # -- checkpoints ---------------------------------------------------------
    def on_step_end(self):
        """Hook after each optimizer step inside an epoch: checkpoint when due."""
        if self.checkpointer is not None and self.is_main_process and self.checkpointer.due():
            self.checkpointer.save(self.state_dict())

    def on_epoch_end(self):
        """Hook after each finished epoch: always checkpoint (main process only)."""
        if self.checkpointer is not None and self.is_main_process:
            self.checkpointer.save(self.state_dict())

    def state_dict(self) -> dict:
        """Everything needed to continue training exactly from this point.

        Returns
        -------
        dict
            Network, optimizer, scheduler and scaler states, numpy and torch
            RNG states, the epoch, the position inside it with its batch order
            and running loss, the history and the best epoch so far. Only
            tensors and plain Python data (``torch.load(weights_only=True)``).
        """
        kind, keys, pos, has_gauss, gauss = self.rng.get_state()
        progress = None
        if self.progress is not None:
            progress = {
                "batches": [torch.from_numpy(np.asarray(b, dtype=np.int64)) for b in self.progress["batches"]],
                "next": self.progress["next"], "total": self.progress["total"],
            }
        rng = {"numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                         "has_gauss": int(has_gauss), "gauss": float(gauss)},
               "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "network": _cpu_state(self.network),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "epoch": self.epoch,
            "progress": progress,
            "history": [dict(h) for h in self.history],
            "best": {"epoch": self.best_epoch, "score": float(self.best_score), "state": self.best_state},
        }

    def load_state_dict(self, state: dict):
        """Restore a :meth:`state_dict` (after :meth:`fit` has built the scheduler).

        Parameters
        ----------
        state : dict
            Output of :meth:`state_dict`.
        """
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        rng = state["rng"]["numpy"]
        self.rng.set_state(("MT19937", rng["keys"].numpy().astype(np.uint32), rng["pos"], rng["has_gauss"], rng["gauss"]))
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.epoch = int(state["epoch"])
        progress = state["progress"]
        self.progress = None if progress is None else {
            "batches": [b.numpy() for b in progress["batches"]], "next": int(progress["next"]),
            "total": float(progress["total"]),
        }
        self.history = [dict(h) for h in state["history"]]
        best = state["best"]
        self.best_epoch, self.best_score, self.best_state = best["epoch"], best["score"], best["state"]

    def evaluate(self, ids, y) -> dict:
        """Accuracy and balanced accuracy of the current weights on held-out rows."""
        from sklearn.metrics import balanced_accuracy_score

        logits = predict_logits(
            self.network, self.encoder, ids, batch_size=self.config.batch_size * 2,
            device=self.device, autocast_dtype=self.config.autocast_dtype,
        )
        pred = logits.argmax(axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            balanced = float(balanced_accuracy_score(y, pred))
        return {"val_accuracy": _accuracy(logits, y), "val_balanced_accuracy": balanced}

    def steps_per_epoch(self, n_rows: int) -> int:
        """Optimizer steps in one epoch of ``n_rows`` rows."""
        n_batches = math.ceil(n_rows / self.config.batch_size)
        return math.ceil(n_batches / self.config.grad_accumulation_steps)

    def fit(self, train, validation=None):
        """Train for ``config.epochs`` epochs, keeping the best validation epoch.

        With a checkpointer, a matching checkpoint is loaded first and training
        continues from it (mid-epoch included); every epoch end is saved, and
        the checkpoint is removed when training finishes.

        Parameters
        ----------
        train : tuple (ids, y, w)
            Training token ids, class indices and optional sample weights.
        validation : tuple (ids, y), default=None
            Held-out rows for best-epoch selection; None keeps the last epoch.

        Returns
        -------
        history : list of dict
            Per-epoch ``train_loss``, ``seconds`` and validation metrics.
        best_epoch : int
            1-based epoch whose weights are left in the network.
        """
        ids, y, w = train
        total_steps = self.config.epochs * self.steps_per_epoch(len(ids))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, linear_warmup_decay(total_steps, self.config.warmup_ratio)
        )
        self.history, self.best_state, self.best_epoch, self.best_score = [], None, self.config.epochs, -np.inf
        self.epoch, self.progress = 1, None
        if self.checkpointer is not None:
            self.resume()
        while self.epoch <= self.config.epochs:
            epoch, start = self.epoch, time.perf_counter()
            try:
                train_loss = self.run_epoch(ids, y, w)
                self.check_finite_weights()
            except NonFiniteError as error:
                if self.best_state is None:
                    raise NonFiniteError(
                        f"Training stopped at epoch {epoch}: {error}. Lower learning_rate or "
                        "check the inputs; no usable model was produced."
                    ) from error
                warnings.warn(
                    f"Training stopped at epoch {epoch}: {error}; restoring the best epoch "
                    f"({self.best_epoch}).", RuntimeWarning, stacklevel=3,
                )
                break
            record = {"epoch": epoch, "train_loss": train_loss}
            if validation is not None:
                record.update(self.evaluate(*validation))
            record["seconds"] = time.perf_counter() - start
            self.history.append(record)
            self._report(record)
            if validation is not None and record["val_accuracy"] > self.best_score:
                self.best_score, self.best_epoch, self.best_state = record["val_accuracy"], epoch, _cpu_state(self.network)
            elif validation is None:
                self.best_epoch, self.best_state = epoch, None
            self.epoch, self.progress = epoch + 1, None
            self.on_epoch_end()
        if self.best_state is not None:
            self.network.load_state_dict(self.best_state)
        if self.checkpointer is not None and self.is_main_process:
            self.checkpointer.remove()
        return self.history, self.best_epoch

    def resume(self):
        """Load the checkpointer's state if it holds one for this run.

        Returns
        -------
        bool
            Whether training continues from a checkpoint.
        """
        state = self.checkpointer.load()
        if state is None:
            return False
        self.load_state_dict(state)
        position = "" if self.progress is None else f", step {self.progress['next']}"
        logger.info("resuming from %s at epoch %d%s", self.checkpointer.path, self.epoch, position)
        if self.config.verbose:
            print(f"resuming from {self.checkpointer.path} at epoch {self.epoch}{position}", flush=True)
        return True

    def _report(self, record):
        line = "epoch {epoch}: train_loss={train_loss:.4f}".format(**record)
        if "val_accuracy" in record:
            line += " val_accuracy={val_accuracy:.4f} val_balanced_accuracy={val_balanced_accuracy:.4f}".format(**record)
        line += " ({seconds:.1f}s)".format(**record)
        logger.info(line)
        if self.config.verbose:
            _write_line(line)
