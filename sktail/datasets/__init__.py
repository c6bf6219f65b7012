"""Datasets: a synthetic long-tailed Chinese corpus, text-file loaders and the CSL fetcher.

The public functions are

- :func:`make_long_tail_text`, a generator of short Chinese title-like texts whose
  class sizes follow any long-tailed profile (used by the tests and examples);
- :func:`load_demo_corpus`, a fixed generated train/test corpus for ``sktail demo``;
- :func:`load_tsv` and :func:`load_texts`, readers for ``text<TAB>label`` training
  files and for prediction inputs;
- :func:`fetch_csl`, a scikit-learn-style ``fetch_*`` loader for the CSL
  benchmark classification tasks.

Data licence
------------
CSL (Li et al., "CSL: A Large-scale Chinese Scientific Literature Dataset",
COLING 2022) is released for non-commercial research use only and may not be
redistributed. sktail never bundles any CSL file: :func:`fetch_csl` reads the
files from a local data directory, or downloads the public benchmark files from
their upstream repository into that directory on the user's own machine.
"""

from ._csl import (  # noqa: F401  (private names kept reachable for tests and tools)
    _CSL_COMMIT,
    _CSL_DESCR,
    _CSL_REMOTE,
    _CSL_REPOSITORY,
    _urlopen_bytes,
    fetch_csl,
    get_data_home,
)
from ._files import load_texts, load_tsv
from ._synthetic import load_demo_corpus, make_long_tail_text

__all__ = [
    "make_long_tail_text",
    "load_demo_corpus",
    "load_tsv",
    "load_texts",
    "fetch_csl",
    "get_data_home",
]
