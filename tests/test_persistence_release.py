"""Model files written by the 0.1.0 release still load and predict the same.

``tests/data/release-0.1.0-*.sktail`` were written by the 0.1.0 release code (before
the encoder registry and the training-loop redesign), with the probabilities it
predicted for the first 20 texts of the corpus below.

The 0.1.0 release predicted in fp32 on the CPU, so the files are compared on the fp32
path: ``precision="auto"`` now predicts in bf16 on CPUs with native bf16 instructions
(``sktail.devices.resolve_inference_precision``), which moves these probabilities by
about 1e-3 and says nothing about the model file. In fp32 they are not bit-identical
across machines either: the kernels torch picks for the CPU (vector width, GEMM
blocking) sum in different orders. Measured differences from the stored values: 0
(up to 3e-17) for jieba-bag, up to 7e-8 absolute (2.6e-7 relative) for tiny-bert with
``ATEN_CPU_CAPABILITY`` set to default, avx2 or avx512, with 1 or 2 threads. The
tolerance, rtol=1e-6 with atol=1e-7 (a few fp32 rounding steps of probabilities of
about 0.1 to 0.4), allows that and no more: adding 1e-3 to a single weight of the head
already moves them by 1e-5 (jieba-bag) and 5e-4 (tiny-bert).
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
    clf = load(DATA / f"release-0.1.0-{name}.sktail").set_params(precision="fp32")
    expected = np.load(DATA / f"release-0.1.0-{name}.proba.npy")
    np.testing.assert_allclose(clf.predict_proba(texts[:20]), expected, rtol=1e-6, atol=1e-7)
