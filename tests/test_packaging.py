"""pyproject.toml declares what sktail imports, and the installation page agrees with it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
IMPORT_NAMES = {"scikit-learn": "sklearn"}


def _requirements(table_line):
    """Names in the TOML list that starts with ``table_line`` (e.g. ``dependencies = [``)."""
    body = PYPROJECT.split(table_line, 1)[1].split("]", 1)[0]
    return [re.split(r"[<>=\[ ]", item)[0] for item in re.findall(r'"([^"]+)"', body)]


def _sources():
    return "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "sktail").rglob("*.py"))


def test_every_runtime_dependency_is_imported():
    code = _sources()
    for name in _requirements("\ndependencies = ["):
        module = IMPORT_NAMES.get(name, name)
        assert re.search(rf"^\s*(import|from) {module}\b", code, flags=re.MULTILINE), name


def test_no_extra_declares_an_unused_package():
    code = _sources() + "\n".join(
        p.read_text(encoding="utf-8") for folder in ("benchmarks", "tests") for p in (ROOT / folder).rglob("*.py")
    )
    for name in ("accelerate", "sentencepiece", "joblib"):
        if name not in PYPROJECT:
            continue
        assert re.search(rf"^\s*(import|from) {name}\b", code, flags=re.MULTILINE), name


def test_installation_page_matches_pyproject():
    page = (ROOT / "docs" / "installation.md").read_text(encoding="utf-8")
    python = re.search(r'requires-python = ">=(\d+\.\d+)"', PYPROJECT).group(1)
    assert f"Python {python} or newer" in page
    assert "pip install sktail " not in page and "pip install -e ." in page
    listed = page.split("The runtime dependencies are", 1)[1].split(".", 1)[0]
    assert sorted(re.findall(r"[\w-]+", re.sub(r"\band\b", ",", listed))) == sorted(
        _requirements("\ndependencies = [")
    )
