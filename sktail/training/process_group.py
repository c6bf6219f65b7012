"""The ``torch.distributed`` process group of a data-parallel fit.

Under ``torchrun`` every process calls ``fit`` with the same texts and labels.
Each process therefore computes the same hold-out split, class counts, tail
prior, vocabulary and shuffled *global* batches. This module decides whether
a fit is distributed, joins the process group, and offers the few collectives
``fit`` needs around training (a shared seed, rank 0 first);
:mod:`sktail.training.parallel` does the work inside the loop.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch

__all__ = [
    "TORCHRUN_VARIABLES",
    "DistributedContext",
    "broadcast_object",
    "init_distributed",
    "main_process_first",
    "shared_random_state",
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


def broadcast_object(value, context: DistributedContext):
    """Rank 0's ``value``, on every rank.

    Parameters
    ----------
    value : object
        Any picklable value (only rank 0's is used).
    context : DistributedContext
        This process.

    Returns
    -------
    object
    """
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
    seed = broadcast_object(int(rng.randint(np.iinfo(np.int32).max)), context)
    return np.random.RandomState(seed)


