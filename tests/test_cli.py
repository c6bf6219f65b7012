"""The ``sktail`` command line: every subcommand, input formats, exit codes."""

import json
import os
import subprocess
import sys
from urllib.error import URLError

import numpy as np
import pytest

from sktail import _demo, cli
from sktail.cli import UsageError, main, parse_settings
from sktail.datasets import load_tsv, make_long_tail_text

FAST = ["--encoder", "jieba-bag", "--set", "epochs=2", "--set", "validation_fraction=0", "--seed", "0", "-q"]


def _write_tsv(path, texts, labels):
    path.write_text("".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Train/test TSV files and a model fitted on them through ``sktail fit``."""
    root = tmp_path_factory.mktemp("cli")
    train = _write_tsv(root / "train.tsv", *make_long_tail_text((40, 20, 10, 5, 3), noise=0.0, random_state=0))
    test = _write_tsv(root / "test.tsv", *make_long_tail_text((8, 6, 4, 3, 2), noise=0.0, random_state=1))
    model = root / "model.sktail"
    assert main(["fit", str(train), "-o", str(model), *FAST]) == 0
    return {"root": root, "train": train, "test": test, "model": model}


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- help and entry points ----------------------------------------------------------
@pytest.mark.parametrize("command", [[], ["fit"], ["predict"], ["evaluate"], ["info"], ["demo"], ["cache"]])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: sktail {' '.join(command)}".strip() in capsys.readouterr().out


def test_top_level_help_says_model_files_are_pickle_free(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "pickle-free" in out and "never executes code" in out
    assert "Model files are pickles" not in out


def test_verbose_help_is_truthful_about_fit(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "fit shows its bars and per-epoch lines by default" in out


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "sktail", "info", "no-such-model.sktail"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "model file 'no-such-model.sktail' not found" in result.stderr


def test_missing_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "required" in capsys.readouterr().err


# -- fit --------------------------------------------------------------------------
def test_fit_writes_a_silent_fitted_model(files):
    clf = cli._load_model(files["model"])
    assert clf.n_iter_ == 2 and clf.verbose == 0
    assert len(clf.classes_) == 5 and clf.class_counts_.sum() == 78


def test_fit_with_validation_file_and_encoder_options(files, capsys):
    model = files["root"] / "validated.sktail"
    code, _, err = _run(
        capsys, "fit", files["train"], "-o", model, "--validation", files["test"],
        "--encoder", "jieba-bag", "--set", "epochs=2", "--set", "encoder_options.embedding_dim=16", "--seed", "0",
    )
    assert code == 0
    assert f"saved {model}" in err
    clf = cli._load_model(model)
    assert clf.encoder_options == {"embedding_dim": 16}
    assert all("val_accuracy" in h for h in clf.history_)


def test_fit_verbose_prints_epoch_lines_and_progress(files, capsys):
    model = files["root"] / "verbose.sktail"
    code, out, err = _run(capsys, "fit", files["train"], "-o", model, "--encoder", "jieba-bag",
                          "--set", "epochs=2", "--set", "validation_fraction=0", "--seed", "0")
    assert code == 0
    assert "epoch 1: train_loss=" in err and "epoch 2: train_loss=" in err  # messages on stderr (docs/cli.md)
    assert "epoch " not in out
    assert "batches" in err  # tqdm bars go to stderr


def test_fit_has_a_printed_default_seed(files, capsys):
    args = ["--encoder", "jieba-bag", "--set", "epochs=1", "--set", "validation_fraction=0"]
    models = [files["root"] / f"seeded{i}.sktail" for i in range(2)]
    for model in models:
        code, _, err = _run(capsys, "fit", files["train"], "-o", model, *args)
        assert code == 0 and "seed 0 (--seed to change)" in err
    first, second = (cli._load_model(m) for m in models)
    assert first.random_state == 0
    texts, _ = load_tsv(files["test"])
    np.testing.assert_array_equal(first.predict_proba(texts), second.predict_proba(texts))
    code, _, err = _run(capsys, "fit", files["train"], "-o", models[0], *args, "--seed", "7")
    assert code == 0 and "seed 7 (--seed to change)" in err
    assert cli._load_model(models[0]).random_state == 7
    code, _, err = _run(capsys, "fit", files["train"], "-o", models[0], *args, "--set", "random_state=5")
    assert code == 0 and cli._load_model(models[0]).random_state == 5


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "foo=1"], "unknown parameter 'foo'"),
        (["--set", "epochs"], "--set expects KEY=VALUE"),
        (["--set", "epochs=-1"], "'epochs' parameter"),
        (["--set", "encoder_options.size=3"], "encoder_options ['size'] are not valid"),
    ],
)
def test_fit_bad_settings_exit_2(files, capsys, extra, message):
    code, _, err = _run(capsys, "fit", files["train"], "-o", files["root"] / "bad.sktail", *extra)
    assert code == 2
    assert "sktail fit: error:" in err and message in err


def test_set_typo_suggests_the_close_parameter(files, capsys):
    code, _, err = _run(capsys, "fit", files["train"], "-o", files["root"] / "bad.sktail", "--set", "epoch=2")
    assert code == 2 and "unknown parameter 'epoch'" in err and "did you mean 'epochs'?" in err
    with pytest.raises(UsageError) as info:
        parse_settings(["zzzz=1"], {"epochs", "tail_gate"})
    assert "did you mean" not in str(info.value)


def test_fit_missing_or_malformed_training_file_exit_2(files, capsys):
    code, _, err = _run(capsys, "fit", files["root"] / "nope.tsv", "-o", files["root"] / "m.sktail")
    assert code == 2 and "training file" in err and "nope.tsv' not found" in err
    bad = files["root"] / "bad.tsv"
    bad.write_text("一行没有标签\n", encoding="utf-8")
    code, _, err = _run(capsys, "fit", bad, "-o", files["root"] / "m.sktail")
    assert code == 2 and "line 1 has no tab" in err
    one = _write_tsv(files["root"] / "one.tsv", ["小麦施肥", "水稻种植"], ["农学", "农学"])
    code, _, err = _run(capsys, "fit", one, "-o", files["root"] / "m.sktail")
    assert code == 2 and "at least 2 classes" in err
    code, _, err = _run(capsys, "fit", files["train"], "-o", files["root"] / "no" / "dir" / "m.sktail")
    assert code == 2 and "does not exist" in err


# -- predict ------------------------------------------------------------------------
def test_predict_formats_keep_input_order(files, capsys):
    texts, _ = load_tsv(files["test"])
    texts = texts[::-1]  # not the training order, not sorted
    root = files["root"]
    (root / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    (root / "in.tsv").write_text("".join(f"{t}\tid{i}\n" for i, t in enumerate(texts)), encoding="utf-8")
    (root / "in.jsonl").write_text(
        "".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts)),
        encoding="utf-8",
    )
    expected = cli._load_model(files["model"]).predict(texts).tolist()
    for name in ("in.txt", "in.tsv", "in.jsonl"):
        code, out, _ = _run(capsys, "predict", files["model"], root / name)
        assert code == 0
        rows = [line.split("\t") for line in out.splitlines()]
        assert [r[0] for r in rows] == texts
        assert [r[1] for r in rows] == expected


def test_predict_proba_to_file(files, capsys):
    texts, _ = load_tsv(files["test"])
    clf = cli._load_model(files["model"])
    out_path = files["root"] / "pred.tsv"
    code, out, err = _run(capsys, "predict", files["model"], files["test"], "--proba", "-o", out_path)
    assert code == 0 and out == "" and f"wrote {len(texts)} predictions" in err
    lines = out_path.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["text", "label", *clf.classes_.tolist()]
    proba = np.array([[float(v) for v in line.split("\t")[2:]] for line in lines[1:]])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(proba, clf.predict_proba(texts), atol=1e-6)
    assert [line.split("\t")[1] for line in lines[1:]] == clf.predict(texts).tolist()


def test_predict_from_stdin(files, capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("水稻种植技术\n\n量子拓扑研究\n"))
    code, out, _ = _run(capsys, "predict", files["model"], "-")
    assert code == 0
    assert [line.split("\t")[0] for line in out.splitlines()] == ["水稻种植技术", "量子拓扑研究"]


def test_predict_bad_inputs_exit_2(files, capsys):
    code, _, err = _run(capsys, "predict", files["root"] / "missing.sktail", files["test"])
    assert code == 2 and "model file" in err and "not found" in err
    code, _, err = _run(capsys, "predict", files["model"], files["root"] / "missing.txt")
    assert code == 2 and "input file" in err
    code, _, err = _run(capsys, "predict", files["test"], files["test"])
    assert code == 2 and "not a usable sktail model file" in err
    empty = files["root"] / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    code, _, err = _run(capsys, "predict", files["model"], empty)
    assert code == 2 and "has no texts" in err
    bad = files["root"] / "bad.jsonl"
    bad.write_text('{"title": "x"}\n', encoding="utf-8")
    code, _, err = _run(capsys, "predict", files["model"], bad)
    assert code == 2 and "line 1" in err


# -- evaluate and info ------------------------------------------------------------------
def test_evaluate_prints_metrics_and_writes_report(files, capsys):
    texts, labels = load_tsv(files["test"])
    clf = cli._load_model(files["model"])
    accuracy = float(np.mean(clf.predict(texts) == np.array(labels)))
    report_dir = files["root"] / "report"
    code, out, _ = _run(capsys, "evaluate", files["model"], files["test"], "--report", report_dir)
    assert code == 0
    assert f"accuracy           {100 * accuracy:.2f}" in out
    for band in ("tail", "mid", "head"):
        assert f"{band} accuracy" in out
    names = sorted(p.name for p in report_dir.iterdir())
    assert names == ["confusion_matrix.png", "metrics.json", "per_class_accuracy.png", "report.md"]
    assert (report_dir / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "## Frequency bands" in markdown and "![Confusion matrix](confusion_matrix.png)" in markdown
    assert json.loads((report_dir / "metrics.json").read_text(encoding="utf-8"))["accuracy"] == accuracy


def test_evaluate_report_says_when_plots_fall_back_to_indices(files, capsys, monkeypatch):
    from sktail import report as report_module

    monkeypatch.setattr(report_module, "_tick_font", lambda: None)
    code, _, err = _run(capsys, "evaluate", files["model"], files["test"], "--report", files["root"] / "nofont")
    assert code == 0
    assert err.count("note: No font with Chinese glyphs") == 1 and "fonts-noto-cjk" in err
    assert "UserWarning" not in err


def test_evaluate_json_and_missing_test_file(files, capsys):
    code, out, _ = _run(capsys, "evaluate", files["model"], files["test"], "--json")
    assert code == 0
    report = json.loads(out)
    assert set(report["band_accuracy"]) == {"tail", "mid", "head"}
    assert report["n_samples"] == 23
    code, _, err = _run(capsys, "evaluate", files["model"], files["root"] / "none.tsv")
    assert code == 2 and "test file" in err


def test_evaluate_names_unseen_labels_without_sklearn_warning(files, capsys, recwarn):
    texts, labels = load_tsv(files["test"])
    labels = ["外星学"] * 3 + ["火星学"] + labels[4:]
    other = _write_tsv(files["root"] / "other_labels.tsv", texts, labels)
    code, out, err = _run(capsys, "evaluate", files["model"], other)
    assert code == 0
    assert not [w for w in recwarn if "y_pred contains classes" in str(w.message)]
    assert "UserWarning" not in err
    assert "4 of 23 test rows have a label the model never saw in training" in err
    assert "外星学 (3 rows), 火星学 (1 row)" in err
    assert "unseen labels" in out


def test_info_text_and_json(files, capsys):
    code, out, _ = _run(capsys, "info", files["model"])
    assert code == 0
    assert "jieba-bag" in out and "tail gate on" in out and "epochs=2" in out
    code, out, _ = _run(capsys, "info", files["model"], "--json")
    summary = json.loads(out)
    assert summary["n_classes"] == 5 and summary["tail_gate_on"] is True
    assert sum(c["train_count"] for c in summary["classes"]) == 78
    assert {c["label"] for c in summary["classes"] if c["tail"]} == {
        c["label"] for c in summary["classes"] if c["offset"] < 0
    }


def test_info_and_evaluate_name_prior_tail_set_and_frequency_bands(files, capsys):
    code, out, _ = _run(capsys, "info", files["model"])
    assert code == 0
    assert "label\ttrain count\tprior tail set\tfrequency band\toffset" in out
    assert "after the validation hold-out" in out
    clf = cli._load_model(files["model"])
    n_tail = len(clf.tail_classes_)
    assert f"prior tail set   {n_tail} of 5 classes" in out
    summary = json.loads(_run(capsys, "info", files["model"], "--json")[1])
    assert {c["frequency_band"] for c in summary["classes"]} == {"tail", "mid", "head"}
    assert sum(c["tail"] for c in summary["classes"]) == n_tail
    code, out, _ = _run(capsys, "evaluate", files["model"], files["test"])
    assert "frequency bands: thirds of the classes by training count" in out
    report_dir = files["root"] / "bands-report"
    _run(capsys, "evaluate", files["model"], files["test"], "--report", report_dir)
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "| frequency band | prior tail set |" in markdown and "not the prior tail set" in markdown


# -- demo -----------------------------------------------------------------------------
@pytest.fixture
def small_demo_corpus(monkeypatch):
    from sklearn.utils import Bunch

    texts, labels = make_long_tail_text((40, 20, 10, 6, 4), noise=0.0, random_state=2)
    corpus = Bunch(
        train=Bunch(data=texts[:60], target=labels[:60]), test=Bunch(data=texts[60:], target=labels[60:]),
        target_names=sorted(set(labels)),
    )
    monkeypatch.setattr(_demo, "load_demo_corpus", lambda: corpus)
    return corpus


DEMO_FAST = ["--set", "epochs=2", "--set", "validation_fraction=0", "-q"]


def test_demo_without_csl_uses_builtin_corpus(small_demo_corpus, tmp_path, capsys):
    code, out, _ = _run(capsys, "demo", "--data-home", tmp_path, "--no-download", *DEMO_FAST)
    assert code == 0
    assert out.startswith("data: built-in generated demo corpus")
    assert "download_if_missing=False" in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("model"))
    for column in ("accuracy", "bal. acc", "tail acc", "mid acc", "head acc"):
        assert column in header
    assert any(line.startswith("label smoothing (baseline)") for line in lines)
    assert any(line.startswith("AutoTail-BSFGM") for line in lines)
    assert "exact McNemar test" in out


def test_demo_download_failure_falls_back(small_demo_corpus, tmp_path, monkeypatch):
    calls = []

    def offline(url, timeout):
        calls.append(timeout)
        raise URLError("no network")

    monkeypatch.setattr(_demo, "_urlopen_bytes", offline)
    data = _demo.load_demo_data(tmp_path, download=True)
    assert calls == [_demo.DOWNLOAD_TIMEOUT]
    assert data.source.startswith("built-in generated demo corpus") and "no network" in data.source
    assert data.train_texts == small_demo_corpus.train.data
    assert not (tmp_path / "csl-title" / "train.tsv").exists()


def test_demo_uses_cached_csl_files(tmp_path, capsys):
    folder = tmp_path / "csl-title"
    folder.mkdir()
    texts, labels = make_long_tail_text((30, 15, 8, 5, 3), noise=0.0, random_state=3)
    _write_tsv(folder / "train.tsv", texts[:45], labels[:45])
    _write_tsv(folder / "dev.tsv", texts[45:], labels[45:])
    code, out, _ = _run(capsys, "demo", "--data-home", tmp_path, "--no-download", *DEMO_FAST)
    assert code == 0
    assert out.startswith("data: CSL title -> category (45 train / 16 dev titles")


def test_demo_is_offline_and_quiet_by_default(small_demo_corpus, tmp_path, monkeypatch, capsys):
    def no_network(url, timeout):
        raise AssertionError(f"the demo tried to download {url}")

    monkeypatch.setattr(_demo, "_urlopen_bytes", no_network)
    monkeypatch.setenv("SKTAIL_DATA", str(tmp_path))
    code, out, err = _run(capsys, "demo", *DEMO_FAST)
    assert code == 0
    assert out.startswith("data: built-in generated demo corpus")
    assert "--download" in out and "--data DIR" in out and "urlopen" not in out + err
    lines = out.splitlines()
    assert any(line.startswith("TF-IDF + LinearSVC (balanced)") for line in lines)
    assert _demo.BANDS_LINE in lines
    assert "exact McNemar test, baseline vs AutoTail-BSFGM" in out


def test_demo_download_failure_gives_a_hint(small_demo_corpus, tmp_path, monkeypatch):
    def offline(url, timeout):
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(_demo, "_urlopen_bytes", offline)
    data = _demo.load_demo_data(tmp_path, download=True)
    assert "no network?" in data.source and "--data DIR" in data.source


def test_demo_reads_a_local_folder(tmp_path, capsys):
    texts, labels = make_long_tail_text((30, 15, 8, 5, 3), noise=0.0, random_state=4)
    _write_tsv(tmp_path / "train.tsv", texts[:45], labels[:45])
    _write_tsv(tmp_path / "dev.tsv", texts[45:], labels[45:])
    code, out, _ = _run(capsys, "demo", "--data", tmp_path, *DEMO_FAST)
    assert code == 0
    assert out.startswith(f"data: {tmp_path} (45 train.tsv / 16 dev.tsv rows, 5 classes)")
    assert "TF-IDF + LinearSVC (balanced)" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run(capsys, "demo", "--data", empty, *DEMO_FAST)
    assert code == 2 and "expected train.tsv and dev.tsv" in err


# -- cache ----------------------------------------------------------------------------
def test_cache_shows_location_sizes_and_clears(tmp_path, monkeypatch, capsys):
    home = tmp_path / "sktail-home"
    monkeypatch.setenv("SKTAIL_HOME", str(home))
    code, out, _ = _run(capsys, "cache")
    assert code == 0 and str(home) in out and "(empty)" in out
    (home / "e5-small-hf").mkdir()
    (home / "e5-small-hf" / "model.safetensors").write_bytes(b"x" * 3000)
    (home / "e5-small-hf" / "config.json").write_bytes(b"{}")
    (home / "note.txt").write_bytes(b"abc")
    code, out, _ = _run(capsys, "cache")
    assert code == 0
    assert "2.9 KiB  e5-small-hf" in out and "3 B  note.txt" in out and "SKTAIL_HOME" in out
    summary = json.loads(_run(capsys, "cache", "--json")[1])
    assert summary["location"] == str(home.resolve()) and summary["total_bytes"] == 3005
    assert {e["name"]: e["bytes"] for e in summary["entries"]} == {"e5-small-hf": 3002, "note.txt": 3}
    code, out, _ = _run(capsys, "cache", "--clear")
    assert code == 0 and "freed 2.9 KiB" in out
    assert home.is_dir() and not any(home.iterdir())


def test_cache_follows_xdg_cache_home(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SKTAIL_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    summary = json.loads(_run(capsys, "cache", "--json")[1])
    assert summary["location"] == str((tmp_path / "xdg" / "sktail").resolve())


# -- settings parser -------------------------------------------------------------------
def test_parse_settings_values():
    valid = {"epochs", "tail_gate", "learning_rate", "max_length", "encoder_options", "device"}
    params = parse_settings(
        ["epochs=3", "tail_gate=false", "learning_rate=1e-3", "max_length=auto", "device=cpu",
         "encoder_options={\"min_count\": 2}", "encoder_options.embedding_dim=8"],
        valid,
    )
    assert params == {
        "epochs": 3, "tail_gate": False, "learning_rate": 1e-3, "max_length": "auto", "device": "cpu",
        "encoder_options": {"min_count": 2, "embedding_dim": 8},
    }
    assert parse_settings(["tail_gate=True"], valid) == {"tail_gate": True}
    with pytest.raises(UsageError, match="unknown parameter 'epoch'"):
        parse_settings(["epoch=3"], valid)


# -- input and output checks -------------------------------------------------------------
def _three_columns(path, texts, labels, *, header=None):
    rows = [header] if header else []
    rows += [f"{t}\t{y}\tsource-{i % 3}" for i, (t, y) in enumerate(zip(texts, labels))]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_fit_refuses_a_third_column_unless_columns_are_named(files, capsys):
    texts, labels = load_tsv(files["train"])
    wide = _three_columns(files["root"] / "wide.tsv", texts, labels)
    model = files["root"] / "wide.sktail"
    code, _, err = _run(capsys, "fit", wide, "-o", model, *FAST)
    assert code == 2 and not model.exists()
    assert f"{wide}: line 1 has 3 tab-separated columns" in err and "--columns TEXT,LABEL" in err
    code, _, err = _run(capsys, "fit", wide, "-o", model, "--columns", "0,1", *FAST)
    assert code == 0, err
    assert sorted(cli._load_model(model).classes_) == sorted(set(labels))
    code, _, err = _run(capsys, "evaluate", model, wide, "--columns", "0,1", "--json")
    assert code == 0 and json.loads(_)["n_samples"] == len(texts)


def test_fit_reads_named_columns_of_a_file_with_a_header(files, capsys):
    texts, labels = load_tsv(files["train"])
    wide = _three_columns(files["root"] / "named.tsv", texts, labels, header="title\tfield\tsource")
    model = files["root"] / "named.sktail"
    code, _, err = _run(capsys, "fit", wide, "-o", model, "--header", "--columns", "title,field", *FAST)
    assert code == 0, err
    assert sorted(cli._load_model(model).classes_) == sorted(set(labels))
    for extra, message in [
        (["--columns", "title,field"], "need --header"),
        (["--header", "--columns", "title,label"], "the header has no column 'label'; it has ['title', 'field', 'source']"),
        (["--columns", "0,5"], "line 1 has 3 columns; --columns reads columns 0 and 5"),
        (["--columns", "0"], "--columns expects TEXT,LABEL"),
        (["--header"], "the header has 3 columns"),
    ]:
        code, _, err = _run(capsys, "fit", wide, "-o", model, *extra, *FAST)
        assert code == 2 and message in err, (extra, err)


@pytest.mark.parametrize("label", ["农\r学", "农\u2028学", "农\x0b学"])
def test_fit_refuses_labels_with_line_breaks(files, capsys, label):
    bad = files["root"] / "breaks.tsv"
    bad.write_text(f"小麦施肥\t理学\n水稻种植\t{label}\n", encoding="utf-8")
    code, _, err = _run(capsys, "fit", bad, "-o", files["root"] / "breaks.sktail", *FAST)
    assert code == 2 and f"{bad}: line 2 has the label" in err and "a tab or a line break" in err


def test_predict_never_writes_a_broken_row(tmp_path, capsys):
    from sktail import AutoTailClassifier

    texts, labels = make_long_tail_text((12, 8), noise=0.0, random_state=0)
    odd = {name: bad for name, bad in zip(sorted(set(labels)), ["第一\t类", "第二\n类"])}
    clf = AutoTailClassifier(encoder="jieba-bag", epochs=1, validation_fraction=None, random_state=0)
    model = clf.fit(texts, [odd[y] for y in labels]).save(tmp_path / "odd.sktail")
    inputs = tmp_path / "in.txt"
    inputs.write_text("\n".join(texts[:2]) + "\n", encoding="utf-8")
    code, out, _ = _run(capsys, "predict", model, inputs)
    assert code == 0
    rows = out.split("\n")[:-1]
    assert len(rows) == 2 and all(len(row.split("\t")) == 2 for row in rows)
    assert {row.split("\t")[1] for row in rows} <= {"第一\\t类", "第二\\n类"}
    code, out, _ = _run(capsys, "predict", model, inputs, "--proba")
    rows = out.split("\n")[:-1]
    assert len(rows) == 3 and all(len(row.split("\t")) == 4 for row in rows)
    assert rows[0].split("\t")[2:] == ["第一\\t类", "第二\\n类"]


def _forbid(monkeypatch, target, name):
    def fail(*args, **kwargs):
        raise AssertionError(f"{name} ran before the output path was checked")

    monkeypatch.setattr(target, name, fail)


def test_fit_checks_the_output_path_before_training(files, capsys, monkeypatch):
    from sktail import AutoTailClassifier

    _forbid(monkeypatch, AutoTailClassifier, "fit")
    folder = files["root"] / "a-folder"
    folder.mkdir(exist_ok=True)
    fifo = files["root"] / "a-fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    for target, message in [(folder, "is a directory"), (fifo, "not a regular file"),
                            (files["root"] / "no" / "m.sktail", "does not exist")]:
        code, _, err = _run(capsys, "fit", files["train"], "-o", target, *FAST)
        assert code == 2 and f"cannot write the model to '{target}'" in err and message in err


def test_predict_checks_the_output_path_before_scoring(files, capsys, monkeypatch):
    _forbid(monkeypatch, cli, "_load_model")
    folder = files["root"] / "out-folder"
    folder.mkdir(exist_ok=True)
    for target, message in [(folder, "is a directory"), (files["root"] / "no" / "p.tsv", "does not exist")]:
        code, _, err = _run(capsys, "predict", files["model"], files["test"], "-o", target)
        assert code == 2 and f"cannot write the predictions to '{target}'" in err and message in err


def test_an_unusable_encoder_folder_exits_2(files, capsys, tmp_path):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}", encoding="utf-8")
    for encoder, message in [(tmp_path / "missing", "no such folder"), (empty, "has no config.json"),
                             (files["train"], "not a folder"), (broken, "encoder")]:
        code, _, err = _run(capsys, "fit", files["train"], "-o", tmp_path / "m.sktail", "--encoder", encoder, *FAST[2:])
        assert code == 2 and message in err, (encoder, err)


def test_stdin_is_decoded_like_a_file(files, capsys, monkeypatch):
    import io

    raw = "水稻种植技术\n".encode() + "量子拓扑研究\n".encode("gbk")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
    code, _, err = _run(capsys, "predict", files["model"], "-")
    assert code == 2 and "<stdin>: line 2 is not valid UTF-8" in err and "at byte 19" in err
    path = files["root"] / "gbk.txt"
    path.write_bytes(raw)
    code, _, file_err = _run(capsys, "predict", files["model"], path)
    assert code == 2 and file_err.replace(str(path), "<stdin>") == err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("\ufeff水稻\r\n".encode()), encoding="utf-8"))
    code, out, _ = _run(capsys, "predict", files["model"], "-")
    assert code == 0 and out.split("\t")[0] == "水稻"


def test_a_joblib_file_is_named_as_such(files, capsys, tmp_path):
    import joblib

    path = tmp_path / "model.joblib"
    joblib.dump(cli._load_model(files["model"]), path)
    code, _, err = _run(capsys, "predict", path, files["test"])
    assert code == 2 and "this looks like a pickle/joblib file. Load it with joblib.load" in err


def test_fit_refuses_a_header_row_without_header_or_no_header(files, capsys):
    with_header = files["root"] / "with_header.tsv"
    with_header.write_text("text\tlabel\n" + files["train"].read_text(encoding="utf-8"), encoding="utf-8")
    model = files["root"] / "header.sktail"
    code, _, err = _run(capsys, "fit", with_header, "-o", model, *FAST)
    assert code == 2 and not model.exists()
    assert "line 1 looks like a header row" in err and "--header" in err and "--no-header" in err
    code, _, _ = _run(capsys, "fit", with_header, "-o", model, "--header", *FAST)
    assert code == 0 and "label" not in set(cli._load_model(model).classes_)
