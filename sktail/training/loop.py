"""THE training loop: epochs, clean step, FGM step, accumulation, clipping, optimizer, evaluation.

:class:`Trainer` runs ``fit -> run_epoch -> train_step -> compute_loss`` for
every way of training. What varies is handed to it:

* a *regime* (:mod:`sktail.training.regimes`): which parameters train, where
  batches come from, what FGM perturbs;
* a *parallel strategy* (:mod:`sktail.training.parallel`): this process
  alone, or one rank of a DDP job;
* *callbacks* (:mod:`sktail.training.callbacks`): best epoch, epoch log,
  progress bar, checkpoints.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings

import numpy as np
import torch

from ..adversarial import FGM
from ..devices import autocast
from ..inference import inference_batch_size, predict_logits, to_device
from .callbacks import BestEpoch, Checkpoint, observed
from .checkpoint import capture_state, restore_state
from .evaluation import class_hits, validation_scores
from .optim import build_optimizer, length_bucketed_batches, linear_warmup_decay
from .parallel import NonFiniteError, SingleProcess
from .regimes import AllLayers
from .reporting import EpochLog, ProgressBar
from .state import TrainingConfig, TrainingState

__all__ = ["NonFiniteError", "Trainer", "TrainingConfig", "TrainingState"]


class Trainer:
    """Runs AutoTail-BSFGM training of one network.

    Parameters
    ----------
    network : TextClassifierNetwork
        Encoder + dropout + head; moved to ``config.device``.
    encoder : TextEncoder
        Pads batches of token ids.
    loss_fn : AutoTailLoss
        The supervised loss ``L``.
    config : TrainingConfig
        Resolved settings.
    rng : numpy.random.RandomState
        Source of the batch shuffles (the same stream on every rank).
    checkpointer : Checkpointer, default=None
        Adds a :class:`~sktail.training.callbacks.Checkpoint` callback: resume
        from its file, save at every epoch end and when due inside epochs.
    regime : Regime, default=None
        What trains (default :class:`~sktail.training.regimes.AllLayers`).
    parallel : SingleProcess or DataParallel, default=None
        How the work is spread (default :class:`~sktail.training.parallel.SingleProcess`).
    callbacks : list of Callback, default=None
        Replaces the default callbacks (best epoch, epoch log, progress bar);
        callbacks of enclosing :func:`~sktail.training.observe` blocks are added.

    Attributes
    ----------
    state : TrainingState
        Epoch, position, history and best epoch of the run.
    model : torch.nn.Module
        What batches are forwarded through (``network`` or its DDP wrapper).
    fgm : FGM or None
        FGM over the regime's fixed target (None when the target changes per batch).
    forward_passes : int
        Forward passes run in training (clean and adversarial).

    See Also
    --------
    TrainingConfig : The settings of a run.
    Regime : What trains and what FGM perturbs.
    Callback : The hooks the loop calls.

    Examples
    --------
    Two epochs of a bag-of-embeddings classifier on eight texts:

    >>> import numpy as np
    >>> import torch
    >>> from sktail.encoders import BagEncoder
    >>> from sktail.objective import AutoTailLoss
    >>> from sktail.training import Trainer, TrainingConfig
    >>> texts = ["深度学习", "水稻种植", "神经网络", "小麦栽培"] * 2
    >>> y = np.array([0, 1, 0, 1] * 2)
    >>> encoder = BagEncoder(min_count=1)
    >>> ids = encoder.fit_tokenize(texts, 32)
    >>> network = encoder.build_classifier(2, 0.1)
    >>> loss_fn = AutoTailLoss(torch.zeros(2), torch.tensor([4.0, 4.0]))
    >>> config = TrainingConfig(epochs=2, batch_size=4, learning_rate=1e-2)
    >>> trainer = Trainer(network, encoder, loss_fn, config, np.random.RandomState(0))
    >>> trainer.steps_per_epoch(len(ids))
    2
    >>> history, best_epoch = trainer.fit((ids, y, None), validation=(ids, y))
    >>> [record["epoch"] for record in history]
    [1, 2]
    >>> sorted(trainer.evaluate(ids, y))
    ['val_accuracy', 'val_balanced_accuracy']
    """

    def __init__(self, network, encoder, loss_fn, config: TrainingConfig, rng, checkpointer=None, *,
                 regime=None, parallel=None, callbacks=None):
        self.config = config
        self.device = config.device
        self.regime = AllLayers() if regime is None else regime
        self.parallel = SingleProcess() if parallel is None else parallel
        self.network = self.regime.setup(network).to(self.device)
        self.encoder = encoder
        self.collator = self.regime.collator(encoder)
        self.loss_fn = loss_fn.to(self.device)
        self.rng = rng
        target = self.network.encoder.input_embeddings()
        self.fgm = None if target is None else FGM(target, config.fgm_epsilon)
        self.optimizer = build_optimizer(self.network, config.learning_rate, config.weight_decay)
        self.regime.after_optimizer(self.network, config.fgm_epsilon > 0)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.use_scaler)
        self.scheduler = None
        self.forward_passes = 0
        self.pending_loss, self.step_loss = None, 0.0
        self.model = self.parallel.setup(self.network)
        self.callbacks = [BestEpoch(config.monitor), EpochLog(), ProgressBar()] if callbacks is None else list(callbacks)
        if checkpointer is not None:
            self.callbacks.append(Checkpoint(checkpointer))
        self.callbacks += observed()
        self.state = TrainingState(best_epoch=config.epochs)

    def _notify(self, hook: str, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    # -- one batch ---------------------------------------------------------
    def compute_loss(self, batch, target, weight, scale: float = 1.0):
        """Run the forward pass and compute the loss ``L`` of one batch (times ``scale``, this rank's share).

        Parameters
        ----------
        batch : dict of str to Tensor
            A collated batch on the device.
        target : Tensor of int64
            Class indices of the batch's rows.
        weight : Tensor or None
            Sample weights of the rows.
        scale : float, default=1.0
            Factor of the loss (this rank's share, see :func:`shard_rows`).

        Returns
        -------
        Tensor
            The scalar loss, with its graph (not yet backpropagated).
        """
        self.forward_passes += 1
        with autocast(self.device, self.config.autocast_dtype):
            logits = self.model(batch)
        loss = self.loss_fn(logits.float(), target, weight)
        return loss if scale == 1.0 else loss * scale

    def _backward(self, loss):
        self.scaler.scale(loss / self.config.grad_accumulation_steps).backward()

    def _fgm_for(self, batch):
        """The batch to forward and one FGM per target the regime names (each with its own norm)."""
        batch, target = self.regime.adversarial(self.network, batch)
        targets = target if isinstance(target, tuple) else (target,)
        fgms = [
            self.fgm if self.fgm is not None and t is self.fgm.embedding else FGM(t, self.config.fgm_epsilon)
            for t in targets
        ]
        return batch, fgms

    def train_step(self, batch, target, weight, *, scale: float = 1.0, sync: bool = True) -> float:
        """Clean and (when FGM is on) adversarial forward/backward of one batch.

        Gradients accumulate; the optimizer step is taken by :meth:`optimizer_step`.

        Parameters
        ----------
        batch : dict of str to Tensor
            Collated inputs on the device.
        target : Tensor
            Class indices.
        weight : Tensor or None
            Sample weights.
        scale : float, default=1.0
            Factor of the loss (this rank's share of a global batch).
        sync : bool, default=True
            Whether gradients are synchronised across processes in this step
            (the last micro-batch before an optimizer step).

        Returns
        -------
        Tensor
            The clean loss of the batch (this rank's part of it), detached, in
            float64 on the device: reading it is left to the caller, so the
            step itself never waits for the device.
        """
        batch, fgms = self._fgm_for(batch)
        enabled = all(f.enabled for f in fgms)
        # Under accumulation a target's gradient already holds earlier micro-batches':
        # FGM must follow this batch's share only.
        held = [
            f.embedding.grad.detach().clone() if enabled and f.embedding.grad is not None else None for f in fgms
        ]
        with self.parallel.backward_context(sync and not enabled):
            loss = self.compute_loss(batch, target, weight, scale)
            self._backward(loss)
        loss_value = self.parallel.step_loss(loss)
        if enabled:
            grads = [
                self.parallel.fgm_gradient(None if h is None else f.embedding.grad - h, f.embedding)
                for f, h in zip(fgms, held)
            ]
            with contextlib.ExitStack() as stack:
                applied = any([stack.enter_context(f.perturb(g)) for f, g in zip(fgms, grads)])
                if applied:
                    with self.parallel.backward_context(sync):
                        adv_loss = self.compute_loss(batch, target, weight, scale)
                        self._backward(self.config.fgm_weight * adv_loss)
            self.parallel.after_fgm(self.network, applied, sync)
        return loss_value

    def optimizer_step(self):
        """Clip the gradient norm, step optimizer and schedule, clear gradients.

        Only the optimizer's parameters are clipped and stepped; every gradient
        of the network is cleared, including those of parameters that are not
        trained but whose gradient FGM reads (a frozen embedding matrix).

        The sum of the clean losses of this step's micro-batches (left in
        ``pending_loss`` by :meth:`run_epoch`) is read together with the
        gradient norm in the step's one host-device synchronisation, checked
        for non-finite values before the weights change, and left in
        ``step_loss`` as a float.

        Raises
        ------
        NonFiniteError
            If the loss (in one process) or the gradient norm (without fp16
            scaling) is NaN or infinite; the weights are left unchanged.
        """
        self.scaler.unscale_(self.optimizer)
        trained = [p for group in self.optimizer.param_groups for p in group["params"]]
        norm = torch.nn.utils.clip_grad_norm_(trained, self.config.max_grad_norm)
        # The step's one host-device synchronisation: the loss and the norm together.
        pending, self.pending_loss = self.pending_loss, None
        loss_value, norm_value = torch.stack([
            torch.zeros((), dtype=torch.float64, device=norm.device) if pending is None
            else pending.to(norm.device, torch.float64),
            norm.detach().double(),
        ]).tolist()
        self.step_loss = loss_value
        if self.parallel.checks_loss and not math.isfinite(loss_value):
            raise NonFiniteError(f"the training loss became {loss_value}")
        if not self.config.use_scaler and not math.isfinite(norm_value):
            raise NonFiniteError(f"the gradient norm became {norm_value}")
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
        batch = self.collator.collate([ids[i] for i in rows])
        batch["_target"] = torch.as_tensor(y[rows], dtype=torch.long)
        if w is not None:
            batch["_weight"] = torch.as_tensor(w[rows], dtype=torch.float32)
        if self.device.type == "cuda":
            # Page-locked memory makes the copies asynchronous: the host prepares
            # the next batch while the device still computes this one.
            batch = {k: v.pin_memory() for k, v in batch.items()}
        batch = to_device(batch, self.device)
        return batch, batch.pop("_target"), batch.pop("_weight", None)

    def run_epoch(self, ids, y, w=None) -> float:
        """Run one pass over the training rows in length-bucketed shuffled (global) batches.

        A pass left unfinished in ``state.progress`` (a resumed checkpoint)
        continues from its next batch.

        Parameters
        ----------
        ids : list of ndarray
            Token ids (or feature rows) of the training texts.
        y : ndarray of int
            Class indices.
        w : ndarray or None, default=None
            Sample weights.

        Returns
        -------
        float
            Mean clean loss over the (global) batches.
        """
        self.network.train()
        state = self.state
        if state.progress is None:  # a new epoch (else: resuming one from a checkpoint)
            batches = length_bucketed_batches([len(a) for a in ids], self.config.batch_size, self.rng)
            state.progress = {"batches": batches, "next": 0, "total": 0.0}
        progress = state.progress
        batches = progress["batches"]
        accum = self.config.grad_accumulation_steps
        self._notify("on_epoch_begin", len(batches), progress["next"])
        window = None  # the clean losses since the last optimizer step, on the device
        for i in range(progress["next"], len(batches)):
            local, scale = self.parallel.shard(batches[i], w)
            sync = (i + 1) % accum == 0 or i + 1 == len(batches)
            loss = self.train_step(*self._batches(ids, y, w, local), scale=scale, sync=sync)
            window = loss if window is None else window + loss
            self._notify("on_batch_end", i, loss)
            if sync:
                self.pending_loss, window = window, None
                self.optimizer_step()
                progress["total"] += self.step_loss
                progress["next"] = i + 1
                self._notify("on_optimizer_step")
                if i + 1 < len(batches):
                    self._notify("on_step_end")
        state.progress = None
        mean = float(self.parallel.sum([progress["total"]])[0]) / max(1, len(batches))
        if not math.isfinite(mean):
            raise NonFiniteError(f"the training loss became {mean}")
        return mean

    def check_finite_weights(self):
        """Raise :class:`NonFiniteError` if any weight is NaN or infinite (one host sync)."""
        names, params = zip(*self.network.named_parameters())
        finite = torch.stack([torch.isfinite(p).all() for p in params]).tolist()
        for name, ok in zip(names, finite):
            if not ok:
                raise NonFiniteError(f"the weights {name} became non-finite")

    def evaluate(self, ids, y) -> dict:
        """Score the current weights on held-out rows: accuracy and balanced accuracy.

        In a data-parallel job each rank scores its share of the rows and the
        per-class counts are summed, so every rank gets the same scores.

        Parameters
        ----------
        ids : list of ndarray
            Token ids (or feature rows) of the held-out texts.
        y : array-like of int
            Their class indices.

        Returns
        -------
        dict
            ``val_accuracy`` and ``val_balanced_accuracy``.
        """
        rows = self.parallel.validation_rows(len(ids))
        if rows is not None:
            ids, y = [ids[i] for i in rows], np.asarray(y)[rows]
        logits = predict_logits(
            self.network, self.collator, ids, batch_size=self.config.batch_size * 2,
            device=self.device, autocast_dtype=self.config.autocast_dtype,
        )
        total, correct = self.parallel.sum(class_hits(logits, y, self.network.head.out_features))
        return validation_scores(total, correct)

    def steps_per_epoch(self, n_rows: int) -> int:
        """Count the optimizer steps in one epoch of ``n_rows`` rows.

        Parameters
        ----------
        n_rows : int
            Training rows.

        Returns
        -------
        int
            ``ceil(ceil(n_rows / batch_size) / grad_accumulation_steps)``.
        """
        n_batches = math.ceil(n_rows / self.config.batch_size)
        return math.ceil(n_batches / self.config.grad_accumulation_steps)

    def fit(self, train, validation=None):
        """Train for ``config.epochs`` epochs, keeping the best validation epoch.

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
        try:
            train, validation = self.regime.prepare(self, train, validation)
            with self.regime.context(self.device):
                return self._fit(train, validation)
        finally:
            self.regime.finish(self.network)

    def _fit(self, train, validation):
        ids, y, w = train
        total_steps = self.config.epochs * self.steps_per_epoch(len(ids))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, linear_warmup_decay(total_steps, self.config.warmup_ratio)
        )
        self.state = TrainingState(best_epoch=self.config.epochs)
        self._notify("on_train_begin")
        state = self.state
        while state.epoch <= self.config.epochs:
            epoch, start = state.epoch, time.perf_counter()
            try:
                train_loss = self.run_epoch(ids, y, w)
                self.check_finite_weights()
            except NonFiniteError as error:
                if state.best_weights is None:
                    raise NonFiniteError(
                        f"Training stopped at epoch {epoch}: {error}. Lower learning_rate or "
                        "check the inputs; no usable model was produced."
                    ) from error
                warnings.warn(
                    f"Training stopped at epoch {epoch}: {error}; restoring the best epoch "
                    f"({state.best_epoch}).", RuntimeWarning, stacklevel=3,
                )
                break
            record = {"epoch": epoch, "train_loss": train_loss}
            if validation is not None:
                record.update(self.evaluate(*validation))
            record["seconds"] = time.perf_counter() - start
            state.history.append(record)
            state.epoch, state.progress = epoch + 1, None
            self._notify("on_epoch_end", record)
        self._notify("on_train_end")
        self.check_finite_outputs(ids)
        return state.history, state.best_epoch

    #: Training rows whose outputs are checked after training when the encoder
    #: network has transformer layers (all rows are checked otherwise).
    OUTPUT_CHECK_ROWS = 256

    def check_finite_outputs(self, ids):
        """Raise :class:`NonFiniteError` if the kept network gives non-finite logits on training rows.

        Finite weights can still overflow (a huge learning rate leaves weights
        near 1e30): the model would predict NaN probabilities. Every training
        row is checked when the network is cheap to run (no transformer
        layers: the built-in encoder, a head on cached features), else an
        evenly spaced sample of :attr:`OUTPUT_CHECK_ROWS` rows.

        Parameters
        ----------
        ids : list
            The training rows, as the regime prepared them.
        """
        encoder_network = getattr(self.network, "encoder", None)
        stack = getattr(encoder_network, "layer_stack", None)
        rows = np.arange(len(ids))
        if callable(stack) and stack() is not None and len(rows) > self.OUTPUT_CHECK_ROWS:
            rows = np.linspace(0, len(ids) - 1, self.OUTPUT_CHECK_ROWS).astype(np.int64)
        logits = predict_logits(
            self.network, self.collator, [ids[i] for i in rows], batch_size=inference_batch_size(self.config.batch_size),
            device=self.device, autocast_dtype=self.config.autocast_dtype,
        )
        if not np.isfinite(logits).all():
            raise NonFiniteError(
                "Training ended with non-finite outputs on its own training data (the weights grew too "
                "large). Lower learning_rate or check the inputs; no usable model was produced."
            )

    # -- checkpoints ---------------------------------------------------------
    def cpu_weights(self) -> dict:
        """Copy the network's weights to the CPU.

        Returns
        -------
        dict of str to Tensor
            A state dict of detached CPU copies.
        """
        return {k: v.detach().to("cpu", copy=True) for k, v in self.network.state_dict().items()}

    def state_dict(self) -> dict:
        """Everything needed to continue training exactly from this point.

        Returns
        -------
        dict
            See :func:`sktail.training.checkpoint.capture_state`.
        """
        return capture_state(self)

    def load_state_dict(self, saved: dict):
        """Restore a :meth:`state_dict` (after :meth:`fit` has built the scheduler).

        Parameters
        ----------
        saved : dict
            See :func:`sktail.training.checkpoint.restore_state`.
        """
        restore_state(self, saved)
