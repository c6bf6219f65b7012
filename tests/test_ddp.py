"""Data-parallel training (``sktail/training/parallel.py`` and ``process_group.py``).

The rule, the sharding and the metrics are checked in this process; a real
two-process job (gloo on the CPU) runs once under ``torchrun`` through
``tests/_ddp_worker.py`` and is compared with a single-process fit of the same
global batch size.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from sktail import AutoTailClassifier
from sktail.training.data_parallel import shard_rows
from sktail.training.evaluation import validation_scores
from sktail.training.process_group import TORCHRUN_VARIABLES, wants_distributed

from ._ddp_worker import FIT_SETTINGS, corpus

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


# -- the "auto" rule -------------------------------------------------------------
@pytest.mark.parametrize(
    "setting, initialized, group_size, env, expected",
    [
        ("auto", False, 1, {}, False),
        ("auto", False, 1, TORCHRUN, True),
        ("auto", False, 1, {**TORCHRUN, "WORLD_SIZE": "1"}, False),
        ("auto", False, 1, {"WORLD_SIZE": "2"}, False),  # not all of torchrun's variables
        ("auto", True, 1, {}, False),
        ("auto", True, 4, {}, True),
        (True, False, 1, {**TORCHRUN, "WORLD_SIZE": "1"}, True),
        (True, True, 1, {}, True),
        (False, True, 4, TORCHRUN, False),
    ],
)
def test_wants_distributed_rule(setting, initialized, group_size, env, expected):
    assert wants_distributed(setting, initialized=initialized, group_size=group_size, env=env) is expected


def test_distributed_true_without_launcher_raises(monkeypatch, long_tail_corpus):
    for name in TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(encoder="jieba-bag", distributed=True, epochs=1, validation_fraction=None)
    with pytest.raises(ValueError, match="torchrun"):
        clf.fit(texts, labels)


def test_distributed_parameter_is_validated(long_tail_corpus):
    with pytest.raises(ValueError, match="distributed"):
        AutoTailClassifier(encoder="jieba-bag", distributed="always").fit(*long_tail_corpus)


# -- sharding and metrics ------------------------------------------------------------
@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("weighted", [False, True])
def test_shard_rows_partition_the_batch_and_weigh_their_loss(world_size, weighted):
    rng = np.random.RandomState(world_size)
    weight = rng.uniform(0.1, 3.0, size=20) if weighted else None
    for size in range(1, 10):
        rows = rng.permutation(20)[:size]
        shares = [shard_rows(rows, weight, r, world_size) for r in range(world_size)]
        real = [local for r, (local, _) in enumerate(shares) if r < size]
        assert sorted(np.concatenate(real).tolist()) == sorted(rows.tolist())
        assert all(scale == 0.0 for r, (_, scale) in enumerate(shares) if r >= size)
        # Mean of the scaled local means = the global batch's (weighted) mean.
        losses = rng.uniform(size=20)
        w = np.ones(20) if weight is None else weight
        combined = np.mean([s * np.average(losses[loc], weights=w[loc]) for loc, s in shares])
        assert combined == pytest.approx(np.average(losses[rows], weights=w[rows]))


def test_validation_scores_match_sklearn():
    rng = np.random.RandomState(0)
    y = rng.randint(0, 5, size=200)
    y[y == 3] = 4  # one class absent from the truth
    pred = np.where(rng.uniform(size=200) < 0.6, y, rng.randint(0, 5, size=200))
    total = np.bincount(y, minlength=5)
    correct = np.bincount(y[pred == y], minlength=5)
    scores = validation_scores(total, correct)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = balanced_accuracy_score(y, pred)
    assert scores["val_accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert scores["val_balanced_accuracy"] == pytest.approx(expected)


# -- a one-process group in this process ----------------------------------------------
@pytest.fixture
def single_process_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_one_process_group_fits_like_a_plain_fit(single_process_group, long_tail_corpus):
    texts, labels = long_tail_corpus
    settings = {"encoder": "jieba-bag", "epochs": 2, "batch_size": 16, "dropout": 0.0, "validation_fraction": 0.2,
                "grad_accumulation_steps": 2, "encoder_options": {"embedding_dim": 16},
                "random_state": 0}
    auto = AutoTailClassifier(**settings).fit(texts, labels)  # "auto": one process is not DDP
    ddp = AutoTailClassifier(**settings, distributed=True).fit(texts, labels)
    assert (auto.world_size_, ddp.world_size_) == (1, 1)
    for key in ("val_accuracy", "val_balanced_accuracy"):
        assert [h[key] for h in ddp.history_] == [h[key] for h in auto.history_]
    for name, value in auto.network_.state_dict().items():
        torch.testing.assert_close(ddp.network_.state_dict()[name], value, rtol=1e-5, atol=1e-6)


# -- two processes under torchrun ----------------------------------------------------
@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for name in (*TORCHRUN_VARIABLES, "LOCAL_RANK"):
        env.pop(name, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(ROOT / "tests" / "_ddp_worker.py"), str(out)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]
    return ranks, proc.stderr  # epoch lines are messages: stderr


@pytest.mark.parametrize("case", ["weighted", "skipped_fgm", "no_fgm"])
def test_ddp_gradients_equal_one_process_on_the_global_batch(ddp_run, case):
    ranks, _ = ddp_run
    for result in ranks:
        grads = result[case]
        ref_passes, ddp_passes = grads["forward_passes"]
        assert ref_passes == ddp_passes
        assert grads["reference"]["encoder.bag.weight"].abs().max() > 0
        for name, expected in grads["reference"].items():
            torch.testing.assert_close(grads["distributed"][name], expected, rtol=1e-5, atol=1e-6)
    expected_passes = {
        "weighted": 6,  # clean + adversarial pass for each of the 3 micro-batches
        "skipped_fgm": 3,  # the zero-weight micro-batch skips its adversarial pass
        "no_fgm": 2,
    }[case]
    assert ranks[0][case]["forward_passes"] == (expected_passes, expected_passes)


def test_ddp_fit_gives_every_rank_the_same_model(ddp_run):
    ranks, stderr = ddp_run
    first, second = (r["fit"] for r in ranks)
    assert first["initialized"] and first["world_size"] == second["world_size"] == 2
    assert first["history"] == second["history"]
    assert first["best_epoch"] == second["best_epoch"]
    for name, value in first["weights"].items():
        assert torch.equal(second["weights"][name], value)
    np.testing.assert_array_equal(first["proba"], second["proba"])
    # verbose=1 prints from rank 0 only
    assert stderr.count("epoch 1: train_loss=") == 1


def test_ddp_fit_matches_one_process_with_the_same_global_batch(ddp_run):
    ranks, _ = ddp_run
    texts, labels, test_texts, test_labels = corpus()
    single = AutoTailClassifier(**FIT_SETTINGS, distributed=False).fit(texts, labels)
    fitted = ranks[0]["fit"]
    for ddp_epoch, epoch in zip(fitted["history"], single.history_):
        assert ddp_epoch["val_accuracy"] == epoch["val_accuracy"]
        assert ddp_epoch["train_loss"] == pytest.approx(epoch["train_loss"], rel=1e-5)
    assert fitted["best_epoch"] == single.best_epoch_
    proba = single.predict_proba(test_texts)
    np.testing.assert_allclose(fitted["proba"], proba, atol=1e-4)
    ddp_accuracy = np.mean(single.classes_[fitted["proba"].argmax(axis=1)] == np.asarray(test_labels))
    assert ddp_accuracy == pytest.approx(single.score(test_texts, test_labels), abs=0.03)
    assert ddp_accuracy > 0.5


def test_ddp_resumes_mid_epoch_from_rank_0s_checkpoint(ddp_run):
    ranks, _ = ddp_run
    for result in ranks:
        resume = result["resume"]
        assert len(resume["left"]) == 1 and resume["left"][0].endswith(".ckpt")  # one file, by rank 0
        assert resume["resumed"]["history"] == resume["reference"]["history"]
        np.testing.assert_array_equal(resume["resumed"]["proba"], resume["reference"]["proba"])
        assert resume["remaining"] == []  # a finished fit removes its checkpoint
    # Each rank resumed its own dropout stream: the ranks' models still agree.
    np.testing.assert_array_equal(ranks[0]["resume"]["resumed"]["proba"], ranks[1]["resume"]["resumed"]["proba"])
