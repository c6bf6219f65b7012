"""The README quotes measured numbers only through blocks generated from the results pages."""

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = runpy.run_path(str(ROOT / "docs" / "headline.py"))


def test_generated_blocks_match_the_results_pages(capsys):
    code = HEADLINE["main"](["--check"])
    assert code == 0, capsys.readouterr().err + "\nRun: python docs/headline.py"


@pytest.mark.parametrize("name", ["README.md", "docs/encoders.md"])
def test_a_changed_result_changes_the_block(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    numbers = HEADLINE["numbers"]()
    assert HEADLINE["render"](text, numbers) == text
    numbers["bag.title.full.acc"] = "99.99"
    assert "99.99" in HEADLINE["render"](text, numbers)


def test_headline_quotes_the_current_results():
    numbers = HEADLINE["numbers"]()
    block = HEADLINE["headline"](numbers)
    for key in ("bag.title.dbal", "bag.title.full.acc", "bag.title.baseline.acc", "bag.title.p",
                "e5long.full.acc", "none.p", "bag.abstract.full.acc", "bag.abstract.p"):
        assert numbers[key] in block, key


def test_no_hand_typed_results_outside_the_generated_blocks():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    outside = re.sub(r"<!-- generated: \w+ -->.*?<!-- end generated -->", "", text, flags=re.DOTALL)
    decimals = set(re.findall(r"(?<![\w.])[+-]?\d+(?:\.\d+)+%?", outside))
    assert decimals <= {"2.13.0", "0.3"}, "results belong in docs/headline.py's blocks"


def test_missing_section_is_reported(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A\n\n| config | accuracy |\n|---|---|\n| full | 75.82 ± 0.77 |\n", encoding="utf-8")
    pages = {}
    assert HEADLINE["cell"](pages, page, "A", "accuracy", config="full") == "75.82"
    with pytest.raises(LookupError, match="no section 'B'"):
        HEADLINE["cell"](pages, page, "B", "accuracy", config="full")
