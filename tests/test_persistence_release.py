"""Model files written by the 0.1.0 release still load and predict the same.

``tests/data/release-0.1.0-*.sktail`` were written by the 0.1.0 release code (before
the encoder registry and the training-loop redesign), with the probabilities it
predicted for the first 20 texts of the corpus below.
"""

from pathlib import Path

import numpy as np
import pytest

from sktail import load
from sktail.datasets import make_long_tail_text

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["jieba-bag", "tiny-bert"])
def test_release_model_files_load_and_predict_the_same(name):
    texts, _ = make_long_tail_text((30, 15, 8, 5), noise=0.1, random_state=0)
    clf = load(DATA / f"release-0.1.0-{name}.sktail")
    expected = np.load(DATA / f"release-0.1.0-{name}.proba.npy")
    np.testing.assert_allclose(clf.predict_proba(texts[:20]), expected, rtol=1e-6, atol=1e-7)
