"""Crash-safe training: checkpoints, exact resume, and a SIGKILL mid-epoch."""

import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import sktail
from sktail import AutoTailClassifier
from sktail.training import Checkpointer, Trainer, fit_fingerprint

SETTINGS = {"encoder": "jieba-bag",
    "epochs": 3, "batch_size": 4, "validation_fraction": 0.25, "fgm_epsilon": 0.3,
    "encoder_options": {"embedding_dim": 8}, "random_state": 5, "device": "cpu",
}


@pytest.fixture(scope="module")
def corpus():
    from sktail.datasets import make_long_tail_text

    return make_long_tail_text((10, 6, 4), n_keywords=2, noise=0.1, random_state=0)


@pytest.fixture(scope="module")
def reference(corpus):
    """The uninterrupted run."""
    return AutoTailClassifier(**SETTINGS).fit(*corpus)


def _assert_same_run(resumed, reference):
    assert resumed.best_epoch_ == reference.best_epoch_
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in reference.history_]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in resumed.history_] == strip
    for (name, a), b in zip(resumed.network_.state_dict().items(), reference.network_.state_dict().values()):
        assert torch.equal(a, b), name


class _Crash(Exception):
    pass


def _count_steps(monkeypatch, crash_at=None):
    calls = []
    original = Trainer.optimizer_step

    def step(self):
        original(self)
        calls.append(1)
        if crash_at is not None and len(calls) == crash_at:
            raise _Crash

    monkeypatch.setattr(Trainer, "optimizer_step", step)
    return calls


def test_resume_after_a_crash_mid_epoch_gives_the_uninterrupted_model(corpus, reference, tmp_path, monkeypatch):
    _count_steps(monkeypatch, crash_at=7)  # epoch 2 of 3 (4 steps per epoch)
    with pytest.raises(_Crash):
        AutoTailClassifier(**SETTINGS, checkpoint_dir=tmp_path, checkpoint_interval=0).fit(*corpus)
    (ckpt,) = tmp_path.iterdir()
    state = torch.load(ckpt, weights_only=True)["trainer"]
    assert state["epoch"] == 2 and state["progress"]["next"] == 2  # saved after the 6th step, mid-epoch

    calls = _count_steps(monkeypatch)
    resumed = AutoTailClassifier(**SETTINGS, checkpoint_dir=tmp_path, checkpoint_interval=0).fit(*corpus)
    assert len(calls) == 12 - 6  # only the remaining steps ran
    _assert_same_run(resumed, reference)
    assert list(tmp_path.iterdir()) == []  # a finished fit removes its checkpoint


def test_epoch_end_checkpoints_only_with_a_long_interval(corpus, tmp_path, monkeypatch):
    saved = []
    original = Checkpointer.save
    monkeypatch.setattr(Checkpointer, "save", lambda self, state: (saved.append(state["progress"]), original(self, state)))
    AutoTailClassifier(**{**SETTINGS, "epochs": 2}, checkpoint_dir=tmp_path).fit(*corpus)
    assert saved == [None, None]


def test_other_runs_and_unreadable_checkpoints_are_not_resumed(corpus, reference, tmp_path, monkeypatch):
    _count_steps(monkeypatch, crash_at=5)
    with pytest.raises(_Crash):
        AutoTailClassifier(**SETTINGS, checkpoint_dir=tmp_path, checkpoint_interval=0).fit(*corpus)
    (ckpt,) = tmp_path.iterdir()
    # Different data: another fingerprint, another file; the first checkpoint is left alone.
    monkeypatch.undo()
    texts, labels = corpus
    AutoTailClassifier(**{**SETTINGS, "epochs": 1}, checkpoint_dir=tmp_path).fit(texts[1:], labels[1:])
    assert list(tmp_path.iterdir()) == [ckpt]
    # A damaged checkpoint is ignored with a warning and training starts over.
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="unreadable checkpoint"):
        restarted = AutoTailClassifier(**SETTINGS, checkpoint_dir=tmp_path).fit(*corpus)
    _assert_same_run(restarted, reference)


def test_random_state_none_warns_that_resume_is_impossible(corpus, tmp_path):
    with pytest.warns(UserWarning, match="random_state is None"):
        AutoTailClassifier(**{**SETTINGS, "epochs": 1, "random_state": None}, checkpoint_dir=tmp_path).fit(*corpus)


def test_fingerprint_depends_on_every_input():
    base = fit_fingerprint({"a": 1}, {"y": torch.arange(3).numpy()}, {"X": ["x", "y"]})
    assert base == fit_fingerprint({"a": 1}, {"y": torch.arange(3).numpy()}, {"X": ["x", "y"]})
    assert base != fit_fingerprint({"a": 2}, {"y": torch.arange(3).numpy()}, {"X": ["x", "y"]})
    assert base != fit_fingerprint({"a": 1}, {"y": torch.arange(1, 4).numpy()}, {"X": ["x", "y"]})
    assert base != fit_fingerprint({"a": 1}, {"y": torch.arange(3).numpy()}, {"X": ["xy", ""]})


