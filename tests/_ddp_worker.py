"""One rank of the data-parallel tests; ``tests/test_ddp.py`` launches it with torchrun.

Usage: ``torchrun --standalone --nproc_per_node=2 tests/_ddp_worker.py OUT_DIR``.
Each rank saves what it computed to ``OUT_DIR/rank{RANK}.pt``; the assertions
live in the test module.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from sktail import AutoTailClassifier
from sktail.datasets import make_long_tail_text
from sktail.encoders._bag import BagEncoder
from sktail.encoders._base import TextClassifierNetwork
from sktail.objective import AutoTailLoss, compute_tail_prior
from sktail.training import DataParallel, Trainer, TrainingConfig, shard_rows
from sktail.training.process_group import DistributedContext

#: Shared with the single-process fit of the test module.
FIT_SETTINGS = {"encoder": "jieba-bag",
    "epochs": 6, "batch_size": 16, "learning_rate": 0.05, "dropout": 0.0,
    "validation_fraction": 0.2, "fgm_epsilon": 0.3, "grad_accumulation_steps": 2,
    "encoder_options": {"embedding_dim": 32, "token_dropout": 0.0}, "random_state": 0,
}
N_TRAIN = 120


def corpus():
    """Training texts and labels, then test texts and labels, of one long-tailed corpus."""
    texts, labels = make_long_tail_text((80, 40, 20, 12, 8), noise=0.1, random_state=0)
    return texts[:N_TRAIN], labels[:N_TRAIN], texts[N_TRAIN:], labels[N_TRAIN:]


def fit_result():
    """Fit with ``distributed="auto"``: the classifier starts the group from torchrun's variables."""
    texts, labels, test_texts, _ = corpus()
    clf = AutoTailClassifier(**FIT_SETTINGS, verbose=1).fit(texts, labels)
    return {
        "initialized": dist.is_initialized(),
        "world_size": clf.world_size_,
        "history": [{k: v for k, v in h.items() if k != "seconds"} for h in clf.history_],
        "best_epoch": clf.best_epoch_,
        "weights": {k: v.clone() for k, v in clf.network_.state_dict().items()},
        "proba": clf.predict_proba(test_texts),
    }


class _Crash(Exception):
    pass


def resume_result(directory: Path):
    """A checkpointed fit that crashes mid-epoch on every rank, then the same fit resumed.

    Returns the uninterrupted fit's and the resumed fit's history and weights,
    and what the crashed fit left on disk (rank 0 writes the checkpoint).
    """
    texts, labels, test_texts, _ = corpus()
    settings = {**FIT_SETTINGS, "dropout": 0.1, "epochs": 3}
    reference = AutoTailClassifier(**settings).fit(texts, labels)
    original, calls = Trainer.optimizer_step, []

    def crashing(self):
        original(self)
        calls.append(1)
        if len(calls) == 5:  # epoch 2 of 3 (3 optimizer steps per epoch)
            raise _Crash

    Trainer.optimizer_step = crashing
    try:
        AutoTailClassifier(**settings, checkpoint_dir=directory, checkpoint_interval=0).fit(texts, labels)
    except _Crash:
        pass
    finally:
        Trainer.optimizer_step = original
    dist.barrier()
    left = sorted(p.name for p in directory.iterdir())
    resumed = AutoTailClassifier(**settings, checkpoint_dir=directory, checkpoint_interval=0).fit(texts, labels)
    strip = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # noqa: E731
    return {
        "left": left,
        "reference": {"history": strip(reference.history_), "proba": reference.predict_proba(test_texts)},
        "resumed": {"history": strip(resumed.history_), "proba": resumed.predict_proba(test_texts)},
        "remaining": sorted(p.name for p in directory.iterdir()),
    }


def _grads(network):
    return {name: p.grad.detach().float().cpu() for name, p in network.named_parameters()}


def compare_gradients(network, encoder, loss_fn, config, data, micro_batches, context):
    """Gradients of one accumulation window: one process on the global batches vs this rank's shares.

    Parameters
    ----------
    network, encoder, loss_fn, config
        As for :class:`~sktail.training.Trainer`; ``config.grad_accumulation_steps``
        should equal ``len(micro_batches)``.
    data : tuple (ids, y, sample_weight)
        The whole training set, on every rank.
    micro_batches : list of ndarray
        Row indices of the global micro-batches.
    context : DistributedContext
        This rank.

    Returns
    -------
    dict
        ``reference`` and ``distributed`` gradients by parameter name (on the
        CPU) and the forward passes each trainer ran.
    """
    ids, y, sample_weight = data
    reference = Trainer(copy.deepcopy(network), encoder, copy.deepcopy(loss_fn), config, None)
    for rows in micro_batches:
        reference.train_step(*reference._batches(ids, y, sample_weight, rows))

    trainer = Trainer(network, encoder, loss_fn, config, None, parallel=DataParallel(context))
    for i, rows in enumerate(micro_batches):
        local, scale = shard_rows(rows, sample_weight, context.rank, context.world_size)
        sync = i + 1 == len(micro_batches)
        trainer.train_step(*trainer._batches(ids, y, sample_weight, local), scale=scale, sync=sync)
    return {
        "reference": _grads(reference.network),
        "distributed": _grads(trainer.network),
        "forward_passes": (reference.forward_passes, trainer.forward_passes),
    }


def gradient_result(rank, world_size, micro_batches, sample_weight, fgm_epsilon=0.3):
    """:func:`compare_gradients` for the built-in encoder on the CPU."""
    texts, labels, _, _ = corpus()
    classes, y = np.unique(labels, return_inverse=True)
    encoder = BagEncoder(embedding_dim=16, token_dropout=0.0)
    ids = encoder.fit_tokenize(texts, 64)
    counts = np.bincount(y)
    loss_fn = AutoTailLoss(compute_tail_prior(counts).offsets, counts)
    config = TrainingConfig(
        epochs=1, batch_size=8, learning_rate=0.01, fgm_epsilon=fgm_epsilon,
        grad_accumulation_steps=len(micro_batches),
    )
    torch.manual_seed(0)
    network = TextClassifierNetwork(encoder.build_network(), len(classes), dropout=0.0)
    context = DistributedContext(rank, world_size, torch.device("cpu"), str(dist.get_backend()))
    return compare_gradients(
        network, encoder, loss_fn, config, (ids, y, sample_weight), micro_batches, context
    )


def main(out_dir: Path):
    result = {"fit": fit_result()}
    rank, world_size = dist.get_rank(), dist.get_world_size()
    checkpoints = out_dir / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    result["resume"] = resume_result(checkpoints)
    n = N_TRAIN
    rng = np.random.RandomState(0)
    weight = rng.uniform(0.2, 2.0, size=n)
    # Uneven shares, and a one-row batch that leaves rank 1 a placeholder row.
    result["weighted"] = gradient_result(
        rank, world_size, [np.arange(0, 7), np.arange(10, 15), np.arange(20, 21)], weight
    )
    # Zero weights on the last micro-batch: its gradient is zero, FGM skips it on
    # every rank and the gradients are synchronised by hand.
    zero_last = weight.copy()
    zero_last[30:38] = 0.0
    result["skipped_fgm"] = gradient_result(
        rank, world_size, [np.arange(0, 9), np.arange(30, 38)], zero_last
    )
    # FGM off: the clean pass synchronises on the last micro-batch.
    result["no_fgm"] = gradient_result(
        rank, world_size, [np.arange(0, 7), np.arange(10, 15)], None, fgm_epsilon=0.0
    )
    torch.save(result, out_dir / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main(Path(sys.argv[1]))
