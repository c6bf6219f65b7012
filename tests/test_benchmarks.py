"""End-to-end run of the benchmark harness on a synthetic split."""

from __future__ import annotations

import json

import pytest

from sktail.datasets import make_long_tail_text

pytest.importorskip("matplotlib")

from benchmarks import csl  # noqa: E402
from benchmarks.report import summarise  # noqa: E402
from benchmarks.runner import load_split, merge_results, resolve_data_dir  # noqa: E402


def _write_tsv(path, texts, labels):
    path.write_text("".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)), encoding="utf-8")


@pytest.fixture
def split_dir(tmp_path):
    counts = (60, 30, 15, 8, 5)
    texts, labels = make_long_tail_text(counts, noise=0.05, random_state=0)
    _write_tsv(tmp_path / "train.tsv", texts, labels)
    texts, labels = make_long_tail_text((10,) * len(counts), noise=0.05, random_state=1)
    _write_tsv(tmp_path / "dev.tsv", texts, labels)
    return tmp_path


def test_harness_end_to_end(split_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SKTAIL_DATA", str(split_dir))
    out = tmp_path / "out"
    argv = ["--out", str(out), "--seeds", "3", "--configs", "tfidf-svc", "baseline",
            "--params", '{"epochs": 3}', "--encoder-options", '{"embedding_dim": 16}']
    csl.main(argv)

    payload = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [(r["config"], r["seed"]) for r in payload["runs"]] == [("tfidf-svc", 3), ("baseline", 3)]
    assert payload["meta"]["n_train"] == 118 and payload["meta"]["n_eval"] == 50
    run = payload["runs"][1]
    assert 0.0 <= run["accuracy"] <= 1.0 and run["fit_seconds"] > 0 and run["predict_texts_per_s"] > 0
    assert set(run["band_accuracy"]) == {"tail", "mid", "head"}
    assert len(run["predictions"]) == 50
    assert payload["configs"]["baseline"]["encoder_options"] == {"embedding_dim": 16}

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["tfidf-svc"]["mcnemar"]["seeds"] == [3]
    markdown = (out / "results.md").read_text(encoding="utf-8")
    assert "| tfidf-svc | 1 |" in markdown and "| baseline | 1 |" in markdown
    linear = summary["baseline"]["mcnemar_vs_linear"]
    assert linear["seeds"] == [3] and summary["tfidf-svc"]["mcnemar_vs_linear"] is None
    assert f"| baseline | {linear['b']} / {linear['c']} |" in markdown.split("against `tfidf-svc`")[1]
    for name in ("per_class_delta.png", "band_accuracy.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A second call resumes: nothing is rerun, the records are unchanged.
    csl.main(argv)
    again = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert again["runs"] == payload["runs"]

    # The report alone can be rebuilt from results.json.
    (out / "results.md").unlink()
    csl.main(["--out", str(out), "--report-only", "--no-plots"])
    assert "| baseline | 1 |" in (out / "results.md").read_text(encoding="utf-8")


def test_parallel_sweeps_are_merged_before_the_report(split_dir, tmp_path):
    common = [str(split_dir), "--configs", "tfidf-svc", "--no-plots"]
    csl.main([*common, "--seeds", "1", "--out", str(tmp_path / "a")])
    csl.main([*common, "--seeds", "2", "--out", str(tmp_path / "b")])
    pooled = tmp_path / "pooled"
    csl.main(["--merge", str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "a"),
              "--out", str(pooled), "--no-plots"])
    payload = json.loads((pooled / "results.json").read_text(encoding="utf-8"))
    assert [(r["config"], r["seed"]) for r in payload["runs"]] == [("tfidf-svc", 1), ("tfidf-svc", 2)]
    assert len(payload["meta"]["merged_from"]) == 3
    assert "| tfidf-svc | 2 |" in (pooled / "results.md").read_text(encoding="utf-8")

    other = json.loads((tmp_path / "b" / "results.json").read_text(encoding="utf-8"))
    other["eval_labels"] = other["eval_labels"][::-1]
    (tmp_path / "b" / "results.json").write_text(json.dumps(other), encoding="utf-8")
    with pytest.raises(ValueError, match="another split"):
        merge_results([tmp_path / "a", tmp_path / "b"], tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_summary_deltas_and_mcnemar_are_paired(split_dir):
    split = load_split(split_dir)
    labels = split.eval_labels
    wrong = [labels[-1]] + labels[:-1]
    runs = [
        {"config": "baseline", "seed": 0, "predictions": wrong, "accuracy": 0.1, "macro_f1": 0.1,
         "balanced_accuracy": 0.1, "band_accuracy": {"tail": 0.1, "mid": 0.1, "head": 0.1},
         "fit_seconds": 1.0, "predict_texts_per_s": 10.0},
        {"config": "full", "seed": 0, "predictions": labels, "accuracy": 1.0, "macro_f1": 1.0,
         "balanced_accuracy": 1.0, "band_accuracy": {"tail": 1.0, "mid": 1.0, "head": 1.0},
         "fit_seconds": 2.0, "predict_texts_per_s": 5.0},
    ]
    payload = {"runs": runs, "eval_labels": labels, "class_counts": split.class_counts}
    summary = summarise(payload)
    n_wrong = sum(a != b for a, b in zip(labels, wrong))
    assert summary["full"]["mcnemar"]["b"] == 0 and summary["full"]["mcnemar"]["c"] == n_wrong
    assert summary["full"]["delta"]["balanced_accuracy"]["mean"] == pytest.approx(0.9)
    assert summary["baseline"]["mcnemar"] is None


def test_data_dir_comes_from_argument_or_environment(split_dir, monkeypatch):
    monkeypatch.delenv("SKTAIL_DATA", raising=False)
    with pytest.raises(ValueError, match="SKTAIL_DATA"):
        resolve_data_dir(None)
    assert resolve_data_dir(split_dir) == split_dir
    monkeypatch.setenv("SKTAIL_DATA", str(split_dir))
    assert resolve_data_dir(None) == split_dir


def test_epoch_selection_rules_read_the_holdout_and_never_dev():
    from benchmarks.epoch_selection import summarise as rules_of

    # hold-out scores [acc, bal, loss]; dev scores differ so that a rule reading dev would show
    epochs = [{"val": [50, 40, 1.0], "dev": [60, 50, 0]}, {"val": [70, 30, 0.5], "dev": [61, 51, 0]},
              {"val": [70, 45, 0.7], "dev": [62, 52, 0]}]
    run = {"seed": 0, "holdout": epochs, "every_row": {"last": [63, 53, 0], "mean of last 2": [64, 54, 0]}}
    summary = rules_of([run, run])
    assert summary["hold-out, best accuracy"]["epochs"] == [2, 2]  # the first of two equal bests
    assert summary["hold-out, best balanced accuracy"]["bal"] == [52, 52]
    assert summary["hold-out, lowest loss"]["acc"] == [61, 61]
    assert summary["hold-out, last epoch"]["epochs"] == [3, 3]
    assert summary["every row, mean of last 2"]["bal"] == [54, 54]