CHILD = """
import json, sys, time
from sktail import AutoTailClassifier
from sktail.training import Checkpointer

texts, labels, settings = json.load(open(sys.argv[1]))
original = Checkpointer.save

def save(self, state):
    original(self, state)
    step = -1 if state["progress"] is None else state["progress"]["next"]
    print("saved", state["epoch"], step, flush=True)
    if state["epoch"] == 2 and step == 2:
        time.sleep(120)  # stalls here, mid-epoch, until the parent kills it

Checkpointer.save = save
AutoTailClassifier(**settings).fit(texts, labels)
print("finished", flush=True)
"""


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_model(corpus, reference, tmp_path, monkeypatch):
    settings = {**SETTINGS, "checkpoint_dir": str(tmp_path / "ckpt"), "checkpoint_interval": 0}
    job = tmp_path / "job.json"
    job.write_text(json.dumps([*corpus, settings]))
    root = str(Path(sktail.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(job)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        lines = []
        for line in child.stdout:
            lines.append(line.strip())
            if line.strip() == "saved 2 2":
                child.send_signal(signal.SIGKILL)
                break
        assert child.wait(timeout=60) == -signal.SIGKILL, (lines, child.stderr.read())
    finally:
        if child.poll() is None:
            child.kill()
    assert lines[:3] == ["saved 1 1", "saved 1 2", "saved 1 3"]
    (ckpt,) = (tmp_path / "ckpt").iterdir()
    assert torch.load(ckpt, weights_only=True)["trainer"]["progress"]["next"] == 2

    calls = _count_steps(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checkpoint must be accepted, not ignored
        resumed = AutoTailClassifier(**settings).fit(*corpus)
    assert len(calls) == 12 - 6
    _assert_same_run(resumed, reference)


def test_head_only_training_resumes_from_a_checkpoint(tiny_bert_dir, corpus, tmp_path, monkeypatch):
    settings = {
        "encoder": str(tiny_bert_dir), "train_encoder": "none", "epochs": 3, "batch_size": 4,
        "validation_fraction": 0.25, "fgm_epsilon": 0.3, "random_state": 5, "device": "cpu",
    }
    reference = AutoTailClassifier(**settings).fit(*corpus)
    _count_steps(monkeypatch, crash_at=7)
    with pytest.raises(_Crash):
        AutoTailClassifier(**settings, checkpoint_dir=tmp_path, checkpoint_interval=0).fit(*corpus)
    assert len(list(tmp_path.glob("*.ckpt"))) == 1  # checkpoint_dir is honoured, not ignored
    calls = _count_steps(monkeypatch)
    resumed = AutoTailClassifier(**settings, checkpoint_dir=tmp_path, checkpoint_interval=0).fit(*corpus)
    assert len(calls) == 12 - 6
    _assert_same_run(resumed, reference)
    assert list(tmp_path.iterdir()) == []


def _flip_weight_bytes(path):
    """Overwrite bytes inside the stored data of the largest weight tensor."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        infos = [i for i in archive.infolist() if "/data/" in i.filename]
        target = max(infos, key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    # A stored (uncompressed) member: its bytes follow the local header, whose name
    # and extra-field lengths sit at offsets 26 and 28.
    name_length = int.from_bytes(data[target.header_offset + 26 : target.header_offset + 28], "little")
    extra_length = int.from_bytes(data[target.header_offset + 28 : target.header_offset + 30], "little")
    start = target.header_offset + 30 + name_length + extra_length
    for offset in range(start + 8, start + 40):
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def test_a_checkpoint_with_altered_weights_is_reported_and_not_resumed(corpus, reference, tmp_path, monkeypatch):
    _count_steps(monkeypatch, crash_at=7)
    with pytest.raises(_Crash):
        AutoTailClassifier(**SETTINGS, checkpoint_dir=tmp_path, checkpoint_interval=0).fit(*corpus)
    (ckpt,) = tmp_path.iterdir()
    _flip_weight_bytes(ckpt)
    torch.load(ckpt, weights_only=True)  # still a readable archive: only the checksum can tell
    calls = _count_steps(monkeypatch)
    with pytest.warns(RuntimeWarning, match="does not match its checksum"):
        restarted = AutoTailClassifier(**SETTINGS, checkpoint_dir=tmp_path, checkpoint_interval=0).fit(*corpus)
    assert len(calls) == 12  # started over
    _assert_same_run(restarted, reference)
