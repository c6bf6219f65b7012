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

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    recall_score,
)

from ._label_checks import as_1d, check_counts, check_paired
from ._mcnemar import McNemarResult, mcnemar_exact

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
    y_true, y_pred = check_paired(y_true=y_true, y_pred=y_pred)
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
    y_true, y_pred = check_paired(y_true=y_true, y_pred=y_pred)
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
    y_true, y_pred = check_paired(y_true=y_true, y_pred=y_pred)
    labels = np.unique(y_true) if labels is None else as_1d(labels, "labels")
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
    labels, counts = check_counts(class_counts)
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
    y_true, y_pred = check_paired(y_true=y_true, y_pred=y_pred)
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
    y_true, y_pred = check_paired(y_true=y_true, y_pred=y_pred)
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
