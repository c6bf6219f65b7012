"""The documentation builds without warnings and covers the public API and every parameter."""

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_docs_build_with_warnings_as_errors(tmp_path):
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    api = (out / "api.html").read_text(encoding="utf-8")
    assert "sktail.AutoTailClassifier" in api and "fetch_csl" in api and "build_report" in api
    assert "tail_gate" in (out / "parameters.html").read_text(encoding="utf-8")
    results = (out / "benchmarks.html").read_text(encoding="utf-8")
    assert "<!-- results -->" not in results


def test_parameters_page_lists_every_parameter():
    from sktail import AutoTailClassifier

    page = (DOCS / "parameters.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(\w+)` \|", page, flags=re.MULTILINE))
    assert documented == set(AutoTailClassifier().get_params())


@pytest.mark.parametrize("module", ["datasets", "metrics", "report", "objective", "adversarial"])
def test_api_page_lists_every_public_name(module):
    import importlib

    names = importlib.import_module(f"sktail.{module}").__all__
    page = (DOCS / "api.rst").read_text(encoding="utf-8")
    missing = [name for name in names if f"sktail.{module}.{name}\n" not in page]
    assert not missing


@pytest.fixture
def conf():
    return runpy.run_path(str(DOCS / "conf.py"))


class _App:
    class env:  # noqa: N801 - mimics sphinx.application.Sphinx.env
        dependencies = []

        @classmethod
        def note_dependency(cls, path):
            cls.dependencies.append(path)


def test_results_page_includes_results_file_when_present(conf, tmp_path):
    source = ["# Results\n\n<!-- results -->\n"]
    conf["_insert_results"].__globals__["RESULTS"] = tmp_path / "results.md"
    conf["_insert_results"](_App, "benchmarks", source)
    assert source[0].startswith("# Results\n\nResults are pending") and "{include}" not in source[0]
    (tmp_path / "results.md").write_text("# Measured\n", encoding="utf-8")
    source = ["# Results\n\n<!-- results -->\n"]
    conf["_insert_results"](_App, "benchmarks", source)
    assert "```{include} results.md" in source[0]
    assert _App.env.dependencies == [str(tmp_path / "results.md")]
    other = ["<!-- results -->"]
    conf["_insert_results"](_App, "index", other)
    assert other == ["<!-- results -->"]


def _number(value):
    """How the docs write a default: 128, 2e-5, 0.4, True."""
    if isinstance(value, float) and 0 < value < 0.05:
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return str(value)


@pytest.mark.parametrize("name", ["max_length", "batch_size", "learning_rate"])
def test_documented_auto_values_are_the_encoders_defaults(name):
    from sktail import AutoTailClassifier
    from sktail.encoders import BagEncoder, HFEncoder, HybridEncoder

    page = (DOCS / "parameters.md").read_text(encoding="utf-8")
    row = re.search(rf"^\| `{name}` \|.*$", page, flags=re.MULTILINE).group(0)
    assert f"{_number(HFEncoder.defaults[name])} for transformers" in row
    assert f"{_number(BagEncoder.defaults[name])} for `jieba-bag`" in row
    assert f"{_number(HybridEncoder.defaults[name])} for `tfidf-e5`" in row
    docstring = " ".join(AutoTailClassifier.__doc__.split())
    entry = docstring[docstring.index(f"{name} : ") :][:200]
    assert f"{_number(HFEncoder.defaults[name])} for transformers" in entry
    assert f'{_number(BagEncoder.defaults[name])} for ``"jieba-bag"``' in entry
    assert f'{_number(HybridEncoder.defaults[name])} for ``"tfidf-e5"``' in entry


def test_documented_epochs_are_the_encoders_defaults():
    from sktail.encoders import BagEncoder, HFEncoder, HybridEncoder

    page = (DOCS / "parameters.md").read_text(encoding="utf-8")
    row = re.search(r"^\| `epochs` \|.*$", page, flags=re.MULTILINE).group(0)
    assert f"{HFEncoder.defaults['epochs']} for transformers" in row
    assert f"{BagEncoder.defaults['epochs']} for `jieba-bag`" in row
    assert f"{HybridEncoder.defaults['epochs']} for `tfidf-e5`" in row
    assert (f"at least {HybridEncoder.min_training_steps} (`tfidf-e5`) or {BagEncoder.min_training_steps} "
            "(`jieba-bag`) optimizer steps") in row


