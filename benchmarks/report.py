"""Summaries, markdown tables and plots of a benchmark JSON file.

Input is the dictionary written by :func:`benchmarks.runner.run_benchmark`.
Scores are reported in percent as mean ± standard deviation over seeds; the
exact McNemar test (:func:`sktail.metrics.mcnemar_exact`) compares each
configuration with the baseline on predictions pooled over the seeds both ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sktail.metrics import frequency_bands, mcnemar_exact

from .runner import BASELINE

#: The linear reference of the second McNemar test.
LINEAR_REFERENCE = "tfidf-svc"

__all__ = [
    "markdown_table",
    "pooled_mcnemar",
    "plot_band_accuracy",
    "plot_per_class_delta",
    "summarise",
    "write_report",
]

METRICS = ("accuracy", "macro_f1", "balanced_accuracy")
BANDS = ("tail", "mid", "head")


def _runs_by_config(payload) -> dict:
    grouped = {}
    for run in payload["runs"]:
        grouped.setdefault(run["config"], {})[run["seed"]] = run
    return grouped


def pooled_mcnemar(payload, config, reference=BASELINE):
    """Exact McNemar test of ``config`` against ``reference``, pooled over shared seeds.

    Parameters
    ----------
    payload : dict
        Benchmark results.
    config, reference : str
        Configuration names.

    Returns
    -------
    dict or None
        ``b`` (reference right, config wrong), ``c`` (the reverse),
        ``pvalue`` and ``seeds``; None when no seed was run by both.
    """
    grouped = _runs_by_config(payload)
    if config == reference or config not in grouped or reference not in grouped:
        return None
    seeds = sorted(set(grouped[config]) & set(grouped[reference]))
    if not seeds:
        return None
    y = np.concatenate([payload["eval_labels"]] * len(seeds))
    a = np.concatenate([grouped[reference][s]["predictions"] for s in seeds])
    b = np.concatenate([grouped[config][s]["predictions"] for s in seeds])
    result = mcnemar_exact(y, a, b)
    return {"b": result.b, "c": result.c, "pvalue": result.pvalue, "seeds": seeds}


def _mean_std(values):
    values = np.asarray([v for v in values if v is not None], dtype=float)
    if values.size == 0:
        return None, None
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def summarise(payload) -> dict:
    """Mean, standard deviation and per-seed values of every score, per configuration.

    Parameters
    ----------
    payload : dict
        Benchmark results.

    Returns
    -------
    dict
        Configuration name -> ``{"seeds", "metrics": {name: {"mean", "std",
        "values"}}, "mcnemar"}``; metric names are those of
        :func:`sktail.metrics.evaluation_report` (bands as ``tail``, ``mid``,
        ``head``) plus ``fit_seconds`` and ``predict_texts_per_s``. Deltas
        to the baseline, over the seeds both ran, are under ``"delta"``.
    """
    grouped = _runs_by_config(payload)
    summary = {}
    for name, runs in grouped.items():
        seeds = sorted(runs)
        values = {m: [runs[s][m] for s in seeds] for m in METRICS}
        for band in BANDS:
            values[band] = [runs[s].get("band_accuracy", {}).get(band) for s in seeds]
        values["fit_seconds"] = [runs[s]["fit_seconds"] for s in seeds]
        values["predict_texts_per_s"] = [runs[s]["predict_texts_per_s"] for s in seeds]
        metrics = {}
        for metric, vals in values.items():
            mean, std = _mean_std(vals)
            metrics[metric] = {"mean": mean, "std": std, "values": vals}
        entry = {"seeds": seeds, "metrics": metrics, "mcnemar": pooled_mcnemar(payload, name),
                 "mcnemar_vs_linear": pooled_mcnemar(payload, name, reference=LINEAR_REFERENCE)}
        if BASELINE in grouped and name != BASELINE:
            shared = sorted(set(runs) & set(grouped[BASELINE]))
            entry["delta"] = {}
            for metric in (*METRICS, *BANDS):
                diffs = [_score(runs[s], metric) - _score(grouped[BASELINE][s], metric) for s in shared]
                mean, std = _mean_std(diffs)
                entry["delta"][metric] = {"mean": mean, "std": std, "seeds": shared}
        summary[name] = entry
    return summary


def _score(run, metric):
    if metric in BANDS:
        value = run.get("band_accuracy", {}).get(metric)
        return np.nan if value is None else value
    return run[metric]


def _pct(stat, digits=2):
    if stat is None or stat.get("mean") is None:
        return "–"
    return f"{100 * stat['mean']:.{digits}f} ± {100 * stat['std']:.{digits}f}"


def _signed(stat):
    if stat is None or stat.get("mean") is None:
        return "–"
    return f"{100 * stat['mean']:+.2f}"


def markdown_table(summary, order=None) -> str:
    """Two markdown tables: overall and band scores, and the gains over the baseline.

    Parameters
    ----------
    summary : dict
        Output of :func:`summarise`.
    order : list of str, default=None
        Row order; defaults to the summary's order.

    Returns
    -------
    str
    """
    order = [n for n in (order or summary) if n in summary]
    lines = [
        "| config | seeds | accuracy | macro-F1 | balanced acc. | tail | mid | head | fit s | predict texts/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in order:
        m = summary[name]["metrics"]
        lines.append(
            f"| {name} | {len(summary[name]['seeds'])} | {_pct(m['accuracy'])} | {_pct(m['macro_f1'])} | "
            f"{_pct(m['balanced_accuracy'])} | {_pct(m['tail'], 1)} | {_pct(m['mid'], 1)} | {_pct(m['head'], 1)} | "
            f"{m['fit_seconds']['mean']:.1f} | {m['predict_texts_per_s']['mean']:.0f} |"
        )
    lines += [
        "",
        f"Paired differences to `{BASELINE}` (points, mean over shared seeds) and the exact McNemar "
        "test pooled over those seeds (b: baseline right and config wrong; c: the reverse):",
        "",
        "| config | Δ accuracy | Δ macro-F1 | Δ balanced acc. | Δ tail | Δ mid | Δ head | McNemar b / c | p |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in order:
        delta, test = summary[name].get("delta"), summary[name].get("mcnemar")
        if delta is None:
            continue
        test_cells = f"{test['b']} / {test['c']} | {test['pvalue']:.3g}" if test else "– | –"
        lines.append(
            f"| {name} | {_signed(delta['accuracy'])} | {_signed(delta['macro_f1'])} | "
            f"{_signed(delta['balanced_accuracy'])} | {_signed(delta['tail'])} | {_signed(delta['mid'])} | "
            f"{_signed(delta['head'])} | {test_cells} |"
        )
    against_linear = [n for n in order if summary[n].get("mcnemar_vs_linear")]
    if against_linear:
        lines += [
            "",
            f"Exact McNemar test against `{LINEAR_REFERENCE}` (TF-IDF + LinearSVC), pooled over shared seeds "
            f"(b: `{LINEAR_REFERENCE}` right and config wrong; c: the reverse):",
            "",
            "| config | McNemar b / c | p |",
            "|---|---|---|",
        ]
        for name in against_linear:
            test = summary[name]["mcnemar_vs_linear"]
            lines.append(f"| {name} | {test['b']} / {test['c']} | {test['pvalue']:.3g} |")
    return "\n".join(lines) + "\n"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_per_class_delta(payload, path, configs=None, title=None):
    """Per-class accuracy change over the baseline against the training count (log x).

    One marker per class and configuration: the mean paired difference over
    the shared seeds, with the seed standard deviation as error bar.

    Parameters
    ----------
    payload : dict
        Benchmark results.
    path : str or path-like
        PNG file to write.
    configs : list of str, default=None
        Configurations to draw; defaults to every one but the baseline.
    title : str, default=None
        Figure title.
    """
    plt = _pyplot()
    grouped = _runs_by_config(payload)
    counts = payload["class_counts"]
    labels = list(counts)
    x = np.array([counts[k] for k in labels], dtype=float)
    configs = [c for c in (configs or grouped) if c != BASELINE and c in grouped]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    if BASELINE in grouped:
        offsets = np.linspace(-0.06, 0.06, max(1, len(configs)))
        for i, name in enumerate(configs):
            seeds = sorted(set(grouped[name]) & set(grouped[BASELINE]))
            if not seeds:
                continue
            diffs = np.array([
                [_nan(grouped[name][s]["per_class_accuracy"][k]) - _nan(grouped[BASELINE][s]["per_class_accuracy"][k])
                 for k in labels]
                for s in seeds
            ])
            mean = 100 * np.nanmean(diffs, axis=0)
            err = 100 * np.nanstd(diffs, axis=0, ddof=1) if len(seeds) > 1 else None
            ax.errorbar(x * 10 ** offsets[i], mean, yerr=err, fmt="o", ms=4, capsize=2, alpha=0.85,
                        label=name, lw=1)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training examples of the class (log scale)")
    ax.set_ylabel(f"per-class accuracy − {BASELINE} (points)")
    ax.set_title(title or "Per-class accuracy change vs. training count")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _nan(value):
    return np.nan if value is None else value


def plot_band_accuracy(payload, path, configs=None, title=None):
    """Accuracy in the tail, mid and head bands: bars at the seed mean, one dot per seed.

    Parameters
    ----------
    payload : dict
        Benchmark results.
    path : str or path-like
        PNG file to write.
    configs : list of str, default=None
        Configurations to draw; defaults to all.
    title : str, default=None
        Figure title.
    """
    plt = _pyplot()
    grouped = _runs_by_config(payload)
    configs = [c for c in (configs or grouped) if c in grouped]
    bands = frequency_bands((list(payload["class_counts"]), list(payload["class_counts"].values())))
    n_classes = {b: sum(1 for v in bands.values() if v == b) for b in BANDS}
    width = 0.8 / max(1, len(configs))
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    for i, name in enumerate(configs):
        runs = grouped[name]
        vals = np.array([[100 * _nan(runs[s]["band_accuracy"].get(b)) for b in BANDS] for s in sorted(runs)])
        pos = np.arange(len(BANDS)) + (i - (len(configs) - 1) / 2) * width
        ax.bar(pos, np.nanmean(vals, axis=0), width * 0.92, label=name, alpha=0.8)
        for row in vals:
            ax.plot(pos, row, "o", ms=2.5, color="black", alpha=0.6)
    ax.set_xticks(np.arange(len(BANDS)))
    ax.set_xticklabels([f"{b} ({n_classes[b]} classes)" for b in BANDS])
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "Band accuracy (bars: seed mean; dots: seeds)")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(payload, out_dir, *, title="Benchmark", order=None, plots=True) -> dict:
    """Write ``summary.json``, ``results.md`` and the two PNG plots to ``out_dir``.

    Parameters
    ----------
    payload : dict
        Benchmark results.
    out_dir : str or path-like
        Target folder (created).
    title : str, default="Benchmark"
        Heading of the markdown file and prefix of the plot titles.
    order : list of str, default=None
        Row and legend order.
    plots : bool, default=True
        Also draw the PNGs (needs matplotlib).

    Returns
    -------
    dict
        Paths written, by kind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise(payload)
    order = [n for n in (order or summary) if n in summary]
    meta = payload.get("meta", {})
    written = {"summary": out_dir / "summary.json", "markdown": out_dir / "results.md"}
    written["summary"].write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    text = [f"# {title}", ""]
    if meta.get("command"):
        text += [f"Command: `{meta['command']}`", ""]
    machine = meta.get("machine", {})
    if machine:
        text += [
            f"Data: {meta.get('source')} ({meta.get('n_train')} training rows, {meta.get('n_eval')} evaluated). "
            f"Machine: {machine.get('platform')}, {machine.get('cpu_count')} CPUs, torch {machine.get('torch')}"
            + (f", GPU {machine['gpu']}" if machine.get("gpu") else "")
            + f"; load average at start {machine.get('load_average')}.",
            "",
        ]
    text.append(markdown_table(summary, order))
    if plots:
        written["per_class"] = out_dir / "per_class_delta.png"
        written["bands"] = out_dir / "band_accuracy.png"
        plot_per_class_delta(payload, written["per_class"], configs=order, title=f"{title}: per-class change")
        plot_band_accuracy(payload, written["bands"], configs=order, title=f"{title}: band accuracy")
        text += ["", f"![per-class]({written['per_class'].name})", "", f"![bands]({written['bands'].name})", ""]
    written["markdown"].write_text("\n".join(text), encoding="utf-8")
    return written
