"""Training and prediction speed of AutoTailClassifier against Hugging Face's own tools.

Side by side, in one process, on the same random-weight BERT and the same texts:

* training samples/s of ``AutoTailClassifier`` with the baseline settings
  (``tail_gate=False, bs_weight=0, fgm_epsilon=0``) against a
  ``transformers.Trainer`` loop with its default padding
  (``DataCollatorWithPadding``: each random batch padded to its longest text),
  the two timed alternately for ``--repeats`` rounds (median ratio reported);
* the step time with FGM (``fgm_epsilon=0.3``) against the plain step, both
  measured on the same batches, interleaved in one run;
* ``predict_proba`` texts/s against ``transformers.pipeline("text-classification")``
  (its defaults: one text per forward pass);
* MFU, model FLOPs utilisation: ``6 * N * tokens/s / peak``, with ``N`` the
  parameters outside embedding tables, the tokens those of the texts (padding
  not counted) and ``peak`` the dense bf16 FLOP/s of the device
  (:data:`PEAK_BF16_DENSE`, or ``--peak-flops``); an FGM step counts its
  second forward and backward pass (``12 * N`` per token). The attention
  score FLOPs are left out, so the estimate is a lower bound.

Two shapes of work:

* ``--shape titles``: CSL titles from ``$SKTAIL_DATA/csl-title/train.tsv``
  when it exists, else a synthetic corpus of title-like lengths (``--data
  synthetic`` forces it); about 25 tokens a text, so at batch 16 a GPU step
  is bound by kernel launches and host work;
* ``--shape random``: texts of ``--seq-len`` tokens (special tokens
  included) made of characters drawn uniformly from the model's vocabulary,
  i.e. random token ids: the compute-bound shape (batch 32 or 64).

Steady-state times: the first optimizer step of each run is a warm-up, and
the rate is taken between the time stamps after the first and the last step.
On CUDA the device is synchronised at those two stamps only, so the measured
loops keep their own host-device overlap. sktail's fit is timed by a
:class:`~sktail.training.Callback` added through :func:`~sktail.training.observe`.

Usage::

    python benchmarks/speed.py --device cpu --config base --steps 6
    python benchmarks/speed.py --device cuda --precision bf16 --config base --steps 60
    python benchmarks/speed.py --device cuda --precision bf16 --shape random --batch-size 64 --steps 30

Prints one JSON object and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as ``python benchmarks/speed.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sktail.training import Callback  # noqa: E402

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CONFIGS = {
    # bert-base-chinese / chinese-macbert-base shapes, random weights.
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072, "vocab_size": 21128},
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "vocab_size": 0},
}
#: CJK Unified Ideographs: the base vocabulary is filled with them, so that
#: random texts hit (nearly) every row of a bert-base-chinese-sized embedding.
CJK = [chr(c) for c in range(0x4E00, 0xA000)]

#: Dense bf16 peak FLOP/s by device name (vendor datasheets, without sparsity);
#: the first pattern that matches ``torch.cuda.get_device_name()`` wins.
PEAK_BF16_DENSE = (
    (r"\bH200 NVL\b", 835e12, "H200 NVL"),
    (r"\bH200\b", 989e12, "H200 SXM"),
    (r"\bH100 NVL\b", 835e12, "H100 NVL"),
    (r"\bH100 PCIe\b", 756e12, "H100 PCIe"),
    (r"\bH100\b", 989e12, "H100 SXM"),
    (r"\bA100\b", 312e12, "A100"),
    (r"\bL4\b", 121e12, "L4"),
)


def peak_flops(device_name: str):
    """Dense bf16 peak FLOP/s of a device, from :data:`PEAK_BF16_DENSE`.

    Returns
    -------
    peak : float or None
        None for a device not in the table (MFU is then not computed).
    label : str
        The table's entry, or ``"unknown"``.
    """
    for pattern, flops, label in PEAK_BF16_DENSE:
        if re.search(pattern, device_name or ""):
            return flops, label
    return None, "unknown"


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


def model_characters(model_dir) -> list:
    """The single CJK characters of a model folder's ``vocab.txt`` (one token each)."""
    vocab = (Path(model_dir) / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return [t for t in vocab if len(t) == 1 and "\u4e00" <= t <= "\u9fff"]


def random_texts(model_dir, n: int, seq_len: int, seed: int, n_classes: int = 13):
    """``n`` texts of ``seq_len`` tokens each ([CLS] and [SEP] included): random token ids.

    Each text is ``seq_len - 2`` characters drawn uniformly from the model's
    one-character CJK tokens; labels are uniform over ``n_classes``.
    """
    chars = np.asarray(model_characters(model_dir))
    if len(chars) == 0:
        raise ValueError(f"{model_dir}/vocab.txt has no one-character CJK tokens to draw from.")
    rng = np.random.RandomState(seed)
    picks = rng.randint(0, len(chars), size=(n, seq_len - 2))
    texts = ["".join(chars[row]) for row in picks]
    labels = [f"c{k}" for k in rng.randint(0, n_classes, size=n)]
    return texts, labels


def write_model(path: Path, config_name: str, texts, seed: int) -> Path:
    """A random-weight BERT directory with a character vocabulary of the texts.

    The base configuration's vocabulary is the texts' characters plus the CJK
    block, padded to the real model's 21,128 rows, so the embedding matrix
    (and its optimizer cost) is that of the real model and random texts reach
    all of it.
    """
    from transformers import BertConfig, BertModel, BertTokenizerFast

    shape = dict(CONFIGS[config_name])
    target = shape.pop("vocab_size")
    chars = set("".join(texts))
    if target:
        chars |= set(CJK)
    vocab = SPECIAL + sorted(chars - set(SPECIAL))
    vocab += [f"[unused{i}]" for i in range(max(0, target - len(vocab)))]
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast.from_pretrained(path).save_pretrained(path)
    config = BertConfig(vocab_size=len(vocab), max_position_embeddings=512, **shape)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(path)
    return path


def ensure_model(model_dir, config_name: str, texts, seed: int) -> Path:
    """``model_dir`` as it is when it holds a model, else written there first."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        write_model(model_dir, config_name, texts, seed)
    return model_dir


def non_embedding_parameters(network: torch.nn.Module) -> int:
    """Parameters outside ``nn.Embedding`` tables (word, position, token type)."""
    embedded = {id(p) for m in network.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    return sum(p.numel() for p in network.parameters() if id(p) not in embedded)


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


class StepTimer(Callback):
    """Time stamps after every optimizer step, and the tokens of every batch.

    The device is synchronised at the first and the last step of the epoch
    only, so the rate between them is a steady-state rate of the loop as it
    runs.

    Parameters
    ----------
    lengths : sequence of int
        Token count of each training row (in the order given to ``fit``).
    """

    def __init__(self, lengths):
        self.lengths = np.asarray(lengths)
        self.stamps, self.tokens = [], []
        self._batches, self._n_batches = None, 0

    def on_epoch_begin(self, trainer, n_batches, start):
        self._batches, self._n_batches = trainer.state.progress["batches"], n_batches

    def on_batch_end(self, trainer, index, loss):
        self.tokens.append(int(self.lengths[self._batches[index]].sum()))

    def on_optimizer_step(self, trainer):
        if len(self.stamps) in (0, self._n_batches - 1):
            _sync(trainer.device)
        self.stamps.append(time.perf_counter())

    def tokens_per_s(self) -> float:
        """Tokens of the timed batches (all but the first) per second."""
        if len(self.stamps) < 2:
            return float("nan")
        return sum(self.tokens[1 : len(self.stamps)]) / (self.stamps[-1] - self.stamps[0])


# -- sktail ------------------------------------------------------------------------------
def _classifier(model_dir, args, device, fgm_epsilon):
    from sktail import AutoTailClassifier

    return AutoTailClassifier(
        encoder=str(model_dir), epochs=1, batch_size=args.batch_size, max_length=args.max_length,
        learning_rate=2e-5, validation_fraction=None, tail_gate=False, bs_weight=0.0,
        fgm_epsilon=fgm_epsilon, precision=args.precision, device=str(device), random_state=args.seed,
    )


def token_lengths(model_dir, texts, max_length) -> np.ndarray:
    """Token ids per text as sktail's Hugging Face encoder makes them (special tokens included)."""
    from sktail.encoders import HFEncoder

    return np.asarray([len(a) for a in HFEncoder(str(model_dir)).tokenize(texts, max_length)])


def sktail_training(model_dir, texts, labels, args, device):
    """Fit AutoTailClassifier (baseline settings) for ``args.steps + 1`` steps, timed by a callback."""
    from sktail.training import observe

    n = args.batch_size * (args.steps + 1)
    timer = StepTimer(token_lengths(model_dir, texts[:n], args.max_length))
    clf = _classifier(model_dir, args, device, fgm_epsilon=0.0)
    with observe(timer):
        clf.fit(texts[:n], labels[:n])
    return clf, {
        "samples_per_s": steady_rate(timer.stamps, args.batch_size),
        "tokens_per_s": timer.tokens_per_s(),
    }


def fgm_and_plain_steps(model_dir, texts, labels, args, device, dtype, use_scaler):
    """Plain and FGM step times on the same batches, interleaved in one run.

    A :class:`~sktail.training.Trainer` is built from the public parts
    (encoder, network, loss, config) and each batch is trained once without
    and once with FGM (in alternating order), so both see the same lengths and
    the same machine load.

    Returns
    -------
    dict
        Mean seconds of a ``plain`` and an ``fgm`` step, and the mean
        ``tokens`` of a timed batch.
    """
    from sktail.encoders import HFEncoder, TextClassifierNetwork
    from sktail.inference import to_device
    from sktail.objective import AutoTailLoss
    from sktail.training import Trainer, TrainingConfig, length_bucketed_batches

    n = args.batch_size * (args.steps + 1)
    classes, y = np.unique(labels[:n], return_inverse=True)
    encoder = HFEncoder(str(model_dir))
    ids = encoder.fit_tokenize(texts[:n], args.max_length)
    counts = np.bincount(y, minlength=len(classes))
    loss_fn = AutoTailLoss(np.zeros(len(classes)), counts, label_smoothing=0.05, bs_weight=0.0)
    config = TrainingConfig(
        epochs=1, batch_size=args.batch_size, learning_rate=2e-5, fgm_epsilon=0.3,
        device=device, autocast_dtype=dtype, use_scaler=use_scaler,
    )
    torch.manual_seed(args.seed)
    network = TextClassifierNetwork(encoder.build_network(), len(classes))
    trainer = Trainer(network, encoder, loss_fn, config, np.random.RandomState(args.seed), callbacks=[])
    # The schedule is built by Trainer.fit; this loop steps by hand, at a constant rate.
    trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lambda step: 1.0)
    trainer.network.train()
    epsilon = trainer.fgm.epsilon
    times, tokens = {"plain": [], "fgm": []}, []
    batches = length_bucketed_batches([len(a) for a in ids], args.batch_size, np.random.RandomState(args.seed))
    for i, rows in enumerate(batches):
        batch = to_device(trainer.collator.collate([ids[r] for r in rows]), device)
        target = torch.as_tensor(y[rows], dtype=torch.long, device=device)
        order = [("plain", 0.0), ("fgm", epsilon)]
        for name, eps in order if i % 2 else order[::-1]:
            trainer.fgm.epsilon = eps
            _sync(device)
            start = time.perf_counter()
            trainer.train_step(batch, target, None)
            trainer.optimizer_step()
            _sync(device)
            if i:  # the first batch is a warm-up
                times[name].append(time.perf_counter() - start)
        if i:
            tokens.append(sum(len(ids[r]) for r in rows))
    result = {name: float(np.mean(t)) for name, t in times.items()}
    result["tokens"] = float(np.mean(tokens))
    return result


