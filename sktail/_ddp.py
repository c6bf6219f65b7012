"""Multi-process data-parallel training with ``torch.distributed`` (DDP).

Under ``torchrun`` every process calls ``fit`` with the same texts and labels.
Each process therefore computes the same hold-out split, class counts, tail
prior, vocabulary and shuffled *global* batches; it then trains on its share of
every global batch (rows ``rank::world_size``). Gradients are averaged by
:class:`torch.nn.parallel.DistributedDataParallel`, with each share's loss
weighted by its share of the batch, so one optimizer step equals the step of a
single process on the whole global batch. ``batch_size`` is therefore the
global batch size, whatever the number of processes.

FGM needs the gradient of the *global* batch's loss with respect to the word
embeddings, so the clean backward pass runs without DDP's synchronisation and
only the embedding gradient of that pass is averaged by hand; the adversarial
backward pass then synchronises all gradients (clean plus adversarial) once.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch

from ._training import NonFiniteError, Trainer, _autocast, length_bucketed_batches, predict_logits

__all__ = [
    "DistributedContext",
    "DistributedTrainer",
    "init_distributed",
    "main_process_first",
    "shard_rows",
    "shared_random_state",
    "validation_scores",
    "wants_distributed",
]

#: Environment variables that ``torchrun`` (and ``torch.distributed.launch``) set.
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a ``torch.distributed`` job.

    Attributes
    ----------
    rank : int
        Global rank of this process.
    world_size : int
        Number of processes.
    device : torch.device
        This process's training device (``cuda:LOCAL_RANK`` for GPUs).
    backend : str
        The process group's backend (``"gloo"``, ``"nccl"``, ...).
    """

    rank: int
    world_size: int
    device: torch.device
    backend: str

    @property
    def is_main_process(self) -> bool:
        """Whether this is rank 0, the only process that writes files."""
        return self.rank == 0


# -- deciding and starting -------------------------------------------------------
def wants_distributed(setting, *, initialized: bool, group_size: int, env) -> bool:
    """The rule behind ``AutoTailClassifier(distributed=...)``.

    Parameters
    ----------
    setting : {"auto", True, False}
        ``"auto"``: data-parallel training when a process group of more than
        one process is initialised, or when the ``torchrun`` variables
        (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) announce
        ``WORLD_SIZE > 1``. ``True``: always (a world of one process
        included); an error when there is neither a process group nor the
        variables. ``False``: never.
    initialized : bool
        Whether ``torch.distributed.is_initialized()``.
    group_size : int
        World size of the initialised group (ignored when not initialised).
    env : mapping
        The environment variables.

    Returns
    -------
    bool

    Examples
    --------
    >>> torchrun = {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}
    >>> wants_distributed("auto", initialized=False, group_size=1, env=torchrun)
    True
    >>> wants_distributed("auto", initialized=False, group_size=1, env={})
    False
    """
    if setting is False:
        return False
    launched = all(name in env for name in TORCHRUN_VARIABLES)
    if setting is True:
        if not (initialized or launched):
            raise ValueError(
                "distributed=True needs torch.distributed: launch the script with "
                "`torchrun --nproc_per_node=N script.py`, or call "
                "torch.distributed.init_process_group() before fit."
            )
        return True
    if initialized:
        return group_size > 1
    return launched and int(env["WORLD_SIZE"]) > 1


def _local_device(device: torch.device, env) -> torch.device:
    """Give each process its own GPU: ``cuda`` becomes ``cuda:LOCAL_RANK``."""
    if device.type != "cuda":
        return device
    if device.index is None:
        index = int(env["LOCAL_RANK"]) if "LOCAL_RANK" in env else torch.cuda.current_device()
        device = torch.device("cuda", index)
    torch.cuda.set_device(device)
    return device


