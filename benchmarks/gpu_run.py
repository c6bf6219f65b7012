"""The Python parts of the GPU check that ``benchmarks/gpu_run.sh`` runs one after another.

Each part writes JSON into the folder it is given, as it goes, so that a part
stopped by its time limit still leaves what it measured:

* ``model DIR``: a random-weight BERT folder (``--config base``: the
  bert-base-chinese shape, a 21,128-row character vocabulary) shared by the
  other parts; nothing is downloaded;
* ``paper``: the fit time of the paper's configuration on CSL titles
  (``AutoTailClassifier`` defaults for transformers, 2 epochs), the full
  method and the label-smoothed baseline, against the paper's 427 s and 680 s;
* ``memory``: device memory after each of 5 consecutive fits in one process
  (target: the 5th within 64 MiB of the 1st);
* ``e5``: e5-small full fine-tuning (``learning_rate=1e-4, epochs=3``) over
  seeds, baseline and full, on the title split: accuracy, balanced accuracy,
  fit seconds (fits of different seeds and configurations may run at once,
  ``--jobs``);
* ``table FOLDER``: one table of every part's numbers against its target,
  printed and written to ``summary.md`` and ``summary.json``.

The data folder (``--data``, default ``$SKTAIL_DATA``) holds
``csl-title/train.tsv`` and ``dev.tsv`` (``text<TAB>label``).

Examples
--------
::

    python -m benchmarks.gpu_run model /tmp/bert-base --config base
    python -m benchmarks.gpu_run paper --model-dir /tmp/bert-base --out run/paper.json
    python -m benchmarks.gpu_run e5 --out run/e5 --jobs 6
    python -m benchmarks.gpu_run table run
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as ``python benchmarks/gpu_run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.runner import AUTOTAIL_CONFIGS, load_split  # noqa: E402
from sktail.training import Callback  # noqa: E402

#: Training seconds of the paper (docs/method.md §9, title task, MacBERT-base, mean of 3 seeds).
PAPER_FIT_S = {"baseline": 427.0, "full": 680.0}
PAPER_SEEDS = (13, 42, 3407)
TARGETS = {
    "train_speedup_vs_trainer": 1.3, "mfu_compute_bound": 0.35, "fgm_over_plain": 1.9,
    "predict_speedup_vs_pipeline": 2.0, "memory_growth_mib": 64.0,
}
MIB = 2**20


def _write_json(path: Path, payload) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)


def _data_root(value) -> Path:
    return Path(value or os.environ.get("SKTAIL_DATA") or "../shared/data").expanduser()


def _title_split(args):
    folder = _data_root(args.data) / "csl-title"
    if not (folder / "train.tsv").exists():
        return None, f"no CSL titles at {folder} (set SKTAIL_DATA or --data)"
    return load_split(folder, max_train=args.max_train, max_eval=args.max_eval), None


def _device_info(device: str) -> dict:
    import torch

    from sktail.devices import resolve_device

    resolved = resolve_device(device)
    name = torch.cuda.get_device_name(resolved) if resolved.type == "cuda" else "cpu"
    return {"device": str(resolved), "device_name": name, "torch": torch.__version__}


# -- model ---------------------------------------------------------------------------
def cmd_model(args):
    """Write the shared random-weight BERT folder (characters of the titles, CJK block for base)."""
    from benchmarks import speed

    texts, _, source = speed.load_texts(args.text_source, 2000, 0)
    speed.ensure_model(Path(args.dir), args.config, texts, seed=0)
    print(f"model ({args.config}, vocabulary from {source} texts) in {args.dir}", flush=True)


# -- the paper's fit time ----------------------------------------------------------------
class FitProgress(Callback):
    """Time stamps of the optimizer steps of one fit, written to a JSON file every few seconds.

    A fit stopped by the time limit of its part then still says how far it
    got and how long the whole would have taken at that pace.
    """

    def __init__(self, path, payload, name, every=5.0):
        self.path, self.payload, self.name, self.every = Path(path), payload, name, every
        self.stamps = []
        self._written = 0.0

    def on_train_begin(self, trainer):
        self.start, self.epochs, self.stamps = time.perf_counter(), trainer.config.epochs, []
        self._written = self.start

    def on_epoch_begin(self, trainer, n_batches, start):
        self.total_steps = self.epochs * n_batches

    def on_optimizer_step(self, trainer):
        now = time.perf_counter()
        self.stamps.append(now)
        if now - self._written >= self.every:
            self._written = now
            self.payload["in_progress"] = self.progress(now)
            _write_json(self.path, self.payload)

    def progress(self, now=None) -> dict:
        """Steps done, seconds so far and the projected fit seconds."""
        now = time.perf_counter() if now is None else now
        done, elapsed = len(self.stamps), now - self.start
        return {"config": self.name, "steps_done": done, "steps_total": self.total_steps,
                "elapsed_s": elapsed, "projected_fit_s": elapsed * self.total_steps / max(done, 1)}

    def step_s(self) -> float:
        """Median seconds between optimizer steps (validation passes excluded by the median)."""
        return float(np.median(np.diff(self.stamps))) if len(self.stamps) > 2 else float("nan")


def cmd_paper(args):
    """Fit the paper's configuration (baseline and full) once each and time it."""
    from sktail import AutoTailClassifier
    from sktail.metrics import evaluation_report
    from sktail.training import observe

    out = Path(args.out)
    payload = {"part": "paper", **_device_info(args.device), "model_dir": str(args.model_dir),
               "paper_fit_s": PAPER_FIT_S, "runs": {}}
    split, reason = _title_split(args)
    if split is None:
        payload["skipped"] = reason
        _write_json(out, payload)
        print(reason, flush=True)
        return payload
    payload.update(n_train=len(split.train_texts), n_eval=len(split.eval_texts), epochs=args.epochs,
                   seed=args.seed)
    # An untimed fit first (FGM on, so both kinds of step run): the first fit of a
    # process pays for CUDA's start, kernel selection and allocator growth.
    start = time.perf_counter()
    rows = min(len(split.train_texts), 8 * 16)
    AutoTailClassifier(encoder=str(args.model_dir), epochs=1, validation_fraction=None, device=args.device,
                       random_state=args.seed).fit(split.train_texts[:rows], split.train_labels[:rows])
    payload["warm_up_s"] = time.perf_counter() - start
    _write_json(out, payload)
    for name in args.configs:
        clf = AutoTailClassifier(encoder=str(args.model_dir), epochs=args.epochs, device=args.device,
                                 random_state=args.seed, **AUTOTAIL_CONFIGS[name])
        progress = FitProgress(out, payload, name)
        start = time.perf_counter()
        with observe(progress):
            clf.fit(split.train_texts, split.train_labels)
        fit_s = time.perf_counter() - start
        report = evaluation_report(split.eval_labels, clf.predict(split.eval_texts), split.class_counts)
        payload.pop("in_progress", None)
        payload["runs"][name] = {
            "fit_s": fit_s, "paper_fit_s": PAPER_FIT_S[name], "paper_over_ours": PAPER_FIT_S[name] / fit_s,
            "steps": len(progress.stamps), "step_s": progress.step_s(),
            "epoch_s": [h["seconds"] for h in clf.history_],
            "accuracy": report["accuracy"], "balanced_accuracy": report["balanced_accuracy"],
            "params": {"batch_size": clf.batch_size_, "learning_rate": clf.learning_rate_,
                       "max_length": clf.max_length_, "epochs": clf.epochs_},
        }
        _write_json(out, payload)
        print(f"{name}: fit {fit_s:.1f} s (paper {PAPER_FIT_S[name]:.0f} s), "
              f"{1000 * progress.step_s():.1f} ms/step", flush=True)
    return payload


