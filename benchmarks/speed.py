"""Training and prediction speed of AutoTailClassifier against Hugging Face's own tools.

Side by side, in one process, on the same random-weight BERT and the same texts:

* training samples/s of ``AutoTailClassifier`` with the baseline settings
  (``tail_gate=False, bs_weight=0, fgm_epsilon=0``) against a
  ``transformers.Trainer`` loop with its default padding
  (``DataCollatorWithPadding``: each random batch padded to its longest text);
* the step time with FGM (``fgm_epsilon=0.3``) against the plain step, both
  measured on the same batches, interleaved in one run;
* ``predict_proba`` texts/s against ``transformers.pipeline("text-classification")``
  (its defaults: one text per forward pass).

Steady-state times: the first step of each run is a warm-up and is not
counted; on CUDA the device is synchronised at each time stamp. Texts come from
``$SKTAIL_DATA/csl-title/train.tsv`` when it exists, else from a synthetic
corpus of title-like lengths (``--data synthetic`` forces it).

Usage::

    python benchmarks/speed.py --device cpu --config base --steps 6
    python benchmarks/speed.py --device cuda --precision bf16 --config base --steps 60

Prints one JSON object and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CONFIGS = {
    # bert-base-chinese / chinese-macbert-base shapes, random weights.
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072, "vocab_size": 21128},
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "vocab_size": 0},
}


# -- data and model --------------------------------------------------------------
def load_texts(source: str, n: int, seed: int):
    """``n`` (text, label) pairs from CSL titles or a synthetic title-like corpus."""
    rng = np.random.RandomState(seed)
    if source != "synthetic":
        from sktail.datasets import fetch_csl

        try:
            texts, labels = fetch_csl("title", download_if_missing=False, return_X_y=True)
            rows = rng.permutation(len(texts))[:n]
            return [texts[i] for i in rows], [labels[i] for i in rows], "csl-title"
        except FileNotFoundError:
            if source == "csl-title":
                raise
    from sktail.datasets import make_long_tail_text

    base, labels = make_long_tail_text((max(8, n // 13 + 1),) * 13, random_state=seed)
    rows = rng.permutation(len(base))[:n]
    # Glue a random-length piece of another text on, for CSL-like lengths (10-31).
    tails = rng.randint(0, 17, size=len(rows))
    others = rng.randint(0, len(base), size=len(rows))
    texts = [base[i] + base[j][:k] for i, j, k in zip(rows, others, tails)]
    return texts, [labels[i] for i in rows], "synthetic"


def write_model(path: Path, config_name: str, texts, seed: int) -> Path:
    """A random-weight BERT directory with a character vocabulary of the texts."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    shape = dict(CONFIGS[config_name])
    chars = sorted(set("".join(texts)))
    vocab = SPECIAL + chars
    # Pad the vocabulary to the real model's size, so the embedding matrix
    # (and its optimizer cost) is that of the real model.
    vocab += [f"[unused{i}]" for i in range(max(0, shape.pop("vocab_size") - len(vocab)))]
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast.from_pretrained(path).save_pretrained(path)
    config = BertConfig(vocab_size=len(vocab), max_position_embeddings=512, **shape)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(path)
    return path


# -- timing helpers -------------------------------------------------------------------
def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rounded(value):
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.4g}")
    return value


def steady_rate(stamps, per_step):
    """Units per second between the first and the last time stamp."""
    if len(stamps) < 2:
        return float("nan")
    return per_step * (len(stamps) - 1) / (stamps[-1] - stamps[0])


# -- sktail ------------------------------------------------------------------------------
def _fit_one_epoch(trainer_class, fgm_epsilon, model_dir, texts, labels, args, device):
    """Fit one epoch of ``args.steps + 1`` batches (baseline objective) with ``trainer_class``.

    The classifier builds its trainer from ``sktail.classifier.Trainer``; a
    timing subclass is swapped in for the duration of the fit.
    """
    import sktail.classifier
    from sktail import AutoTailClassifier

    clf = AutoTailClassifier(
        encoder=str(model_dir), epochs=1, batch_size=args.batch_size, max_length=args.max_length,
        learning_rate=2e-5, validation_fraction=None, tail_gate=False, bs_weight=0.0,
        fgm_epsilon=fgm_epsilon, precision=args.precision, device=str(device), random_state=args.seed,
    )
    n = args.batch_size * (args.steps + 1)
    original = sktail.classifier.Trainer
    sktail.classifier.Trainer = trainer_class
    try:
        return clf.fit(texts[:n], labels[:n])
    finally:
        sktail.classifier.Trainer = original