def init_distributed(setting, device: torch.device, env=None) -> DistributedContext | None:
    """Join (or start) the process group when ``setting`` asks for it.

    Parameters
    ----------
    setting : {"auto", True, False}
        See :func:`wants_distributed`.
    device : torch.device
        The device ``fit`` resolved; a bare ``cuda`` becomes this process's
        ``cuda:LOCAL_RANK``.
    env : mapping, default=None
        Environment variables (``os.environ`` when None).

    Returns
    -------
    DistributedContext or None
        None when training runs in this process alone.

    Notes
    -----
    A process group that is not yet initialised is started from the
    ``torchrun`` variables with the ``nccl`` backend for CUDA devices and
    ``gloo`` otherwise, and left initialised for later fits; call
    ``torch.distributed.destroy_process_group()`` at the end of the script.
    """
    env = os.environ if env is None else env
    import torch.distributed as dist

    if not dist.is_available():
        if setting is True:
            raise ValueError("distributed=True, but this build of torch has no torch.distributed.")
        return None
    initialized = dist.is_initialized()
    group_size = dist.get_world_size() if initialized else 1
    if not wants_distributed(setting, initialized=initialized, group_size=group_size, env=env):
        return None
    device = _local_device(device, env)
    if not initialized:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    backend = str(dist.get_backend())
    if device.type != "cuda" and "gloo" not in backend:
        raise ValueError(
            f"The process group's backend {backend!r} cannot reduce tensors on {device}; "
            "use the 'gloo' backend for CPU training or train on CUDA devices."
        )
    return DistributedContext(dist.get_rank(), dist.get_world_size(), device, backend)


# -- collectives -----------------------------------------------------------------
def _barrier(context: DistributedContext):
    import torch.distributed as dist

    if "nccl" in context.backend and context.device.type == "cuda":
        dist.barrier(device_ids=[context.device.index])
    else:
        dist.barrier()


@contextlib.contextmanager
def main_process_first(context: DistributedContext | None):
    """Run the block on rank 0 first, then on the other ranks.

    Work that may write caches (building an encoder, converting weights) is
    then done once, by rank 0, and the other ranks read what it wrote.

    Parameters
    ----------
    context : DistributedContext or None
        None runs the block as is.
    """
    if context is None:
        yield
        return
    if not context.is_main_process:
        _barrier(context)
    try:
        yield
    finally:
        if context.is_main_process:
            _barrier(context)


def _broadcast_object(value, context: DistributedContext):
    import torch.distributed as dist

    box = [value]
    device = context.device if "nccl" in context.backend else None
    dist.broadcast_object_list(box, src=0, device=device)
    return box[0]


def shared_random_state(random_state, rng: np.random.RandomState, context):
    """The RandomState every rank shares.

    An integer ``random_state`` already gives every rank the same stream.
    Otherwise (None or a RandomState instance) rank 0 draws a seed from
    ``rng`` and broadcasts it, so that the hold-out split and the batch order
    agree across ranks.

    Parameters
    ----------
    random_state : int, RandomState instance or None
        The estimator's parameter.
    rng : numpy.random.RandomState
        ``check_random_state(random_state)`` of this rank.
    context : DistributedContext or None
        None returns ``rng`` unchanged.

    Returns
    -------
    numpy.random.RandomState
    """
    if context is None or isinstance(random_state, Integral):
        return rng
    seed = _broadcast_object(int(rng.randint(np.iinfo(np.int32).max)), context)
    return np.random.RandomState(seed)


