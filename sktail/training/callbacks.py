"""Side concerns of the loop as callbacks: best epoch, epoch log, progress bar, checkpoints.

The loop (:class:`~sktail.training.Trainer`) calls every callback at fixed
points: :meth:`Callback.on_train_begin`, :meth:`~Callback.on_epoch_begin`,
:meth:`~Callback.on_batch_end`, :meth:`~Callback.on_step_end` (after an
optimizer step inside an epoch), :meth:`~Callback.on_epoch_end` and
:meth:`~Callback.on_train_end`. Callbacks read and update the loop's
:class:`~sktail.training.TrainingState`; only the loop runs steps.

:func:`observe` adds callbacks to every loop started inside a ``with`` block,
for instance to time the optimizer steps of ``AutoTailClassifier.fit``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging

__all__ = ["BestEpoch", "Callback", "Checkpoint", "observe", "observed"]

logger = logging.getLogger("sktail")
_OBSERVERS: contextvars.ContextVar[tuple] = contextvars.ContextVar("sktail_observers", default=())


class Callback:
    """Base class: every hook does nothing.

    Each hook receives the :class:`~sktail.training.Trainer`; its ``state``
    holds the epoch, the position in it, the history and the best epoch.
    Subclass it and override the hooks needed; pass instances to the loop
    (``Trainer(callbacks=...)``) or add them to ``fit`` with :func:`observe`.

    See Also
    --------
    observe : Add callbacks to every loop started inside a ``with`` block.
    BestEpoch : Keep the weights of the best validation epoch.
    EpochLog : Log one line per epoch.

    Examples
    --------
    >>> from sktail import AutoTailClassifier
    >>> from sktail.training import Callback, observe
    >>> class EpochCount(Callback):
    ...     def __init__(self):
    ...         self.epochs = 0
    ...     def on_epoch_end(self, trainer, record):
    ...         self.epochs += 1
    >>> counter = EpochCount()
    >>> clf = AutoTailClassifier(epochs=2, batch_size=4, validation_fraction=None, random_state=0)
    >>> with observe(counter):
    ...     _ = clf.fit(["深度学习", "水稻种植", "神经网络", "小麦栽培"] * 2, ["工", "农", "工", "农"] * 2)
    >>> counter.epochs
    2
    """

    def on_train_begin(self, trainer) -> None:
        """Run before the first epoch (after the data are prepared).

        Parameters
        ----------
        trainer : Trainer
            The running loop.
        """

    def on_epoch_begin(self, trainer, n_batches: int, start: int) -> None:
        """Run before the batches of an epoch.

        Parameters
        ----------
        trainer : Trainer
            The running loop.
        n_batches : int
            Batches in the epoch.
        start : int
            Index of the first batch run (above 0 when resuming mid-epoch).
        """

    def on_batch_end(self, trainer, index: int, loss) -> None:
        """Run after the clean (and adversarial) pass of one batch.

        Parameters
        ----------
        trainer : Trainer
            The running loop.
        index : int
            0-based index of the batch in the epoch.
        loss : Tensor
            The batch's clean loss, on the device (reading it, e.g. with
            ``float(loss)``, waits for the device).
        """

    def on_optimizer_step(self, trainer) -> None:
        """Run after every optimizer step (the epoch's last included).

        Parameters
        ----------
        trainer : Trainer
            The running loop.
        """

    def on_step_end(self, trainer) -> None:
        """Run after an optimizer step that is not the epoch's last.

        Parameters
        ----------
        trainer : Trainer
            The running loop.
        """

    def on_epoch_end(self, trainer, record: dict) -> None:
        """Run after an epoch and its validation; ``trainer.state.epoch`` is already the next one.

        Parameters
        ----------
        trainer : Trainer
            The running loop.
        record : dict
            The epoch's entry of the history.
        """

    def on_train_end(self, trainer) -> None:
        """Run after the last epoch (or a non-finite stop that keeps an earlier epoch).

        Parameters
        ----------
        trainer : Trainer
            The running loop.
        """


class BestEpoch(Callback):
    """Keep the weights of the epoch with the best validation score.

    Parameters
    ----------
    monitor : str or None, default="val_accuracy"
        Key of the epoch record to maximise (docs/method.md's rule: accuracy).
        None, or a record without that key (no validation data), keeps the
        last epoch.

    See Also
    --------
    Callback : The hooks a callback can override.
    TrainingState : Holds ``best_epoch``, ``best_score`` and ``best_weights``.

    Examples
    --------
    >>> from sktail.training import BestEpoch
    >>> BestEpoch().monitor
    'val_accuracy'
    >>> BestEpoch(monitor="val_balanced_accuracy").monitor
    'val_balanced_accuracy'
    """

    def __init__(self, monitor: str | None = "val_accuracy"):
        self.monitor = monitor

    def on_epoch_end(self, trainer, record):
        """Snapshot the weights when ``record[monitor]`` improves strictly.

        Without ``monitor`` (None, or absent from the record: no validation
        data) the epoch is recorded as the best one and the current weights
        are kept.

        Parameters
        ----------
        trainer : Trainer
            The running loop; its ``state`` is updated.
        record : dict
            The epoch's entry of the history.
        """
        state = trainer.state
        if self.monitor is not None and self.monitor in record:
            if record[self.monitor] > state.best_score:
                state.best_score, state.best_epoch = record[self.monitor], record["epoch"]
                state.best_weights = trainer.cpu_weights()
        else:
            state.best_epoch, state.best_weights = record["epoch"], None

    def on_train_end(self, trainer):
        """Load the kept weights into the network.

        Parameters
        ----------
        trainer : Trainer
            The finished loop; nothing is loaded when no weights were kept.
        """
        if trainer.state.best_weights is not None:
            trainer.network.load_state_dict(trainer.state.best_weights)


class Checkpoint(Callback):
    """Resume from, write and finally remove the checkpoint of one run.

    Parameters
    ----------
    checkpointer : Checkpointer
        The run's checkpoint file (see :mod:`sktail.training.checkpoint`).

    See Also
    --------
    Checkpointer : The checkpoint file of one run.
    Callback : The hooks a callback can override.

    Notes
    -----
    Every epoch end is saved, and inside epochs every optimizer step once the
    checkpointer's interval has passed. Only the main process writes; in a
    data-parallel job rank 0 decides when a checkpoint is due, and the torch
    RNG state and running loss of every rank are saved, so each rank resumes
    its own dropout stream and its own share of the epoch's loss.

    Examples
    --------
    >>> import tempfile
    >>> from sktail.training import Checkpoint, Checkpointer
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     Checkpoint(Checkpointer(folder, "0123abcd")).checkpointer.path.name
    'sktail-0123abcd.ckpt'
    """

    def __init__(self, checkpointer):
        self.checkpointer = checkpointer

    def on_train_begin(self, trainer):
        """Load the run's checkpoint if there is a usable one.

        Parameters
        ----------
        trainer : Trainer
            The loop whose state is restored from the checkpoint.
        """
        state = self.checkpointer.load()
        if state is None:
            return
        trainer.load_state_dict(state)
        progress = trainer.state.progress
        position = "" if progress is None else f", step {progress['next']}"
        logger.info("resuming from %s at epoch %d%s", self.checkpointer.path, trainer.state.epoch, position)
        if trainer.config.verbose and trainer.parallel.is_main_process:
            print(f"resuming from {self.checkpointer.path} at epoch {trainer.state.epoch}{position}", flush=True)

    def _save(self, trainer):
        state = trainer.state_dict()
        progress = state["progress"]
        own = {"torch": state["rng"]["torch"], "total": None if progress is None else progress["total"]}
        ranks = trainer.parallel.gather(own)
        if len(ranks) > 1:
            state["ranks"] = ranks  # each rank's dropout stream and share of the epoch's loss
        if trainer.parallel.is_main_process:
            self.checkpointer.save(state)

    def on_step_end(self, trainer):
        """Save when the interval has passed.

        Parameters
        ----------
        trainer : Trainer
            The running loop; its main process decides for every rank.
        """
        if trainer.parallel.agree(trainer.parallel.is_main_process and self.checkpointer.due()):
            self._save(trainer)

    def on_epoch_end(self, trainer, record):
        """Save a checkpoint at every epoch end.

        Parameters
        ----------
        trainer : Trainer
            The running loop.
        record : dict
            The epoch's entry of the history (already in the trainer's state).
        """
        self._save(trainer)

    def on_train_end(self, trainer):
        """Delete the checkpoint of the finished run.

        Parameters
        ----------
        trainer : Trainer
            The finished loop; only its main process deletes the file.
        """
        if trainer.parallel.is_main_process:
            self.checkpointer.remove()


@contextlib.contextmanager
def observe(*callbacks: Callback):
    """Add ``callbacks`` to every training loop started inside the block.

    Parameters
    ----------
    *callbacks : Callback
        Extra callbacks, run after the loop's own ones.

    Yields
    ------
    None
        The block runs with the callbacks added; they are removed on exit.

    Examples
    --------
    >>> import time
    >>> from sktail import AutoTailClassifier
    >>> from sktail.training import Callback, observe
    >>> class StepTimes(Callback):
    ...     def __init__(self):
    ...         self.stamps = []
    ...     def on_optimizer_step(self, trainer):
    ...         self.stamps.append(time.perf_counter())
    >>> timer = StepTimes()
    >>> clf = AutoTailClassifier(epochs=2, batch_size=4, validation_fraction=None, random_state=0)
    >>> with observe(timer):
    ...     _ = clf.fit(["深度学习", "水稻种植", "神经网络", "小麦栽培"] * 2, ["工", "农", "工", "农"] * 2)
    >>> len(timer.stamps)
    4
    """
    token = _OBSERVERS.set(_OBSERVERS.get() + tuple(callbacks))
    try:
        yield
    finally:
        _OBSERVERS.reset(token)


def observed() -> list:
    """The callbacks added by the enclosing :func:`observe` blocks.

    Returns
    -------
    list of Callback
    """
    return list(_OBSERVERS.get())

