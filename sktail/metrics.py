"""Evaluation metrics for long-tailed classification (docs/method.md section 8).

Overall scores (accuracy, macro-F1, balanced accuracy) come from scikit-learn.
This module adds what the evaluation protocol needs on top of them: accuracy
inside frequency bands of the training counts, per-class accuracy, the exact
McNemar test on paired predictions, and a JSON-ready report.

A *frequency band* here (tail, mid, head: thirds of the classes sorted by
training count) is an evaluation view. It is not the *prior tail set* of
docs/method.md section 3 (``clf.tail_classes_``, the classes at or below the median
count, which get the tail-prior offset in training): on the CSL title split the
prior tail set has 7 classes and the tail band 5. Pass the counts the model was
trained on (``clf.class_counts_``, counted after its validation hold-out).

Labels are any values that NumPy holds in a 1-D array and that sort against
each other (integers, strings, Chinese strings), as in scikit-learn.
"""

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    recall_score,
)

__all__ = [
    "McNemarResult",
    "balanced_accuracy",
    "band_accuracy",
    "evaluation_report",
    "frequency_bands",
    "macro_f1",
    "mcnemar_exact",
    "per_class_accuracy",
]


# --------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------


def _as_1d(values, name):
    """Return `values` as a non-empty 1-D array, or raise."""
    if isinstance(values, str):
        raise TypeError(f"{name} must be an array-like of labels, not a single string.")
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{name} is empty.")
    return array


def _check_paired(**arrays):
    """Validate several label arrays of equal length; return them as a tuple."""
    checked = {name: _as_1d(values, name) for name, values in arrays.items()}
    lengths = {name: len(array) for name, array in checked.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"Inputs must have the same length, got {lengths}.")
    return tuple(checked.values())


def _split_counts(class_counts):
    """Return `(labels, counts)` from a mapping or a `(labels, counts)` pair."""
    if isinstance(class_counts, Mapping):
        return list(class_counts.keys()), list(class_counts.values())
    if not isinstance(class_counts, (tuple, list)) or len(class_counts) != 2:
        raise TypeError(
            "class_counts must be a mapping label -> count or a pair (labels, counts), "
            f"got {type(class_counts).__name__}."
        )
    return class_counts


def _check_counts(class_counts):
    """Validate `class_counts`; return labels (list) and counts (float array)."""
    labels, counts = _split_counts(class_counts)
    labels = _as_1d(labels, "class_counts labels").tolist()
    counts = _as_1d(counts, "class_counts counts")
    if len(labels) != len(counts):
        raise ValueError(f"class_counts has {len(labels)} labels but {len(counts)} counts.")
    if len(set(labels)) != len(labels):
        raise ValueError("class_counts labels must be unique.")
    if counts.dtype.kind not in "iuf":
        raise TypeError(f"class_counts counts must be numbers, got dtype {counts.dtype}.")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("class_counts counts must be finite and non-negative.")
    return labels, counts.astype(float)


# --------------------------------------------------------------------------
# overall scores: thin wrappers over scikit-learn
# --------------------------------------------------------------------------


def macro_f1(y_true, y_pred):
    """Macro-averaged F1 score.

    Thin wrapper over :func:`sklearn.metrics.f1_score` with
    ``average="macro"`` and ``zero_division=0.0``: the unweighted mean of the
    per-class F1 over every label found in `y_true` or `y_pred`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.

    Returns
    -------
    float
        Macro-F1 in [0, 1].

    See Also
    --------
    sklearn.metrics.f1_score : The wrapped function.

    Examples
    --------
    >>> from sktail.metrics import macro_f1
    >>> macro_f1(["文学", "文学", "哲学"], ["文学", "哲学", "哲学"])
    0.6666666666666666
    """
    y_true, y_pred = _check_paired(y_true=y_true, y_pred=y_pred)
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0.0))