def sktail_training(model_dir, texts, labels, args, device):
    """Fit AutoTailClassifier (baseline settings) for ``args.steps + 1`` steps, timed."""
    from sktail._training import Trainer

    stamps, tokens = [], []

    class Timed(Trainer):
        def _batches(self, ids, y, w, rows):
            tokens.append(int(sum(len(ids[i]) for i in rows)))
            return super()._batches(ids, y, w, rows)

        def optimizer_step(self):
            super().optimizer_step()
            _sync(self.device)
            stamps.append(time.perf_counter())

    clf = _fit_one_epoch(Timed, 0.0, model_dir, texts, labels, args, device)
    return clf, {
        "samples_per_s": steady_rate(stamps, args.batch_size),
        "tokens_per_s": sum(tokens[1:]) / (stamps[-1] - stamps[0]),
    }


def fgm_and_plain_steps(model_dir, texts, labels, args, device):
    """Plain and FGM step times on the same batches, interleaved in one run.

    Each batch is trained once without and once with FGM (in alternating
    order), so both see the same lengths and the same machine load.
    """
    from sktail._training import Trainer, length_bucketed_batches

    times = {"plain": [], "fgm": []}

    class Paired(Trainer):
        def run_epoch(self, ids, y, w=None):
            self.network.train()
            epsilon = self.fgm.epsilon
            batches = length_bucketed_batches([len(a) for a in ids], self.config.batch_size, self.rng)
            for i, rows in enumerate(batches):
                batch = self._batches(ids, y, w, rows)
                order = [("plain", 0.0), ("fgm", epsilon)]
                for name, eps in order if i % 2 else order[::-1]:
                    self.fgm.epsilon = eps
                    _sync(self.device)
                    start = time.perf_counter()
                    self.train_step(*batch)
                    self.optimizer_step()
                    _sync(self.device)
                    if i:  # the first batch is a warm-up
                        times[name].append(time.perf_counter() - start)
            return 0.0

    _fit_one_epoch(Paired, 0.3, model_dir, texts, labels, args, device)
    return {name: float(np.mean(t)) for name, t in times.items()}


def sktail_predict(clf, texts):
    clf.predict_proba(texts[:8])  # warm-up
    start = time.perf_counter()
    clf.predict_proba(texts)
    return len(texts) / (time.perf_counter() - start)