def test_documented_encoder_options_are_the_constructor_defaults():
    import inspect

    from sktail import AutoTailClassifier
    from sktail.encoders import BagEncoder

    page = (DOCS / "parameters.md").read_text(encoding="utf-8")
    row = re.search(r"^\| `encoder_options` \|.*$", page, flags=re.MULTILINE).group(0)
    docstring = " ".join(AutoTailClassifier.__doc__.split())
    entry = docstring[docstring.index("encoder_options : ") :][:600]
    for option, parameter in inspect.signature(BagEncoder).parameters.items():
        assert f"`{option}` ({_number(parameter.default)})" in row, option
        assert f"``{option}`` ({_number(parameter.default)})" in entry, option


def _python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)


def _calls(code, name):
    """The argument text of every ``name(...)`` call in ``code`` (balanced parentheses)."""
    for match in re.finditer(re.escape(name) + r"\(", code):
        depth, start = 1, match.end()
        for i in range(start, len(code)):
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            if depth == 0:
                yield code[start:i]
                break


@pytest.mark.parametrize(
    "path", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name
)
def test_every_python_example_sets_random_state(path):
    """Copied examples are reproducible: each estimator built in a code block is seeded."""
    unseeded = [
        args
        for block in _python_blocks(path)
        for args in _calls(block, "AutoTailClassifier")
        if "random_state" not in args
    ]
    assert not unseeded, f"{path.name}: AutoTailClassifier({unseeded[0]}) has no random_state="


def test_results_pointer_is_readable_raw_and_replaced_in_the_build(conf, tmp_path):
    raw = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    pointer = raw.split("<!-- results -->", 1)[1].split("<!-- /results -->", 1)[0]
    assert "[`results.md`](results.md)" in pointer  # a raw reader gets a link, not a blank section
    (tmp_path / "results.md").write_text("# Measured\n", encoding="utf-8")
    conf["_insert_results"].__globals__["RESULTS"] = tmp_path / "results.md"
    source = [raw]
    conf["_insert_results"](_App, "benchmarks", source)
    assert "```{include} results.md" in source[0] and "(results.md)" not in source[0]
    assert "<!-- /results -->" not in source[0]


def test_pages_say_what_the_default_does():
    """No page calls the default encoder's settings the paper's (issue 27)."""
    for name in ("parameters.md", "quickstart.md"):
        page = (DOCS / name).read_text(encoding="utf-8")
        assert "Defaults equal the paper's" not in page and "with the paper's defaults" not in page, name
        assert "frozen" in page and "TF-IDF" in page and "one linear head" in page, name
    row = re.search(r"^\| `feature_cache` \|.*$", (DOCS / "parameters.md").read_text(encoding="utf-8"),
                    flags=re.MULTILINE).group(0)
    assert "`tfidf-e5`" in row and "`predict`" in row


def test_documented_memo_and_notice_sizes_are_the_code_s():
    from sktail import AutoTailClassifier, _scoring, inference

    memo, notice = f"{_scoring.MEMO_ROWS:,}", f"{inference.NOTICE_TEXTS:,}"
    docstring = " ".join(AutoTailClassifier.__doc__.split())
    assert memo in docstring and notice in docstring
    params = (DOCS / "parameters.md").read_text(encoding="utf-8")
    assert memo in params and notice in params
    assert memo in (DOCS / "encoders.md").read_text(encoding="utf-8")


def test_pages_cite_only_files_of_the_repository_and_no_machine_paths():
    pages = ["encoders.md", "parameters.md", "quickstart.md", "cli.md", "installation.md"]
    for path in [ROOT / "README.md", *(DOCS / name for name in pages)]:
        text = path.read_text(encoding="utf-8")
        assert "METHOD.md" not in text, path.name
        assert not re.search(r"/(work|home|mnt)/\w", text), path.name


def test_benchmarks_import_public_names_only():
    for path in [ROOT / "benchmarks" / "e5_throughput.py", ROOT / "benchmarks" / "scoring_reuse.py"]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import) sktail(\.\w+)*\._", text, flags=re.MULTILINE), path.name
