"""The scripts in examples/ run to completion on their small data."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def test_examples_are_found():
    assert {p.name for p in EXAMPLES} >= {"plot_quickstart.py", "plot_baseline_vs_autotail.py", "grid_search.py"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert out.strip()
    if path.name == "plot_quickstart.py":
        assert (tmp_path / "quickstart_report" / "report.md").exists()
        assert (tmp_path / "quickstart_report" / "per_class_accuracy.png").exists()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_estimators_are_seeded(path):
    import ast

    calls = [
        node
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "AutoTailClassifier"
    ]
    assert calls
    for call in calls:
        assert "random_state" in {kw.arg for kw in call.keywords}, f"line {call.lineno}"
