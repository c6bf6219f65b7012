"""The exact McNemar test on paired predictions (docs/method.md section 8), re-exported by :mod:`sktail.metrics`."""

import math
from typing import NamedTuple

import numpy as np

from ._label_checks import check_paired

__all__ = ["McNemarResult", "mcnemar_exact"]


class McNemarResult(NamedTuple):
    """Result of :func:`mcnemar_exact`.

    Attributes
    ----------
    b : int
        Rows that model A gets right and model B gets wrong.
    c : int
        Rows that model A gets wrong and model B gets right.
    statistic : int
        ``min(b, c)``.
    pvalue : float
        Exact two-sided p-value.

    See Also
    --------
    mcnemar_exact : The test that returns it.

    Examples
    --------
    >>> from sktail.metrics import McNemarResult
    >>> McNemarResult(b=6, c=1, statistic=1, pvalue=0.125).pvalue
    0.125
    """

    b: int
    c: int
    statistic: int
    pvalue: float


def _binom_half_cdf(k, n):
    """``P(X <= k)`` for ``X ~ Binomial(n, 1/2)`` and ``k <= n / 2``.

    The largest term ``C(n, k) / 2**n`` is computed in log space; the smaller
    terms below it follow as products of the ratios
    ``pmf(i - 1) / pmf(i) = i / (n - i + 1)``, which are at most 1 here, so
    nothing overflows for any `n`.
    """
    log_top = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2)
    i = np.arange(k, 0, -1, dtype=float)
    relative_terms = np.cumprod(i / (n - i + 1))
    return math.exp(log_top + math.log1p(relative_terms.sum()))


def mcnemar_exact(y_true, pred_a, pred_b):
    """Exact two-sided McNemar test on paired predictions of two models.

    Only discordant rows matter: ``b`` rows where A is right and B wrong,
    ``c`` rows where A is wrong and B right. Under the null hypothesis that
    both models are equally accurate, ``b ~ Binomial(b + c, 1/2)``, and

    ``pvalue = min(1, 2 * P(X <= min(b, c)))``,  ``X ~ Binomial(b + c, 1/2)``.

    With no discordant row the p-value is 1. The binomial sum is computed in
    log space with term ratios, without scipy, in time linear in
    ``min(b, c)``; its relative error stays near 1e-9 even for two million
    discordant rows.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    pred_a : array-like of shape (n_samples,)
        Predictions of model A (for example the baseline).
    pred_b : array-like of shape (n_samples,)
        Predictions of model B on the same rows, in the same order.

    Returns
    -------
    McNemarResult
        Named tuple ``(b, c, statistic, pvalue)``; swapping A and B swaps
        ``b`` and ``c`` and leaves ``statistic`` and ``pvalue`` unchanged.

    Notes
    -----
    To pool several seeds (docs/method.md section 8), concatenate the runs: repeat
    `y_true` once per seed and concatenate each model's predictions in the
    same seed order, so that row ``i`` of `pred_a` and `pred_b` comes from the
    same seed and example.

    Examples
    --------
    >>> from sktail.metrics import mcnemar_exact
    >>> y = ["文学"] * 7 + ["哲学"]
    >>> a = ["文学"] + ["哲学"] * 6 + ["哲学"]
    >>> b = ["哲学"] + ["文学"] * 6 + ["哲学"]
    >>> res = mcnemar_exact(y, a, b)
    >>> res.b, res.c, res.statistic, round(res.pvalue, 6)
    (1, 6, 1, 0.125)
    """
    y_true, pred_a, pred_b = check_paired(y_true=y_true, pred_a=pred_a, pred_b=pred_b)
    right_a = pred_a == y_true
    right_b = pred_b == y_true
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    k = min(b, c)
    pvalue = min(1.0, 2.0 * _binom_half_cdf(k, b + c))
    return McNemarResult(b=b, c=c, statistic=k, pvalue=pvalue)
