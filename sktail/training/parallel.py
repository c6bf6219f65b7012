"""How the loop's work is spread: this process alone, or one rank of a DDP job.

The loop asks its parallel strategy for exactly the points where data-parallel
training differs from training in one process: which rows of a global batch
this process trains on and how its loss is scaled, whether a backward pass
synchronises gradients, how FGM's embedding gradient is averaged, how numbers
are summed over the processes, and whether this process writes files. The loop
itself is the same for both.

:class:`SingleProcess` is the default strategy;
:class:`~sktail.training.data_parallel.DataParallel` (one rank of a DDP job)
overrides its methods.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

__all__ = ["NonFiniteError", "SingleProcess"]


class NonFiniteError(FloatingPointError):
    """Raised when a loss, gradient, weight or output stops being finite during training.

    A subclass of :class:`FloatingPointError`.

    See Also
    --------
    Trainer : The loop that raises it.

    Examples
    --------
    >>> from sktail.training import NonFiniteError
    >>> issubclass(NonFiniteError, FloatingPointError)
    True
    """


class SingleProcess:
    """Train in this process alone (the default strategy).

    Attributes
    ----------
    rank, world_size : int
        0 and 1.
    is_main_process : bool
        Always True: this process logs and writes files.

    See Also
    --------
    DataParallel : One rank of a ``torch.distributed`` data-parallel job.

    Examples
    --------
    >>> import numpy as np
    >>> from sktail.training import SingleProcess
    >>> parallel = SingleProcess()
    >>> parallel.shard(np.arange(3), None)
    (array([0, 1, 2]), 1.0)
    >>> parallel.sum([1, 2]), parallel.gather("x")
    (array([1., 2.]), ['x'])
    """

    rank, world_size, is_main_process = 0, 1, True

    def setup(self, network: torch.nn.Module) -> torch.nn.Module:
        """Return the module the loop forwards through: ``network`` itself.

        Parameters
        ----------
        network : torch.nn.Module
            The network being trained.

        Returns
        -------
        torch.nn.Module
            ``network``, unwrapped.
        """
        return network

    def shard(self, rows, sample_weight):
        """Return all rows of the batch, with loss scale 1.

        Parameters
        ----------
        rows : ndarray of int
            Row indices of the batch.
        sample_weight : ndarray or None
            Per-row weights of the training set (unused).

        Returns
        -------
        rows : ndarray of int
            ``rows`` itself.
        scale : float
            1.0: the local loss is the batch's loss.
        """
        return rows, 1.0

    def backward_context(self, sync: bool):
        """Return a no-op context: there is nothing to synchronise.

        Parameters
        ----------
        sync : bool
            Unused.

        Returns
        -------
        contextlib.AbstractContextManager
            A :func:`contextlib.nullcontext`.
        """
        return contextlib.nullcontext()

    #: Whether the loop checks this process's loss for non-finite values (one
    #: process may stop alone; in a DDP job they would reach every rank
    #: through the averaged gradients anyway).
    checks_loss = True

    def step_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """Return the batch's clean loss, detached, in float64, still on the device.

        Parameters
        ----------
        loss : Tensor
            Scalar loss of the batch.

        Returns
        -------
        Tensor
            A float64 scalar added to the epoch's running loss.
        """
        return loss.detach().double()

    def fgm_gradient(self, grad, embedding):
        """Return FGM's gradient as given (None: the embedding's own ``.grad``).

        Parameters
        ----------
        grad : Tensor or None
            This batch's share of the embedding gradient, when gradients accumulate.
        embedding : Tensor
            FGM's target.

        Returns
        -------
        Tensor or None
            ``grad`` itself; None tells FGM to read ``embedding.grad``.
        """
        return grad

    def after_fgm(self, network, applied: bool, sync: bool) -> None:
        """Nothing to do after the adversarial pass.

        Parameters
        ----------
        network : torch.nn.Module
            The trained network.
        applied : bool
            Whether the adversarial pass ran.
        sync : bool
            Whether this is the last micro-batch before an optimizer step.
        """

    def sum(self, values) -> np.ndarray:
        """Sum ``values`` over the processes: here ``values`` as float64.

        Parameters
        ----------
        values : array-like of float
            Numbers of this process (e.g. per-class counts).

        Returns
        -------
        ndarray of float64
            ``values``, converted.
        """
        return np.asarray(values, dtype=np.float64)

    def validation_rows(self, n_rows: int):
        """Return the validation rows this process scores: None, every one.

        Parameters
        ----------
        n_rows : int
            Number of validation rows.

        Returns
        -------
        None
            No selection: all rows are scored here.
        """
        return None

    def agree(self, flag: bool) -> bool:
        """Return rank 0's decision: ``flag`` itself.

        Parameters
        ----------
        flag : bool
            This process's decision (e.g. whether a checkpoint is due).

        Returns
        -------
        bool
            ``flag``.
        """
        return flag

    def gather(self, value) -> list:
        """Collect the ``value`` of every process: here ``[value]``.

        Parameters
        ----------
        value : object
            This process's value (any picklable object).

        Returns
        -------
        list
            A list of one element, ``value``.
        """
        return [value]