def balanced_accuracy(y_true, y_pred):
    """Balanced accuracy: the mean of per-class recall.

    Thin wrapper over :func:`sklearn.metrics.balanced_accuracy_score`. Each
    class present in `y_true` counts equally, however many rows it has.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.

    Returns
    -------
    float
        Balanced accuracy in [0, 1].

    See Also
    --------
    sklearn.metrics.balanced_accuracy_score : The wrapped function.
    per_class_accuracy : The per-class recalls it averages.

    Examples
    --------
    >>> from sktail.metrics import balanced_accuracy
    >>> balanced_accuracy(["文学", "文学", "哲学"], ["文学", "哲学", "哲学"])
    0.75
    """
    y_true, y_pred = _check_paired(y_true=y_true, y_pred=y_pred)
    return float(balanced_accuracy_score(y_true, y_pred))


def per_class_accuracy(y_true, y_pred, labels=None):
    """Accuracy on the rows of each true class (that is, per-class recall).

    Computed with :func:`sklearn.metrics.recall_score` (``average=None``).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    labels : array-like of shape (n_labels,), default=None
        Labels to report, in this order. ``None`` means the sorted unique
        labels of `y_true`. A label with no row in `y_true` gets ``nan``.

    Returns
    -------
    dict
        Label -> fraction of that label's rows predicted correctly.

    See Also
    --------
    balanced_accuracy : The mean of these values over the classes in `y_true`.

    Examples
    --------
    >>> from sktail.metrics import per_class_accuracy
    >>> per_class_accuracy(["文学", "文学", "哲学"], ["文学", "哲学", "哲学"])
    {'哲学': 1.0, '文学': 0.5}
    """
    y_true, y_pred = _check_paired(y_true=y_true, y_pred=y_pred)
    labels = np.unique(y_true) if labels is None else _as_1d(labels, "labels")
    recalls = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=np.nan)
    return dict(zip(labels.tolist(), recalls.tolist()))


# --------------------------------------------------------------------------
# frequency bands
# --------------------------------------------------------------------------


def _band_names(n_bands):
    """``tail``, then ``mid`` (or ``mid1``, ``mid2``, ...), then ``head``."""
    if n_bands == 3:
        middle = ["mid"]
    else:
        middle = [f"mid{i}" for i in range(1, n_bands - 1)]
    return ["tail", *middle, "head"]


def frequency_bands(class_counts, n_bands=3):
    """Assign each class to a frequency band of its training count.

    Classes are sorted by training count, ascending, with ties broken by label
    order (the sorted order of the labels). The sorted list is cut into
    `n_bands` contiguous groups of equal class count, as
    :func:`numpy.array_split` cuts it: when the number of classes ``K`` is not
    a multiple of `n_bands`, the first ``K % n_bands`` bands, starting from the
    tail, get one class more. Thirteen classes in three bands give 5 tail, 4
    mid and 4 head classes. The tail band is not the prior tail set
    (``clf.tail_classes_``, the median rule of docs/method.md section 3), which on
    those thirteen CSL classes holds 7.

    Parameters
    ----------
    class_counts : mapping or tuple of (array-like, array-like)
        Training count of each class: a mapping label -> count, or a pair
        ``(labels, counts)`` such as ``(clf.classes_, counts)``. Counts must
        be finite and non-negative; labels unique and mutually orderable.
    n_bands : int, default=3
        Number of bands, from 2 to the number of classes.

    Returns
    -------
    dict
        Label -> band name, ordered from the rarest class to the most
        frequent. With three bands the names are ``"tail"``, ``"mid"`` and
        ``"head"``; with ``n`` bands they are ``"tail"``, ``"mid1"``, ...,
        ``"mid{n-2}"``, ``"head"``.

    See Also
    --------
    band_accuracy : Accuracy inside each band.

    Examples
    --------
    >>> from sktail.metrics import frequency_bands
    >>> frequency_bands({"工学": 3536, "文学": 184, "哲学": 164, "法学": 443})
    {'哲学': 'tail', '文学': 'tail', '法学': 'mid', '工学': 'head'}
    """
    labels, counts = _check_counts(class_counts)
    if isinstance(n_bands, bool) or not isinstance(n_bands, (int, np.integer)):
        raise TypeError(f"n_bands must be an integer, got {type(n_bands).__name__}.")
    if not 2 <= n_bands <= len(labels):
        raise ValueError(
            f"n_bands must be between 2 and the number of classes ({len(labels)}), got {n_bands}."
        )
    try:
        order = sorted(range(len(labels)), key=labels.__getitem__)
    except TypeError as exc:
        raise TypeError("class_counts labels must be mutually orderable.") from exc
    order.sort(key=counts.__getitem__)  # stable: equal counts keep label order
    groups = np.array_split(np.array(order), n_bands)
    return {labels[i]: name for name, group in zip(_band_names(n_bands), groups) for i in group}


