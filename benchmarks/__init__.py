"""Benchmarks of sktail on ``text<TAB>label`` splits (not part of the installed package).

* :mod:`benchmarks.runner` runs configurations over seeds and records every score;
* :mod:`benchmarks.report` summarises the records into tables and plots;
* :mod:`benchmarks.csl` is the command line (``python -m benchmarks.csl --help``).
"""