def sktail_predict(clf, texts):
    clf.predict_proba(texts[:8])  # warm-up
    start = time.perf_counter()
    clf.predict_proba(texts)
    return len(texts) / (time.perf_counter() - start)


# -- Hugging Face ---------------------------------------------------------------------
def hf_training(model_dir, texts, labels, args, device, dtype):
    """``transformers.Trainer`` with its defaults for the same steps and settings."""
    try:
        import accelerate  # noqa: F401 - transformers.Trainer runs on it
    except ImportError:
        raise ImportError('the transformers.Trainer baseline needs accelerate: pip install -e ".[bench]"') from None
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
        def on_step_end(self, training_args, state, control, **kwargs):
            if state.global_step in (1, state.max_steps):  # as StepTimer: first and last step
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
    # One epoch over exactly n rows: every text is trained once, so the mean
    # text length times samples/s is the token rate (padding not counted).
    samples_per_s = steady_rate(stamps, args.batch_size)
    mean_tokens = float(np.mean([len(ids) for ids in encoded["input_ids"]]))
    return model, {"samples_per_s": samples_per_s, "tokens_per_s": samples_per_s * mean_tokens}


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
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per run (after 1 warm-up)")
    parser.add_argument("--config", default="base", choices=sorted(CONFIGS))
    parser.add_argument("--model-dir", default=None,
                        help="model folder to use (written there first, from --config, when it holds none); "
                             "default: a temporary folder")
    parser.add_argument("--shape", default="titles", choices=["titles", "random"],
                        help="titles (launch-bound) or random token ids of --seq-len (compute-bound)")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per text with --shape random")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--predict-texts", type=int, default=512, help="texts per prediction run")
    parser.add_argument("--data", default="auto", choices=["auto", "csl-title", "synthetic"],
                        help="texts of --shape titles (and the characters of a written model's vocabulary)")
    parser.add_argument("--peak-flops", type=float, default=None,
                        help="peak FLOP/s for MFU (default: the dense bf16 peak of the device from the "
                             "table in this file; none for unknown devices and CPUs)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of sktail and Trainer training timed alternately (the median ratio is reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help="JSON file to write (default: docs/speed-<device>-<config>[-<shape>].json)")
    args = parser.parse_args(argv)
    if args.shape == "random":
        args.max_length = max(args.max_length, args.seq_len)
    return args


def _mfu(flops_per_token, tokens_per_s, peak):
    return None if peak is None else flops_per_token * tokens_per_s / peak


def main(argv=None):
    args = parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    from sktail.devices import resolve_device, resolve_precision

    device = resolve_device(args.device)
    dtype, use_scaler = resolve_precision(args.precision, device)
    n_train = args.batch_size * (args.steps + 1)
    n_texts = max(n_train, args.predict_texts)
    titles, title_labels, source = load_texts(args.data, n_texts, args.seed)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        platform.processor() or platform.machine())
    peak, peak_source = (args.peak_flops, "--peak-flops") if args.peak_flops else peak_flops(
        device_name if device.type == "cuda" else "")
    result = {
        "command": "python benchmarks/speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "device": str(device), "device_name": device_name,
        "torch_threads": torch.get_num_threads(),
        "precision": str(dtype).replace("torch.", "") if dtype else "fp32",
        "config": args.config, "shape": args.shape, "batch_size": args.batch_size,
        "timed_steps": args.steps, "rounds": max(1, args.repeats), "predict_texts": args.predict_texts,
        "torch": torch.__version__,
    }
    import transformers

    result["transformers"] = transformers.__version__
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = ensure_model(args.model_dir or Path(tmp) / "model", args.config, titles, args.seed)
        model_config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        result["model"] = {k: model_config.get(k) for k in ("hidden_size", "num_hidden_layers", "vocab_size")}
        if args.shape == "random":
            texts, labels = random_texts(model_dir, n_texts, args.seq_len, args.seed)
            result.update(data=f"random token ids, {args.seq_len} tokens", seq_len=args.seq_len)
        else:
            texts, labels = titles, title_labels
            result["data"] = source
        result["mean_tokens"] = float(np.mean(token_lengths(model_dir, texts[:n_train], args.max_length)))
        # One untimed pass first: on a GPU, the first time each sequence length
        # is seen costs kernel selection and allocator growth, and whichever
        # side ran first would pay for both.
        sktail_training(model_dir, texts, labels, args, device)
        rounds = []  # alternate the two sides, so that a change of machine load hits both
        for _ in range(max(1, args.repeats)):
            plain_clf, plain = sktail_training(model_dir, texts, labels, args, device)
            hf_model, hf = hf_training(model_dir, texts, labels, args, device, dtype)
            rounds.append((plain, hf))
        steps = fgm_and_plain_steps(model_dir, texts, labels, args, device, dtype, use_scaler)
        predict_texts = texts[: args.predict_texts]
        ours_predict = sktail_predict(plain_clf, predict_texts)
        pipe_predict = hf_pipeline_predict(hf_model, model_dir, predict_texts, device)
        n_params = sum(p.numel() for p in plain_clf.network_.parameters())
        n_dense = non_embedding_parameters(plain_clf.network_)
    ratios = [p["samples_per_s"] / h["samples_per_s"] for p, h in rounds]
    tokens = {
        "sktail": float(np.median([p["tokens_per_s"] for p, _ in rounds])),
        "hf_trainer": float(np.median([h["tokens_per_s"] for _, h in rounds])),
    }
    step_s = {"plain": steps["plain"], "fgm": steps["fgm"]}
    result.update({
        "params": n_params,
        "params_non_embedding": n_dense,
        "train_samples_per_s": {
            "sktail": float(np.median([p["samples_per_s"] for p, _ in rounds])),
            "hf_trainer": float(np.median([h["samples_per_s"] for _, h in rounds])),
        },
        "train_speedup_vs_trainer": float(np.median(ratios)),
        "train_speedup_per_round": ratios,
        "train_tokens_per_s": tokens,
        "step_s": step_s,
        "step_tokens": steps["tokens"],
        "fgm_over_plain": steps["fgm"] / steps["plain"],
        "predict_texts_per_s": {"sktail": ours_predict, "hf_pipeline": pipe_predict},
        "predict_speedup_vs_pipeline": ours_predict / pipe_predict,
        "peak_flops": peak,
        "peak_flops_source": peak_source,
        # 6 FLOPs per dense parameter per trained token (forward 2, backward 4).
        "mfu": {
            "sktail_fit": _mfu(6 * n_dense, tokens["sktail"], peak),
            "hf_trainer": _mfu(6 * n_dense, tokens["hf_trainer"], peak),
            "plain_step": _mfu(6 * n_dense, steps["tokens"] / steps["plain"], peak),
            "fgm_step": _mfu(12 * n_dense, steps["tokens"] / steps["fgm"], peak),
        },
    })
    result = _rounded(result)
    if args.out:
        out = Path(args.out)
    else:
        suffix = "" if args.shape == "titles" else f"-random{args.seq_len}-b{args.batch_size}"
        out = Path(__file__).resolve().parents[1] / "docs" / f"speed-{device.type}-{args.config}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return result


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
