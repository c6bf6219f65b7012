"""The loop's reporting callbacks: one log line per epoch and a progress bar over the batches."""

from __future__ import annotations

import logging

from .._progress import bar_options, write_line
from .callbacks import Callback

__all__ = ["EpochLog", "ProgressBar"]

logger = logging.getLogger("sktail")


class EpochLog(Callback):
    """Log one line per epoch to the ``sktail`` logger, and to stderr when verbose (main process only).

    See Also
    --------
    ProgressBar : A bar over each epoch's batches.
    Callback : The hooks a callback can override.

    Examples
    --------
    >>> from sktail.training import Callback, EpochLog
    >>> isinstance(EpochLog(), Callback)
    True
    """

    def on_epoch_end(self, trainer, record):
        """Log the epoch's loss, validation scores and seconds.

        Parameters
        ----------
        trainer : Trainer
            The running loop; only its main process logs.
        record : dict
            The epoch's entry of the history (``epoch``, ``train_loss``,
            ``seconds`` and, with validation data, ``val_accuracy`` and
            ``val_balanced_accuracy``).
        """
        if not trainer.parallel.is_main_process:
            return
        line = "epoch {epoch}: train_loss={train_loss:.4f}".format(**record)
        if "val_accuracy" in record:
            line += " val_accuracy={val_accuracy:.4f} val_balanced_accuracy={val_balanced_accuracy:.4f}".format(**record)
        line += " ({seconds:.1f}s)".format(**record)
        logger.info(line)
        if trainer.config.verbose:
            write_line(line)


class ProgressBar(Callback):
    """Show a :mod:`tqdm` bar over each epoch's batches with the running loss (verbose, main process).

    See Also
    --------
    EpochLog : One line per epoch.
    Callback : The hooks a callback can override.

    Examples
    --------
    >>> from sktail.training import ProgressBar
    >>> bar = ProgressBar()
    >>> bar.on_train_end(None)  # no bar open: nothing to close
    """

    def __init__(self):
        self._bar = None
        self._total = 0.0

    def on_epoch_begin(self, trainer, n_batches, start):
        """Open the bar (nothing when quiet, not the main process, or without tqdm).

        Parameters
        ----------
        trainer : Trainer
            The running loop.
        n_batches : int
            Batches in the epoch (the bar's total).
        start : int
            Index of the first batch run (the bar's initial position).
        """
        self._bar = None
        if not (trainer.config.verbose >= 1 and trainer.parallel.is_main_process):
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self._bar = tqdm(total=n_batches, initial=start, desc="batches", unit="batch", leave=False,
                         **bar_options())

    def on_batch_end(self, trainer, index, loss):
        """Advance the bar and show the epoch's mean loss so far.

        Parameters
        ----------
        trainer : Trainer
            The running loop; the loss shown is read from its ``state.progress``.
        index : int
            0-based index of the batch in the epoch.
        loss : Tensor
            The batch's clean loss (not read).
        """
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{trainer.state.progress['total'] / (index + 1):.4f}", refresh=False)

    def on_epoch_end(self, trainer, record=None):
        """Close the bar.

        Parameters
        ----------
        trainer : Trainer
            The running loop.
        record : dict, optional
            The epoch's entry of the history (not read).
        """
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_train_end(self, trainer):
        """Close a bar left open by an epoch that stopped early.

        Parameters
        ----------
        trainer : Trainer
            The finished loop.
        """
        self.on_epoch_end(trainer)
