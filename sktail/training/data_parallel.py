"""One rank of a ``torch.distributed`` data-parallel job: the DDP strategy of the loop.

Rank ``r`` forwards rows ``r::world_size`` of every global batch with its loss
scaled by :func:`shard_rows`, so that DDP's average of the ranks' gradients is
the gradient of the global batch's mean loss; one optimizer step then equals
one step of a single process on the whole global batch. FGM needs the gradient
of the *global* loss with respect to the word embeddings, so the clean backward
pass runs without DDP's synchronisation and only the embedding gradient is
averaged by hand; the adversarial backward pass then synchronises the summed
clean and adversarial gradients once. See :mod:`sktail.training.parallel` for
the interface.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .parallel import SingleProcess
from .process_group import DistributedContext, broadcast_object

__all__ = ["DataParallel", "shard_rows"]


def _no_buffer_sync(ddp_class) -> dict:
    """DDP's keyword that skips the per-forward buffer broadcast (renamed in torch 2.13)."""
    import inspect

    names = inspect.signature(ddp_class.__init__).parameters
    return {"forward_sync_buffers": False} if "forward_sync_buffers" in names else {"broadcast_buffers": False}


class DataParallel(SingleProcess):
    """One rank of a ``torch.distributed`` data-parallel job.

    Parameters
    ----------
    context : DistributedContext
        This process's rank, world size and device.

    See Also
    --------
    SingleProcess : Training in this process alone.
    shard_rows : A rank's rows of a global batch and its loss scale.

    Notes
    -----
    Every rank computes the same global batches (the batch order comes from a
    random stream shared by all ranks), trains on its share, and sums the
    per-class counts of its share of the validation rows with the other
    ranks, so every rank sees the same metrics and keeps the same best epoch.
    Non-finite values reach every rank through the averaged gradients and are
    caught at the optimizer step on all ranks at once.

    Examples
    --------
    The strategy of rank 1 in a job of two processes (the steps that
    communicate need an initialised process group; these do not):

    >>> import numpy as np
    >>> import torch
    >>> from sktail.training import DataParallel
    >>> from sktail.training.process_group import DistributedContext
    >>> context = DistributedContext(rank=1, world_size=2, device=torch.device("cpu"), backend="gloo")
    >>> parallel = DataParallel(context)
    >>> parallel.is_main_process
    False
    >>> parallel.shard(np.arange(5), None)
    (array([1, 3]), 0.8)
    >>> parallel.validation_rows(5)
    array([1, 3])
    """

    def __init__(self, context: DistributedContext):
        self.context = context
        self.rank, self.world_size = context.rank, context.world_size
        self.is_main_process = context.is_main_process
        self.device = context.device
        self.model = None

    def setup(self, network):
        """Wrap ``network`` in DDP (which broadcasts rank 0's weights) and reseed dropout.

        Parameters
        ----------
        network : torch.nn.Module
            The network, already on this rank's device.

        Returns
        -------
        torch.nn.parallel.DistributedDataParallel
            The wrapped network (also kept as ``self.model``).
        """
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # Buffers are constants here: no need to broadcast them before every forward pass.
        self.model = DistributedDataParallel(network, device_ids=device_ids, **_no_buffer_sync(DistributedDataParallel))
        if self.rank:
            # Same initial weights, different dropout masks on each rank.
            torch.manual_seed(torch.initial_seed() + self.rank)
        return self.model

    def shard(self, rows, sample_weight):
        """Return this rank's rows of a global batch and its loss scale, see :func:`shard_rows`.

        Parameters
        ----------
        rows : ndarray of int
            Row indices of the global batch.
        sample_weight : ndarray or None
            Per-row weights of the whole training set.

        Returns
        -------
        rows : ndarray of int
            ``rows[rank::world_size]`` (the first row when that is empty).
        scale : float
            The factor of the local mean loss.
        """
        return shard_rows(rows, sample_weight, self.rank, self.world_size)

    def backward_context(self, sync: bool):
        """Return DDP's ``no_sync`` context unless gradients are synchronised in this backward pass.

        Parameters
        ----------
        sync : bool
            Whether this backward pass averages the gradients over the ranks.

        Returns
        -------
        contextlib.AbstractContextManager
            A null context when ``sync``, else ``self.model.no_sync()``.
        """
        return contextlib.nullcontext() if sync else self.model.no_sync()

    checks_loss = False

    def step_loss(self, loss):
        """Return this rank's part of the global batch's loss (the parts sum to it), on the device.

        Parameters
        ----------
        loss : Tensor
            This rank's scaled scalar loss.

        Returns
        -------
        Tensor
            ``loss`` detached, in float64, divided by the world size.
        """
        return loss.detach().double() / self.world_size

    def _all_reduce(self, tensor, average=False):
        import torch.distributed as dist

        dist.all_reduce(tensor)
        if average:
            tensor.div_(self.world_size)
        return tensor

    def fgm_gradient(self, grad, embedding):
        """Return the embedding gradient of the global batch: this rank's share averaged over the ranks.

        Parameters
        ----------
        grad : Tensor or None
            This batch's share of the embedding gradient, when gradients
            accumulate; None reads a copy of ``embedding.grad``.
        embedding : Tensor
            FGM's target.

        Returns
        -------
        Tensor
            The averaged gradient (``grad`` itself, reduced in place, when given).
        """
        grad = embedding.grad.detach().clone() if grad is None else grad
        return self._all_reduce(grad, average=True)

    def after_fgm(self, network, applied, sync):
        """Synchronise the clean gradients by hand when the adversarial pass was skipped.

        Parameters
        ----------
        network : torch.nn.Module
            The trained network (not the DDP wrapper).
        applied : bool
            Whether the adversarial pass ran (its backward pass then synchronised).
        sync : bool
            Whether this is the last micro-batch before an optimizer step;
            nothing is done otherwise.
        """
        if applied or not sync:
            return
        for param in network.parameters():
            if param.grad is not None:
                self._all_reduce(param.grad, average=True)

    def sum(self, values):
        """Sum ``values`` element-wise over the ranks, in float64.

        Parameters
        ----------
        values : array-like of float
            This rank's numbers (e.g. per-class counts).

        Returns
        -------
        ndarray of float64
            The sums, the same on every rank.
        """
        tensor = torch.as_tensor(np.asarray(values, dtype=np.float64), device=self.device)
        return self._all_reduce(tensor).cpu().numpy()

    def validation_rows(self, n_rows):
        """Return this rank's share of the validation rows.

        Parameters
        ----------
        n_rows : int
            Number of validation rows.

        Returns
        -------
        ndarray of int
            ``arange(rank, n_rows, world_size)``.
        """
        return np.arange(self.rank, n_rows, self.world_size)

    def agree(self, flag):
        """Broadcast rank 0's ``flag`` to every rank.

        Parameters
        ----------
        flag : bool
            This rank's decision; only rank 0's counts.

        Returns
        -------
        bool
            Rank 0's ``flag``.
        """
        return bool(broadcast_object(bool(flag), self.context))

    def gather(self, value):
        """Collect the ``value`` of every rank, in rank order.

        Parameters
        ----------
        value : object
            This rank's value (any picklable object).

        Returns
        -------
        list
            One value per rank.
        """
        import torch.distributed as dist

        out = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out


def shard_rows(rows, sample_weight, rank: int, world_size: int):
    """Select this rank's rows of a global batch, and the weight of its loss.

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