# -- sharding and metrics ----------------------------------------------------------
def shard_rows(rows, sample_weight, rank: int, world_size: int):
    """This rank's rows of a global batch, and the weight of its loss.

    Parameters
    ----------
    rows : ndarray of int
        Row indices of the global batch (length-sorted by the batcher, so the
        strided shares have similar lengths).
    sample_weight : ndarray or None
        Per-row weights of the whole training set.
    rank, world_size : int
        This process and the number of processes.

    Returns
    -------
    local : ndarray of int
        ``rows[rank::world_size]``; when that is empty, the batch's first row,
        so that every rank still runs the step's collectives.
    scale : float
        ``world_size * s_local / s_global`` where ``s`` is the row count (or
        the weight sum): multiplied into the local mean loss, DDP's average over
        ranks of the scaled local gradients equals the gradient of the global
        batch's (weighted) mean loss. 0 for a placeholder row.

    Examples
    --------
    >>> import numpy as np
    >>> shard_rows(np.arange(5), None, 1, 2)
    (array([1, 3]), 0.8)
    >>> shard_rows(np.arange(1), None, 1, 2)
    (array([0]), 0.0)
    """
    rows = np.asarray(rows)
    local = rows[rank::world_size]
    if sample_weight is None:
        part, whole = float(len(local)), float(len(rows))
    else:
        part, whole = float(np.sum(sample_weight[local])), float(np.sum(sample_weight[rows]))
    scale = world_size * part / whole if whole > 0 else 0.0
    if len(local) == 0:
        local = rows[:1]
    return local, scale