# -- device memory over repeated fits --------------------------------------------------------
def _memory_now(device) -> dict:
    import torch

    rss = None
    try:
        with open("/proc/self/statm") as handle:
            rss = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB
    except OSError:
        pass
    if device.type != "cuda":
        return {"allocated_mib": None, "reserved_mib": None, "rss_mib": rss}
    return {"allocated_mib": torch.cuda.memory_allocated(device) / MIB,
            "reserved_mib": torch.cuda.memory_reserved(device) / MIB, "rss_mib": rss}


def cmd_memory(args):
    """``--fits`` fits (and a prediction each) of one estimator in one process; memory after each."""
    from benchmarks import speed
    from sktail import AutoTailClassifier
    from sktail.devices import resolve_device

    device = resolve_device(args.device)
    texts, labels, source = speed.load_texts("auto", args.rows, 0)
    clf = AutoTailClassifier(encoder=str(args.model_dir), epochs=1, validation_fraction=None,
                             device=args.device, random_state=0)
    payload = {"part": "memory", **_device_info(args.device), "rows": len(texts), "data": source, "fits": []}
    for i in range(args.fits):
        start = time.perf_counter()
        clf.fit(texts, labels).predict_proba(texts[:64])
        payload["fits"].append({"fit": i + 1, "seconds": time.perf_counter() - start, **_memory_now(device)})
        _write_json(Path(args.out), payload)
    allocated = [f["allocated_mib"] for f in payload["fits"]]
    if allocated and allocated[0] is not None:
        payload["growth_mib"] = allocated[-1] - allocated[0]
        payload["met"] = payload["growth_mib"] <= TARGETS["memory_growth_mib"]
    payload["on_cpu_after_fit"] = all(p.device.type == "cpu" for p in clf.network_.parameters())
    _write_json(Path(args.out), payload)
    print(json.dumps(payload["fits"]), flush=True)
    return payload


