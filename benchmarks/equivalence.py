"""Fixed fits whose outputs must not change when the training machinery is reorganised.

Fits a fixed set of configurations with fixed ``random_state`` on the CPU and stores
their ``predict_proba`` and ``history_`` (without timings):

* ``bag-baseline`` / ``bag-full``: the built-in encoder, label-smoothed baseline and
  AutoTail-BSFGM;
* ``bert-all`` / ``bert-top2`` / ``bert-none``: a tiny random-weight BERT with
  ``train_encoder="all"``, ``2`` and ``"none"``, FGM on;
* ``bag-resumed``: a checkpointed fit killed with SIGKILL mid-epoch and resumed;
* ``bag-ddp``: a two-process gloo data-parallel fit under ``torchrun``.

Usage::

    python -m benchmarks.equivalence write OUT.npz      # record
    python -m benchmarks.equivalence check OUT.npz      # compare with a record

``check`` prints the largest absolute difference per configuration and exits 1 when
any exceeds ``--tolerance`` (default 0: bit for bit).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from sktail import AutoTailClassifier  # noqa: E402
from sktail.datasets import make_long_tail_text  # noqa: E402

BAG = {"encoder_options": {"embedding_dim": 16}, "epochs": 4, "batch_size": 16, "random_state": 0}
BERT = {"epochs": 2, "batch_size": 8, "learning_rate": 1e-3, "max_length": 32, "random_state": 0}
BASELINE = {"tail_gate": False, "bs_weight": 0.0, "fgm_epsilon": 0.0}


def corpus():
    """Training texts and labels, then test texts, of one long-tailed corpus."""
    texts, labels = make_long_tail_text((60, 30, 15, 8, 5), noise=0.1, random_state=0)
    return texts[:100], labels[:100], texts[100:]


def write_tiny_bert(path: Path) -> Path:
    """A 2-layer random-weight BERT with a character vocabulary, written to ``path``."""
    import string

    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    texts, _ = make_long_tail_text((30,) * 13, random_state=1)
    chars = sorted(set("".join(texts)) | set(string.ascii_lowercase + string.digits))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast.from_pretrained(path).save_pretrained(path)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=3,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    return path


def _outputs(clf, test_texts) -> dict:
    history = [{k: v for k, v in h.items() if k != "seconds"} for h in clf.history_]
    return {"proba": clf.predict_proba(test_texts), "history": json.dumps(history, sort_keys=True)}


def _fit_child(directory: str, stall_after: int):
    """Child process of the kill test: checkpoint after every step, stall mid-epoch."""
    import torch

    train_texts, train_labels, _ = corpus()
    clf = AutoTailClassifier(**BAG, checkpoint_dir=directory, checkpoint_interval=0)
    original, steps = torch.optim.AdamW.step, {"n": 0}

    def step(self, *args, **kwargs):
        # Stall once enough optimizer steps have been checkpointed: the parent then kills us.
        result = original(self, *args, **kwargs)
        steps["n"] += 1
        if steps["n"] == stall_after:
            print("STALL", flush=True)
            time.sleep(300)
        return result

    torch.optim.AdamW.step = step
    clf.fit(train_texts, train_labels)


def killed_and_resumed(test_texts) -> dict:
    """Fit in a child process, SIGKILL it mid-epoch, then resume here."""
    train_texts, train_labels, _ = corpus()
    with tempfile.TemporaryDirectory() as directory:
        child = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.equivalence", "_child", directory, "9"],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            for line in child.stdout:
                if line.strip() == "STALL":
                    time.sleep(1.0)
                    child.send_signal(signal.SIGKILL)
                    break
            child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
        assert list(Path(directory).glob("*.ckpt")), "the killed fit left no checkpoint"
        clf = AutoTailClassifier(**BAG, checkpoint_dir=directory, checkpoint_interval=0)
        clf.fit(train_texts, train_labels)
        return _outputs(clf, test_texts)


_DDP_WORKER = """
import sys, numpy as np, torch.distributed as dist
from benchmarks.equivalence import BAG, corpus, AutoTailClassifier, _outputs
train_texts, train_labels, test_texts = corpus()
clf = AutoTailClassifier(**{**BAG, "grad_accumulation_steps": 2}).fit(train_texts, train_labels)
if dist.get_rank() == 0:
    out = _outputs(clf, test_texts)
    np.savez(sys.argv[1], proba=out["proba"], history=np.array(out["history"]))
dist.destroy_process_group()
"""


def ddp_fit(test_texts) -> dict:
    """A two-process gloo fit under ``torchrun``; rank 0's outputs."""
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "worker.py"
        script.write_text(_DDP_WORKER, encoding="utf-8")
        target = Path(directory) / "rank0.npz"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
             str(script), str(target)], check=True, env=env, timeout=600,
        )
        data = np.load(target)
        return {"proba": data["proba"], "history": str(data["history"])}


def run_all() -> dict:
    """Every configuration's outputs, by name."""
    train_texts, train_labels, test_texts = corpus()
    results = {}
    for name, extra in (("bag-baseline", BASELINE), ("bag-full", {})):
        clf = AutoTailClassifier(**BAG, **extra).fit(train_texts, train_labels)
        results[name] = _outputs(clf, test_texts)
    with tempfile.TemporaryDirectory() as directory:
        bert = str(write_tiny_bert(Path(directory) / "bert"))
        for name, train_encoder in (("bert-all", "all"), ("bert-top2", 2), ("bert-none", "none")):
            settings = dict(BERT)
            if train_encoder == "none":
                settings.update(epochs=5, learning_rate=1e-2)
            clf = AutoTailClassifier(bert, train_encoder=train_encoder, **settings).fit(train_texts, train_labels)
            results[name] = _outputs(clf, test_texts)
    results["bag-resumed"] = killed_and_resumed(test_texts)
    results["bag-ddp"] = ddp_fit(test_texts)
    return results


def main(argv=None) -> int:
    """Command line: ``write`` or ``check`` a record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["write", "check", "_child"])
    parser.add_argument("path")
    parser.add_argument("extra", nargs="?")
    parser.add_argument("--tolerance", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.mode == "_child":
        _fit_child(args.path, int(args.extra))
        return 0
    results = run_all()
    if args.mode == "write":
        flat = {}
        for name, out in results.items():
            flat[f"{name}/proba"] = out["proba"]
            flat[f"{name}/history"] = np.array(out["history"])
        np.savez(args.path, **flat)
        print(f"wrote {len(results)} configurations to {args.path}")
        return 0
    record = np.load(args.path)
    failed = False
    for name, out in results.items():
        diff = float(np.max(np.abs(out["proba"] - record[f"{name}/proba"])))
        old = json.loads(str(record[f"{name}/history"]))
        new = json.loads(out["history"])
        hist = max((abs(a[k] - b[k]) for a, b in zip(old, new) for k in a if isinstance(a[k], float)), default=0.0)
        same_keys = [sorted(h) for h in old] == [sorted(h) for h in new] and len(old) == len(new)
        ok = diff <= args.tolerance and hist <= args.tolerance and same_keys
        failed |= not ok
        print(f"{name:14s} max|dproba|={diff:.3g} max|dhistory|={hist:.3g} {'ok' if ok else 'DIFFERENT'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