def validation_scores(total, correct) -> dict:
    """Accuracy and balanced accuracy from per-class counts.

    Parameters
    ----------
    total : array-like of shape (n_classes,)
        Validation rows of each true class.
    correct : array-like of shape (n_classes,)
        Correctly predicted rows of each true class.

    Returns
    -------
    dict
        ``val_accuracy`` and ``val_balanced_accuracy`` (the mean recall over
        the classes present, as :func:`sklearn.metrics.balanced_accuracy_score`).
    """
    total = np.asarray(total, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    n = total.sum()
    present = total > 0
    accuracy = float(correct.sum() / n) if n else float("nan")
    balanced = float(np.mean(correct[present] / total[present])) if present.any() else float("nan")
    return {"val_accuracy": accuracy, "val_balanced_accuracy": balanced}


# -- the trainer -------------------------------------------------------------------
def _no_buffer_sync(ddp_class) -> dict:
    """DDP's keyword that skips the per-forward buffer broadcast (renamed in torch 2.13)."""
    import inspect

    names = inspect.signature(ddp_class.__init__).parameters
    return {"forward_sync_buffers": False} if "forward_sync_buffers" in names else {"broadcast_buffers": False}


class DistributedTrainer(Trainer):
    """A :class:`~sktail._training.Trainer` for one rank of a DDP job.

    Parameters
    ----------
    network, encoder, loss_fn, config, rng
        As for :class:`~sktail._training.Trainer`; ``rng`` must produce the
        same stream on every rank, ``config.batch_size`` is the global batch.
    context : DistributedContext
        This process's rank, world size and device.

    Notes
    -----
    Per global batch, rank ``r`` forwards rows ``r::world_size`` with its loss
    scaled by :func:`shard_rows`. Without FGM the backward pass synchronises at
    the last micro-batch of each accumulation window (``no_sync`` before). With
    FGM the clean backward pass never synchronises; the embedding gradient of
    that pass is averaged by hand, so every rank builds the same perturbation
    ``r = eps * g / ||g||`` from the global gradient, and the adversarial pass
    synchronises the summed clean and adversarial gradients. Validation rows
    are split across ranks and the per-class counts summed, so every rank sees
    the same validation metrics and keeps the same best epoch.
    """

    def __init__(self, network, encoder, loss_fn, config, rng, context: DistributedContext, checkpointer=None):
        super().__init__(network, encoder, loss_fn, config, rng, checkpointer)
        from torch.nn.parallel import DistributedDataParallel

        self.context = context
        self.rank, self.world_size = context.rank, context.world_size
        self.is_main_process = context.is_main_process
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # Broadcasts rank 0's initial weights to every rank. Buffers are constants here:
        # no need to broadcast them before every forward pass.
        self.model = DistributedDataParallel(
            self.network, device_ids=device_ids, **_no_buffer_sync(DistributedDataParallel)
        )
        self._scale = 1.0
        self._sync = True
        if self.rank:
            # Same initial weights, different dropout masks on each rank.
            torch.manual_seed(torch.initial_seed() + self.rank)

    # -- collectives ---------------------------------------------------------
    def _all_reduce(self, tensor, average=False):
        import torch.distributed as dist

        dist.all_reduce(tensor)
        if average:
            tensor.div_(self.world_size)
        return tensor

    def _sum_across_ranks(self, array) -> np.ndarray:
        tensor = torch.as_tensor(np.asarray(array, dtype=np.float64), device=self.device)
        return self._all_reduce(tensor).cpu().numpy()

    def _all_reduce_gradients(self):
        for param in self.network.parameters():
            if param.grad is not None:
                self._all_reduce(param.grad, average=True)

    def _synchronised(self, sync: bool):
        return contextlib.nullcontext() if sync else self.model.no_sync()

    # -- one batch -----------------------------------------------------------
    def compute_loss(self, batch, target, weight):
        """Forward through DDP; the loss is this rank's scaled share."""
        self.forward_passes += 1
        with _autocast(self.device, self.config.autocast_dtype):
            logits = self.model(batch)
        return self.loss_fn(logits.float(), target, weight) * self._scale

    def train_step(self, batch, target, weight) -> float:
        """Clean and adversarial passes of this rank's share of one global batch.

        Returns
        -------
        float
            This rank's part of the global batch's clean loss (the parts sum to it).
        """
        embedding = self.fgm.embedding
        held = None
        if self.fgm.enabled and embedding.grad is not None:
            held = embedding.grad.detach().clone()
        with self._synchronised(self._sync and not self.fgm.enabled):
            loss = self.compute_loss(batch, target, weight)
            self._backward(loss)
        if self.fgm.enabled:
            grad = embedding.grad.detach().clone() if held is None else embedding.grad - held
            grad = self._all_reduce(grad, average=True)
            with self.fgm.perturb(grad) as applied:
                if applied:
                    with self._synchronised(self._sync):
                        adv_loss = self.compute_loss(batch, target, weight)
                        self._backward(self.config.fgm_weight * adv_loss)
            if not applied and self._sync:
                # Every rank skipped (the global norm decides), so none synchronised.
                self._all_reduce_gradients()
        # Non-finite values reach every rank through the averaged gradients and
        # are caught in optimizer_step (or skipped by the fp16 scaler) on all ranks.
        return float(loss.detach()) / self.world_size

    # -- epochs --------------------------------------------------------------
    def run_epoch(self, ids, y, w=None) -> float:
        """One pass over this rank's shares of the shuffled global batches.

        Returns
        -------
        float
            Mean clean loss of the global batches (equal on every rank).
        """
        self.network.train()
        batches = length_bucketed_batches([len(a) for a in ids], self.config.batch_size, self.rng)
        accum = self.config.grad_accumulation_steps
        total = 0.0
        for i, rows in enumerate(batches):
            local, self._scale = shard_rows(rows, w, self.rank, self.world_size)
            self._sync = (i + 1) % accum == 0 or i + 1 == len(batches)
            total += self.train_step(*self._batches(ids, y, w, local))
            if self._sync:
                self.optimizer_step()
        mean = float(self._sum_across_ranks([total])[0]) / max(1, len(batches))
        if not math.isfinite(mean):
            raise NonFiniteError(f"the training loss became {mean}")
        return mean

    def evaluate(self, ids, y) -> dict:
        """Validation metrics from per-class counts summed over the ranks' shares."""
        n_classes = self.network.head.out_features
        local = np.arange(self.rank, len(ids), self.world_size)
        logits = predict_logits(
            self.network, self.encoder, [ids[i] for i in local], batch_size=self.config.batch_size * 2,
            device=self.device, autocast_dtype=self.config.autocast_dtype,
        )
        truth = np.asarray(y)[local]
        hit = truth[logits.argmax(axis=1) == truth]
        counts = np.stack([np.bincount(truth, minlength=n_classes), np.bincount(hit, minlength=n_classes)])
        total, correct = self._sum_across_ranks(counts)
        return validation_scores(total, correct)

    def _report(self, record):
        if self.is_main_process:
            super()._report(record)
