"""Evaluation reports: scores, bands, per-class table, plots and markdown."""

import doctest
import json

import numpy as np
import pytest

from sktail import report as report_module
from sktail.report import build_report, format_report, report_markdown, write_report

CLASSES = ["哲学", "文学", "法学", "工学"]
COUNTS = [5, 20, 10, 40]


def test_docstring_examples():
    result = doctest.testmod(report_module)
    assert result.attempted > 0 and result.failed == 0


def test_build_report_orders_classes_and_bands():
    y_true = ["工学", "工学", "文学", "法学", "哲学", "哲学"]
    y_pred = ["工学", "文学", "文学", "法学", "工学", "哲学"]
    report = build_report(y_true, y_pred, CLASSES, COUNTS)
    assert [row["label"] for row in report["classes"]] == ["工学", "文学", "法学", "哲学"]
    assert [row["band"] for row in report["classes"]] == ["head", "mid", "tail", "tail"]
    assert report["band_accuracy"] == {"tail": 2 / 3, "mid": 1.0, "head": 0.5}
    philosophy = report["classes"][-1]
    assert philosophy["support"] == 2 and philosophy["recall"] == 0.5 and philosophy["precision"] == 1.0
    matrix = np.array(report["confusion_matrix"]["matrix"])
    assert matrix.sum() == 6 and np.trace(matrix) == 4
    assert report["confusion_matrix"]["labels"] == ["工学", "文学", "法学", "哲学"]
    json.dumps(report)  # JSON-ready


def test_unseen_labels_count_as_errors_and_skip_bands():
    report = build_report(["工学", "新学科", "法学"], ["工学", "工学", "法学"], CLASSES, COUNTS)
    assert report["unseen_labels"] == ["新学科"]
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["band_accuracy"]["head"] == 1.0 and report["band_accuracy"]["tail"] == 1.0
    assert report["confusion_matrix"]["labels"][-1] == "新学科"
    assert "unseen labels      新学科 (1 row)" in format_report(report)
    assert report["unseen_rows"] == {"新学科": 1}
    assert "Labels not seen in training" in report_markdown(report)


def test_unseen_labels_message_and_no_raw_sklearn_warning(recwarn):
    # 法学 is predicted but has no test row: scikit-learn would warn here.
    report = build_report(["工学", "新学科", "新学科"], ["工学", "法学", "工学"], CLASSES, COUNTS)
    assert not [w for w in recwarn if "y_pred contains classes" in str(w.message)]
    message = report_module.unseen_labels_message(report)
    assert message.startswith("2 of 3 test rows have a label the model never saw in training: 新学科 (2 rows).")
    assert report_module.unseen_labels_message(build_report(["工学"], ["工学"], CLASSES, COUNTS)) is None


def test_prior_tail_set_is_a_separate_column():
    report = build_report(["工学", "哲学"], ["工学", "哲学"], CLASSES, COUNTS, tail_classes=["哲学", "法学"])
    assert {r["label"]: r["prior_tail"] for r in report["classes"]} == {
        "工学": False, "文学": False, "法学": True, "哲学": True,
    }
    markdown = report_markdown(report)
    assert "| # | label | train count | frequency band | prior tail set | test rows |" in markdown
    assert "| 2 | 法学 | 10 | tail | yes | 0 |" in markdown
    assert "prior_tail" not in build_report(["工学"], ["工学"], CLASSES, COUNTS)["classes"][0]


def test_two_classes_have_no_bands():
    report = build_report(["a", "b", "b"], ["a", "b", "a"], ["a", "b"], [10, 3])
    assert "band_accuracy" not in report
    assert "Frequency bands" not in report_markdown(report)
    assert "tail accuracy" not in format_report(report)


def test_class_without_test_rows_has_no_recall():
    report = build_report(["工学", "文学"], ["工学", "文学"], CLASSES, COUNTS)
    missing = next(row for row in report["classes"] if row["label"] == "哲学")
    assert missing["support"] == 0 and missing["recall"] is None
    assert "| 3 | 哲学 | 5 | tail | 0 | 0.00 | n/a | 0.00 |" in report_markdown(report)


def test_write_report_with_and_without_plots(tmp_path):
    report = build_report(["工学", "文学", "哲学"], ["工学", "工学", "哲学"], CLASSES, COUNTS)
    files = write_report(report, tmp_path / "plain", plots=False, details={"model": "m.joblib"})
    assert sorted(f.name for f in files) == ["metrics.json", "report.md"]
    text = (tmp_path / "plain" / "report.md").read_text(encoding="utf-8")
    assert "- **model**: m.joblib" in text and ".png" not in text
    files = write_report(report, tmp_path / "plots")
    for name in ("confusion_matrix.png", "per_class_accuracy.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:4] == b"\x89PNG"
        assert f"]({name})" in (tmp_path / "plots" / "report.md").read_text(encoding="utf-8")


def test_missing_cjk_font_warns_with_an_install_hint(monkeypatch):
    monkeypatch.setattr(report_module, "_tick_font", lambda: None)
    with pytest.warns(UserWarning, match="No font with Chinese glyphs") as record:
        assert report_module._tick_labels(["工学"]) == (["0"], None)
    assert "apt-get install fonts-noto-cjk" in str(record[0].message)
    assert "pip install mplfonts" in str(record[0].message)


def test_unregistered_cjk_font_file_is_found_and_registered(monkeypatch, tmp_path):
    import shutil

    from matplotlib import font_manager

    dejavu = font_manager.findfont("DejaVu Sans", fallback_to_default=True)
    fake = tmp_path / "NotoSansCJKsc-Regular.ttf"  # a CJK-looking file name
    shutil.copy(dejavu, fake)
    added = []
    monkeypatch.setattr(report_module, "_font_files", lambda: [str(tmp_path / "Other.ttf"), str(fake)])
    monkeypatch.setattr(font_manager.fontManager, "addfont", added.append)
    assert report_module._find_cjk_font() == "DejaVu Sans"
    assert added == [str(fake)]
    monkeypatch.setattr(report_module, "_font_files", lambda: [str(tmp_path / "Other.ttf")])
    assert report_module._find_cjk_font() is None


def test_tick_font_search_runs_once(monkeypatch):
    monkeypatch.setattr(report_module, "_FONT_SEARCH", {})
    calls = []
    monkeypatch.setattr(report_module, "_CJK_FONTS", ())
    monkeypatch.setattr(report_module, "_find_cjk_font", lambda: calls.append(1) or None)
    assert report_module._tick_font() is None and report_module._tick_font() is None
    assert calls == [1]


def test_tick_labels_fall_back_to_indices_without_cjk_font(monkeypatch):
    monkeypatch.setattr(report_module, "_tick_font", lambda: None)
    assert report_module._tick_labels(["工学", "文学"]) == (["0", "1"], None)
    assert report_module._tick_labels(["law", "art"]) == (["law", "art"], None)
    monkeypatch.setattr(report_module, "_tick_font", lambda: "Noto Sans CJK SC")
    assert report_module._tick_labels(["工学"]) == (["工学"], "Noto Sans CJK SC")