def band_accuracy(y_true, y_pred, class_counts, n_bands=3):
    """Accuracy inside each frequency band of the training counts.

    A row belongs to the band of its *true* label (see
    :func:`frequency_bands`). The accuracy of a band is the fraction of its
    rows that are predicted correctly; a band without rows gets ``nan``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels; each must be a label of `class_counts`.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    class_counts : mapping or tuple of (array-like, array-like)
        Training count of each class, as in :func:`frequency_bands`.
    n_bands : int, default=3
        Number of bands.

    Returns
    -------
    dict
        Band name -> accuracy, from ``"tail"`` to ``"head"``.

    Raises
    ------
    ValueError
        If a label of `y_true` is missing from `class_counts`.

    See Also
    --------
    frequency_bands : How classes are assigned to bands.

    Examples
    --------
    >>> from sktail.metrics import band_accuracy
    >>> counts = {"哲学": 164, "法学": 443, "工学": 3536}
    >>> band_accuracy(["哲学", "哲学", "工学"], ["哲学", "工学", "工学"], counts)
    {'tail': 0.5, 'mid': nan, 'head': 1.0}
    """
    y_true, y_pred = _check_paired(y_true=y_true, y_pred=y_pred)
    bands = frequency_bands(class_counts, n_bands)
    unknown = set(y_true.tolist()) - bands.keys()
    if unknown:
        raise ValueError(f"Labels of y_true missing from class_counts: {sorted(unknown, key=str)}.")
    row_band = np.array([bands[label] for label in y_true.tolist()])
    correct = y_true == y_pred
    return {
        name: float(correct[row_band == name].mean()) if np.any(row_band == name) else math.nan
        for name in _band_names(n_bands)
    }


# --------------------------------------------------------------------------
# exact McNemar test
# --------------------------------------------------------------------------


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
    y_true, pred_a, pred_b = _check_paired(y_true=y_true, pred_a=pred_a, pred_b=pred_b)
    right_a = pred_a == y_true
    right_b = pred_b == y_true
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    k = min(b, c)
    pvalue = min(1.0, 2.0 * _binom_half_cdf(k, b + c))
    return McNemarResult(b=b, c=c, statistic=k, pvalue=pvalue)


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def evaluation_report(y_true, y_pred, class_counts=None):
    """All section-8 scores of one set of predictions, ready for JSON.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    class_counts : mapping or tuple of (array-like, array-like), default=None
        Training count of each class, as in :func:`frequency_bands`. When
        given, the report adds accuracy in the tail, mid and head bands.

    Returns
    -------
    dict
        ``n_samples`` (int), ``accuracy``, ``macro_f1`` and
        ``balanced_accuracy`` (floats), and with `class_counts` a
        ``band_accuracy`` dict band -> float. An empty band reports ``None``
        rather than ``nan``, so that :func:`json.dumps` writes valid JSON.

    See Also
    --------
    band_accuracy : Accuracy inside each frequency band.
    macro_f1 : Unweighted mean of the per-class F1 scores.
    balanced_accuracy : Mean per-class recall.

    Examples
    --------
    >>> from sktail.metrics import evaluation_report
    >>> report = evaluation_report(["文学", "文学", "哲学"], ["文学", "哲学", "哲学"])
    >>> report["n_samples"], report["accuracy"], report["balanced_accuracy"]
    (3, 0.6666666666666666, 0.75)
    """
    y_true, y_pred = _check_paired(y_true=y_true, y_pred=y_pred)
    report = {
        "n_samples": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": macro_f1(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred),
    }
    if class_counts is not None:
        bands = band_accuracy(y_true, y_pred, class_counts)
        report["band_accuracy"] = {
            name: None if math.isnan(value) else value for name, value in bands.items()
        }
    return report