# -- e5-small over seeds ---------------------------------------------------------------
def _e5_configs(args):
    from benchmarks.runner import autotail_config

    params = {"learning_rate": args.learning_rate, "epochs": args.epochs}
    return [autotail_config(name, args.encoder, params=params, device=args.device) for name in args.configs]


def _check_encoder(name) -> str | None:
    """None when ``name`` builds and tokenizes (e5-small: converted once here), else why not."""
    from sktail.encoders import make_encoder

    try:
        make_encoder(name).fit_tokenize(["模型"], 8)
    except Exception as error:  # noqa: BLE001 - any failure means: skip this part, say why
        return f"encoder {name!r} is not available here: {type(error).__name__}: {error}"
    return None


def cmd_e5(args):
    """Baseline and full fits of one encoder over seeds, in ``--jobs`` processes at once."""
    from benchmarks.runner import run_benchmark
    from sktail.training import observe

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"part": "e5", **_device_info(args.device), "encoder": args.encoder, "jobs": args.jobs,
            "learning_rate": args.learning_rate, "epochs": args.epochs}
    split, reason = _title_split(args)
    reason = reason or _check_encoder(args.encoder)
    if reason:
        _write_json(out / "e5.json", {"meta": meta, "skipped": reason})
        print(reason, flush=True)
        return None
    pairs = [(name, seed) for seed in args.seeds for name in args.configs]
    if args.jobs <= 1:
        # progress.json says how far a fit stopped by the part's time limit got.
        progress = FitProgress(out / "progress.json", {}, f"{' '.join(args.configs)}, seeds {args.seeds}")
        with observe(progress):
            run_benchmark(split, _e5_configs(args), args.seeds, out / "results.json", meta=meta,
                          log=lambda line: print(line, flush=True))
        (out / "progress.json").unlink(missing_ok=True)
    else:
        # One process per (configuration, seed): a GPU step at batch 16 leaves the
        # device mostly idle, so fits side by side share it well.
        threads = max(1, (os.cpu_count() or 1) // args.jobs)
        pending, running = list(pairs), []
        while pending or running:
            while pending and len(running) < args.jobs:
                name, seed = pending.pop(0)
                command = [sys.executable, "-m", "benchmarks.gpu_run", "e5", "--jobs", "1",
                           "--out", str(out / f"{name}-{seed}"), "--configs", name, "--seeds", str(seed),
                           "--encoder", args.encoder, "--device", args.device, "--data", str(_data_root(args.data)),
                           "--epochs", str(args.epochs), "--learning-rate", str(args.learning_rate)]
                for flag, value in (("--max-train", args.max_train), ("--max-eval", args.max_eval)):
                    if value is not None:
                        command += [flag, str(value)]
                root = str(Path(__file__).resolve().parents[1])
                path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
                env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": path}
                running.append(subprocess.Popen(command, env=env, cwd=root))
            time.sleep(0.5)
            running = [p for p in running if p.poll() is None]
    summary = summarise_e5(out, meta)
    if summary is None:
        raise RuntimeError("no e5 fit finished")
    return summary


def summarise_e5(folder, meta=None):
    """Pool the finished fits of an e5 folder (its own or its processes'), write ``e5.json``.

    Returns
    -------
    dict or None
        :func:`benchmarks.report.summarise` of the finished fits; None when none finished.
    """
    from benchmarks.report import summarise
    from benchmarks.runner import merge_results

    folder = Path(folder)
    children = sorted(p.parent for p in folder.glob("*/results.json"))
    if children:
        merge_results(children, folder / "results.json")
    payload = _load(folder / "results.json")
    if not payload or not payload["runs"]:
        return None
    payload["meta"].update(meta or {})
    summary = summarise(payload)
    stopped = [p["in_progress"] for p in map(_load, sorted([*folder.glob("progress.json"), *folder.glob("*/progress.json")])) if p and "in_progress" in p]
    _write_json(folder / "e5.json", {
        "meta": payload["meta"], "summary": summary, "stopped": stopped,
        "runs": [{k: v for k, v in r.items() if k not in ("predictions", "per_class_accuracy")} for r in payload["runs"]],
    })
    return summary


# -- the final table -----------------------------------------------------------------------
def _load(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _fmt(value, spec="{:.2f}", none="—"):
    return none if value is None or value != value else spec.format(value)


def _met(value, target, above=True):
    if value is None or value != value:
        return "not measured"
    return "yes" if (value >= target if above else value <= target) else "**no**"


def build_table(folder) -> tuple[str, dict]:
    """The final markdown table of a run folder and every part's JSON."""
    folder = Path(folder)
    parts = {name: _load(folder / f"{name}.json") for name in
             ("speed-titles", "speed-random-b32", "speed-random-b64", "paper", "memory")}
    parts["e5"] = _load(folder / "e5" / "e5.json")
    if parts["e5"] is None and (folder / "e5").is_dir():  # the part was stopped before it pooled its fits
        summarise_e5(folder / "e5")
        parts["e5"] = _load(folder / "e5" / "e5.json")
    status = (folder / "parts.txt").read_text(encoding="utf-8") if (folder / "parts.txt").exists() else ""
    rows = ["| measure | value | target | met? |", "|---|---|---|---|"]

    titles = parts["speed-titles"]
    speeds = [parts[n] for n in ("speed-titles", "speed-random-b32", "speed-random-b64") if parts[n]]
    for s in speeds:
        label = (f"titles, batch {s['batch_size']}" if s["shape"] == "titles"
                 else f"random {s.get('seq_len', 0)} tokens, batch {s['batch_size']}")
        ratio = s["train_speedup_vs_trainer"]
        rounds = ", ".join(_fmt(r) for r in s["train_speedup_per_round"])
        target = (f"≥ {TARGETS['train_speedup_vs_trainer']}×", _met(ratio, TARGETS["train_speedup_vs_trainer"])) \
            if s is titles else ("(information)", "")
        rows.append(f"| training samples/s in fit vs HF Trainer ({label}) | {_fmt(ratio)}× "
                    f"({_fmt(s['train_samples_per_s']['sktail'], '{:.1f}')} vs "
                    f"{_fmt(s['train_samples_per_s']['hf_trainer'], '{:.1f}')}; rounds {rounds}) | {target[0]} | {target[1]} |")
        mfu = s["mfu"]
        compute_bound = s["shape"] == "random"
        rows.append(
            f"| MFU ({label}; peak {s['peak_flops_source']}) | fit {_fmt(mfu['sktail_fit'], '{:.1%}')}, "
            f"Trainer {_fmt(mfu['hf_trainer'], '{:.1%}')}, plain step {_fmt(mfu['plain_step'], '{:.1%}')}, "
            f"FGM step {_fmt(mfu['fgm_step'], '{:.1%}')} | "
            + (f"≥ {TARGETS['mfu_compute_bound']:.0%} | {_met(mfu['sktail_fit'], TARGETS['mfu_compute_bound'])} |"
               if compute_bound else "(launch-bound) | |"))
        rows.append(f"| FGM step / plain step ({label}) | {_fmt(s['fgm_over_plain'])}× "
                    f"({_fmt(1000 * s['step_s']['fgm'], '{:.1f}')} / {_fmt(1000 * s['step_s']['plain'], '{:.1f}')} ms) "
                    f"| ≤ {TARGETS['fgm_over_plain']}× | {_met(s['fgm_over_plain'], TARGETS['fgm_over_plain'], above=False)} |")
        rows.append(f"| predict_proba vs pipeline ({label}) | {_fmt(s['predict_speedup_vs_pipeline'])}× "
                    f"({_fmt(s['predict_texts_per_s']['sktail'], '{:.0f}')} vs "
                    f"{_fmt(s['predict_texts_per_s']['hf_pipeline'], '{:.0f}')} texts/s) | "
                    f"≥ {TARGETS['predict_speedup_vs_pipeline']}× | "
                    f"{_met(s['predict_speedup_vs_pipeline'], TARGETS['predict_speedup_vs_pipeline'])} |")
    memory = parts["memory"]
    if memory:
        values = ", ".join(_fmt(f["allocated_mib"], "{:.0f}") for f in memory["fits"])
        rows.append(f"| device memory allocated after fits 1..{len(memory['fits'])} (MiB) | {values} "
                    f"(growth {_fmt(memory.get('growth_mib'), '{:.1f}')}) | ≤ {TARGETS['memory_growth_mib']:.0f} MiB "
                    f"| {_met(memory.get('growth_mib'), TARGETS['memory_growth_mib'], above=False)} |")
    paper = parts["paper"]
    if paper and "skipped" not in paper:
        for name, run in paper["runs"].items():
            rows.append(f"| paper configuration fit, {name} ({paper['n_train']} titles, epochs={paper['epochs']}) "
                        f"| {run['fit_s']:.1f} s ({1000 * run['step_s']:.1f} ms/step) | paper {run['paper_fit_s']:.0f} s "
                        f"| {run['paper_over_ours']:.2f}× faster |")
        if len(paper["runs"]) == 2:
            runs = paper["runs"]
            rows.append(f"| full / baseline fit time | {runs['full']['fit_s'] / runs['baseline']['fit_s']:.2f}× | "
                        f"paper {PAPER_FIT_S['full'] / PAPER_FIT_S['baseline']:.2f}× | |")
        if "in_progress" in paper:
            p = paper["in_progress"]
            rows.append(f"| paper configuration fit, {p['config']} (stopped at step {p['steps_done']}/{p['steps_total']}) "
                        f"| projected {p['projected_fit_s']:.0f} s | paper {PAPER_FIT_S[p['config']]:.0f} s | |")
    elif paper:
        rows.append(f"| paper configuration fit | skipped: {paper['skipped']} | | |")
    e5 = parts["e5"]
    if e5 and "skipped" in e5:
        rows.append(f"| e5-small over seeds | skipped: {e5['skipped']} | | |")
    elif e5:
        encoder = Path(e5["meta"].get("encoder", "e5-small")).name
        for name, entry in e5["summary"].items():
            m = entry["metrics"]
            rows.append(
                f"| {encoder} {name} (seeds {', '.join(map(str, entry['seeds']))}; {e5['meta']['jobs']} at once) "
                f"| acc {_fmt(100 * m['accuracy']['mean'])} ± {_fmt(100 * m['accuracy']['std'])}, "
                f"bal. acc {_fmt(100 * m['balanced_accuracy']['mean'])} ± {_fmt(100 * m['balanced_accuracy']['std'])}, "
                f"fit {_fmt(m['fit_seconds']['mean'], '{:.0f}')} s | (information) | |")
        for p in e5.get("stopped", []):
            rows.append(f"| {encoder} {p['config']} (stopped at step {p['steps_done']}/{p['steps_total']}) "
                        f"| projected fit {p['projected_fit_s']:.0f} s | | |")
    lines = ["# GPU run", ""]
    devices = {p.get("device_name") for p in parts.values() if isinstance(p, dict) and p.get("device_name")}
    devices |= {p["meta"].get("device_name") for p in [e5] if p and p.get("meta")}
    lines.append("Device: " + (", ".join(sorted(d for d in devices if d)) or "unknown"))
    lines += ["", *rows]
    if status:
        lines += ["", "Parts (exit status, seconds):", "", "```", status.rstrip(), "```"]
    return "\n".join(lines) + "\n", parts


def cmd_table(args):
    """Print the final table and write ``summary.md`` and ``summary.json`` into ``--summary-dir``."""
    text, parts = build_table(args.folder)
    target = Path(args.summary_dir or args.folder)
    target.mkdir(parents=True, exist_ok=True)
    (target / "summary.md").write_text(text, encoding="utf-8")
    _write_json(target / "summary.json", parts)
    print(text, flush=True)
    return text


# -- command line ----------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_run", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)

    model = sub.add_parser("model", help="write the shared random-weight BERT folder")
    model.add_argument("dir")
    model.add_argument("--config", default="base", choices=["base", "tiny"])
    model.add_argument("--text-source", default="auto", choices=["auto", "csl-title", "synthetic"])

    def data_options(p):
        p.add_argument("--data", default=None, help="folder holding csl-title/ (default: $SKTAIL_DATA)")
        p.add_argument("--max-train", type=int, default=None, help="stratified subset of the training rows")
        p.add_argument("--max-eval", type=int, default=None, help="stratified subset of the dev rows")
        p.add_argument("--device", default="auto")

    paper = sub.add_parser("paper", help="fit time of the paper's configuration (baseline and full)")
    paper.add_argument("--model-dir", required=True)
    paper.add_argument("--out", required=True, help="JSON file")
    paper.add_argument("--epochs", type=int, default=2)
    paper.add_argument("--seed", type=int, default=13)
    paper.add_argument("--configs", nargs="+", default=["baseline", "full"], choices=sorted(PAPER_FIT_S))
    data_options(paper)

    memory = sub.add_parser("memory", help="device memory after each of consecutive fits")
    memory.add_argument("--model-dir", required=True)
    memory.add_argument("--out", required=True, help="JSON file")
    memory.add_argument("--fits", type=int, default=5)
    memory.add_argument("--rows", type=int, default=256)
    memory.add_argument("--device", default="auto")

    e5 = sub.add_parser("e5", help="baseline and full fits of an encoder over seeds")
    e5.add_argument("--out", required=True, help="folder")
    e5.add_argument("--encoder", default="e5-small")
    e5.add_argument("--seeds", type=int, nargs="+", default=list(PAPER_SEEDS))
    e5.add_argument("--configs", nargs="+", default=["baseline", "full"], choices=sorted(PAPER_FIT_S))
    e5.add_argument("--epochs", type=int, default=3)
    e5.add_argument("--learning-rate", type=float, default=1e-4)
    e5.add_argument("--jobs", type=int, default=1, help="fits run at once, each in its own process")
    data_options(e5)

    table = sub.add_parser("table", help="the final table of a run folder")
    table.add_argument("folder")
    table.add_argument("--summary-dir", default=None, help="where summary.md/json go (default: the folder)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    result = {"model": cmd_model, "paper": cmd_paper, "memory": cmd_memory, "e5": cmd_e5, "table": cmd_table}[args.part](args)
    gc.collect()
    return result


if __name__ == "__main__":
    main()