# -- Hugging Face ---------------------------------------------------------------------
def hf_training(model_dir, texts, labels, args, device, dtype):
    """``transformers.Trainer`` with its defaults for the same steps and settings."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )
    names = sorted(set(labels))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    n = args.batch_size * (args.steps + 1)
    encoded = tokenizer(texts[:n], truncation=True, max_length=args.max_length)
    dataset = [
        {"input_ids": ids, "attention_mask": mask, "labels": names.index(lab)}
        for ids, mask, lab in zip(encoded["input_ids"], encoded["attention_mask"], labels[:n])
    ]
    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(names), dtype=torch.float32
    )
    stamps = []

    class Stamp(TrainerCallback):
        def on_step_end(self, *_, **__):
            _sync(device)
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, max_steps=args.steps + 1,
            learning_rate=2e-5, weight_decay=0.01, warmup_steps=0.1, max_grad_norm=1.0,
            label_smoothing_factor=0.05, bf16=dtype == torch.bfloat16,
            fp16=dtype == torch.float16, use_cpu=device.type == "cpu", report_to="none",
            save_strategy="no", logging_strategy="no", disable_tqdm=True, seed=args.seed,
            dataloader_num_workers=0,
        )
        trainer = Trainer(
            model=model, args=training_args, train_dataset=dataset, processing_class=tokenizer,
            callbacks=[Stamp()],
        )
        trainer.train()
    del trainer
    return model, {"samples_per_s": steady_rate(stamps, args.batch_size)}


def hf_pipeline_predict(model, model_dir, texts, device):
    from transformers import AutoTokenizer, pipeline

    classify = pipeline(
        "text-classification", model=model.float().eval(), tokenizer=AutoTokenizer.from_pretrained(model_dir),
        device=device, top_k=None,
    )
    classify(texts[:8])  # warm-up
    start = time.perf_counter()
    classify(texts)
    return len(texts) / (time.perf_counter() - start)


# -- main ----------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per run (after 1 warm-up)")
    parser.add_argument("--config", default="base", choices=sorted(CONFIGS))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--predict-texts", type=int, default=512, help="texts per prediction run")
    parser.add_argument("--data", default="auto", choices=["auto", "csl-title", "synthetic"])
    parser.add_argument("--peak-flops", type=float, default=989e12,
                        help="peak FLOP/s for the MFU estimate (default: H100 bf16 dense)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds of sktail and Trainer training timed alternately (the median ratio is reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON file to write (default: docs/speed-<device>-<config>.json)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    from sktail._training import resolve_device, resolve_precision

    device = resolve_device(args.device)
    dtype, _ = resolve_precision(args.precision, device)
    n_train = args.batch_size * (args.steps + 1)
    texts, labels, source = load_texts(args.data, max(n_train, args.predict_texts), args.seed)
    result = {
        "command": "python benchmarks/speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "precision": str(dtype).replace("torch.", "") if dtype else "fp32",
        "config": args.config, "data": source, "batch_size": args.batch_size,
        "timed_steps": args.steps, "predict_texts": args.predict_texts,
        "torch": torch.__version__,
    }
    import transformers

    result["transformers"] = transformers.__version__
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_model(Path(tmp) / "model", args.config, texts, args.seed)
        # One untimed pass first: on a GPU, the first time each sequence length
        # is seen costs kernel selection and allocator growth, and whichever
        # side ran first would pay for both.
        sktail_training(model_dir, texts, labels, args, device)
        rounds = []  # alternate the two sides, so that a change of machine load hits both
        for _ in range(max(1, args.repeats)):
            plain_clf, plain = sktail_training(model_dir, texts, labels, args, device)
            hf_model, hf = hf_training(model_dir, texts, labels, args, device, dtype)
            rounds.append((plain, hf))
        steps = fgm_and_plain_steps(model_dir, texts, labels, args, device)
        predict_texts = texts[: args.predict_texts]
        ours_predict = sktail_predict(plain_clf, predict_texts)
        pipe_predict = hf_pipeline_predict(hf_model, model_dir, predict_texts, device)
        n_params = sum(p.numel() for p in plain_clf.network_.parameters())
        n_embedding = plain_clf.network_.encoder.input_embeddings().numel()
    ratios = [p["samples_per_s"] / h["samples_per_s"] for p, h in rounds]
    result.update({
        "params": n_params,
        "train_samples_per_s": {
            "sktail": float(np.median([p["samples_per_s"] for p, _ in rounds])),
            "hf_trainer": float(np.median([h["samples_per_s"] for _, h in rounds])),
        },
        "train_speedup_vs_trainer": float(np.median(ratios)),
        "train_speedup_per_round": ratios,
        "step_s": steps,
        "fgm_over_plain": steps["fgm"] / steps["plain"],
        "predict_texts_per_s": {"sktail": ours_predict, "hf_pipeline": pipe_predict},
        "predict_speedup_vs_pipeline": ours_predict / pipe_predict,
        "train_tokens_per_s": float(np.median([p["tokens_per_s"] for p, _ in rounds])),
    })
    if device.type == "cuda":
        # 6 FLOPs per parameter per trained token (forward 2, backward 4); real tokens only.
        result["peak_flops"] = args.peak_flops
        result["mfu"] = 6 * n_params * result["train_tokens_per_s"] / args.peak_flops
        # The word-embedding lookup does no matrix work: the stricter estimate.
        result["mfu_non_embedding"] = 6 * (n_params - n_embedding) * result["train_tokens_per_s"] / args.peak_flops
    result = _rounded(result)
    out = Path(args.out) if args.out else Path(__file__).resolve().parents[1] / "docs" / f"speed-{device.type}-{args.config}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return result


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
