import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest
from sklearn.metrics import balanced_accuracy_score, f1_score

from sktail.metrics import (
    McNemarResult,
    balanced_accuracy,
    band_accuracy,
    evaluation_report,
    frequency_bands,
    macro_f1,
    mcnemar_exact,
    per_class_accuracy,
)

# METHOD.md section 2: CSL title training counts, 13 classes. The seven smallest
# are METHOD.md's tail set; which name goes with which count is illustrative.
CSL_COUNTS = {
    "工学": 3536,
    "理学": 807,
    "医学": 747,
    "农学": 728,
    "管理学": 497,
    "法学": 443,
    "教育学": 319,
    "经济学": 283,
    "文学": 184,
    "哲学": 164,
    "历史学": 124,
    "艺术学": 101,
    "军事学": 67,
}

Y_TRUE = ["文学", "文学", "文学", "哲学", "哲学", "法学"]
Y_PRED = ["文学", "文学", "哲学", "哲学", "法学", "法学"]


def paired(b, c, both_right=0, both_wrong=0):
    """Labels and two prediction vectors with the given discordant counts."""
    right_a = [True] * b + [False] * c + [True] * both_right + [False] * both_wrong
    right_b = [False] * b + [True] * c + [True] * both_right + [False] * both_wrong
    y_true = np.zeros(len(right_a), dtype=int)
    return y_true, np.where(right_a, 0, 1), np.where(right_b, 0, 1)


# ---------------------------------------------------------------- overall scores


def test_macro_f1_hand_computed():
    # F1: 文学 2*1*(2/3)/(5/3) = 0.8, 哲学 0.5, 法学 2/3
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx(f1_score(Y_TRUE, Y_PRED, average="macro"))


def test_balanced_accuracy_hand_computed():
    # recalls: 文学 2/3, 哲学 1/2, 法学 1
    assert balanced_accuracy(Y_TRUE, Y_PRED) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert balanced_accuracy(Y_TRUE, Y_PRED) == pytest.approx(
        balanced_accuracy_score(Y_TRUE, Y_PRED)
    )


def test_per_class_accuracy_hand_computed():
    result = per_class_accuracy(Y_TRUE, Y_PRED)
    assert list(result) == sorted(set(Y_TRUE))
    assert result == pytest.approx({"文学": 2 / 3, "哲学": 0.5, "法学": 1.0})


def test_per_class_accuracy_labels_order_and_absent_label():
    result = per_class_accuracy(Y_TRUE, Y_PRED, labels=["法学", "工学", "文学"])
    assert list(result) == ["法学", "工学", "文学"]
    assert result["法学"] == 1.0
    assert math.isnan(result["工学"])
    assert result["文学"] == pytest.approx(2 / 3)


# ---------------------------------------------------------------- frequency bands


def test_frequency_bands_csl_title_counts():
    bands = frequency_bands(CSL_COUNTS)
    by_band = {
        name: sorted(CSL_COUNTS[k] for k, v in bands.items() if v == name)
        for name in ("tail", "mid", "head")
    }
    # 13 = 5 + 4 + 4: the remainder class goes to the tail (np.array_split order)
    assert by_band == {
        "tail": [67, 101, 124, 164, 184],
        "mid": [283, 319, 443, 497],
        "head": [728, 747, 807, 3536],
    }
    assert list(bands) == sorted(CSL_COUNTS, key=CSL_COUNTS.get)


def test_frequency_bands_remainder_goes_to_first_bands():
    counts = {label: count for count, label in enumerate("abcdefghij")}
    sizes = [
        list(frequency_bands(counts, 4).values()).count(n) for n in ("tail", "mid1", "mid2", "head")
    ]
    assert sizes == [3, 3, 2, 2]


def test_frequency_bands_ties_broken_by_label_order():
    bands = frequency_bands({"b": 5, "c": 1, "a": 5})
    assert bands == {"c": "tail", "a": "mid", "b": "head"}
    assert list(bands) == ["c", "a", "b"]


def test_frequency_bands_accepts_pair_of_arrays():
    labels = np.array(list(CSL_COUNTS))
    counts = np.array(list(CSL_COUNTS.values()))
    assert frequency_bands((labels, counts)) == frequency_bands(CSL_COUNTS)
    assert frequency_bands([list(CSL_COUNTS), list(CSL_COUNTS.values())]) == frequency_bands(
        CSL_COUNTS
    )


@pytest.mark.parametrize(
    ("n_bands", "names"),
    [
        (2, ["tail", "head"]),
        (3, ["tail", "mid", "head"]),
        (5, ["tail", "mid1", "mid2", "mid3", "head"]),
    ],
)
def test_frequency_bands_names(n_bands, names):
    assert list(dict.fromkeys(frequency_bands(CSL_COUNTS, n_bands).values())) == names


# NumPy string arrays drop trailing NUL characters, so labels avoid them.
counts_strategy = st.dictionaries(
    st.text(alphabet="工理医农法文史哲艺军学ab", min_size=1, max_size=3),
    st.integers(0, 50),
    min_size=2,
    max_size=30,
)


@given(counts=counts_strategy, data=st.data())
def test_frequency_bands_properties(counts, data):
    n_bands = data.draw(st.integers(2, len(counts)))
    bands = frequency_bands(counts, n_bands)
    names = list(dict.fromkeys(bands.values()))
    assert len(names) == n_bands
    sizes = [list(bands.values()).count(name) for name in names]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)
    # every class in a band is at most as frequent as every class in the next one
    for lower, upper in zip(names, names[1:]):
        assert max(counts[k] for k in bands if bands[k] == lower) <= min(
            counts[k] for k in bands if bands[k] == upper
        )
    shuffled = dict(data.draw(st.permutations(list(counts.items()))))
    assert frequency_bands(shuffled, n_bands) == bands


# ---------------------------------------------------------------- band accuracy


def test_band_accuracy_hand_computed():
    # bands: tail {军事学, 艺术学, 历史学, 哲学, 文学}, mid {.. 法学 ..}, head {.. 工学 ..}
    y_true = ["军事学", "军事学", "哲学", "法学", "工学", "工学", "工学"]
    y_pred = ["军事学", "工学", "工学", "法学", "工学", "工学", "理学"]
    result = band_accuracy(y_true, y_pred, CSL_COUNTS)
    assert list(result) == ["tail", "mid", "head"]
    assert result == pytest.approx({"tail": 1 / 3, "mid": 1.0, "head": 2 / 3})


def test_band_accuracy_empty_band_is_nan():
    result = band_accuracy(["工学", "军事学"], ["工学", "工学"], CSL_COUNTS)
    assert result["tail"] == 0.0
    assert math.isnan(result["mid"])
    assert result["head"] == 1.0


def test_band_accuracy_unknown_true_label():
    with pytest.raises(ValueError, match="missing from class_counts"):
        band_accuracy(["工学", "天文学"], ["工学", "工学"], CSL_COUNTS)


# ---------------------------------------------------------------- McNemar


def test_mcnemar_hand_computed():
    result = mcnemar_exact(*paired(b=1, c=6, both_right=10, both_wrong=3))
    assert isinstance(result, McNemarResult)
    assert (result.b, result.c, result.statistic) == (1, 6, 1)
    assert result.pvalue == pytest.approx(0.125)  # 2 * (1 + 7) / 2**7


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [(0, 0, 1.0), (3, 3, 1.0), (0, 5, 2 / 32), (5, 0, 2 / 32), (2, 8, 2 * 56 / 1024)],
)
def test_mcnemar_small_cases(b, c, expected):
    assert mcnemar_exact(*paired(b, c, both_right=4)).pvalue == pytest.approx(expected)


@pytest.mark.parametrize(
    ("b", "c"), [(1, 6), (10, 25), (480, 530), (3, 100), (5000, 5300), (20000, 20600)]
)
def test_mcnemar_matches_scipy_binomtest(b, c):
    expected = binomtest(min(b, c), b + c, 0.5).pvalue
    assert mcnemar_exact(*paired(b, c)).pvalue == pytest.approx(expected, rel=1e-8)


def test_mcnemar_extreme_counts_underflow_to_zero():
    result = mcnemar_exact(*paired(b=0, c=5000))
    assert result.pvalue == 0.0


def test_mcnemar_pooled_seeds_by_concatenation():
    runs = [paired(1, 4, both_right=3), paired(2, 5), paired(0, 3, both_wrong=2)]
    pooled = [np.concatenate(parts) for parts in zip(*runs)]
    result = mcnemar_exact(*pooled)
    assert (result.b, result.c) == (3, 12)
    assert result.pvalue == pytest.approx(binomtest(3, 15, 0.5).pvalue)


def test_mcnemar_string_labels():
    y_true = ["文学", "哲学", "法学", "法学"]
    pred_a = ["文学", "文学", "法学", "哲学"]
    pred_b = ["文学", "哲学", "哲学", "文学"]
    assert mcnemar_exact(y_true, pred_a, pred_b)[:3] == (1, 1, 1)


@given(
    b=st.integers(0, 3000),
    c=st.integers(0, 3000),
    both_right=st.integers(1, 20),
    both_wrong=st.integers(0, 20),
)
def test_mcnemar_properties(b, c, both_right, both_wrong):
    y_true, pred_a, pred_b = paired(b, c, both_right, both_wrong)
    forward = mcnemar_exact(y_true, pred_a, pred_b)
    backward = mcnemar_exact(y_true, pred_b, pred_a)
    assert 0.0 <= forward.pvalue <= 1.0
    assert (backward.b, backward.c) == (forward.c, forward.b)
    assert backward.statistic == forward.statistic == min(b, c)
    assert backward.pvalue == forward.pvalue


# ---------------------------------------------------------------- report


def test_evaluation_report_without_counts():
    report = evaluation_report(Y_TRUE, Y_PRED)
    assert report == pytest.approx(
        {
            "n_samples": 6,
            "accuracy": 4 / 6,
            "macro_f1": macro_f1(Y_TRUE, Y_PRED),
            "balanced_accuracy": balanced_accuracy(Y_TRUE, Y_PRED),
        }
    )


def test_evaluation_report_with_counts_is_strict_json():
    report = evaluation_report(["工学", "军事学"], ["工学", "工学"], CSL_COUNTS)
    assert report["band_accuracy"] == {"tail": 0.0, "mid": None, "head": 1.0}
    assert json.loads(json.dumps(report, allow_nan=False)) == report


# ---------------------------------------------------------------- bad input

SCORE_FUNCTIONS = [macro_f1, balanced_accuracy, per_class_accuracy, evaluation_report]


@pytest.mark.parametrize("func", SCORE_FUNCTIONS)
@pytest.mark.parametrize(
    ("y_true", "y_pred", "error", "match"),
    [
        ([1, 2, 3], [1, 2], ValueError, "same length"),
        ([], [], ValueError, "empty"),
        ([[1, 2], [3, 4]], [[1, 2], [3, 4]], ValueError, "1-D"),
        ("文学", "文学", TypeError, "single string"),
    ],
)
def test_bad_targets(func, y_true, y_pred, error, match):
    with pytest.raises(error, match=match):
        func(y_true, y_pred)


def test_mcnemar_bad_input():
    with pytest.raises(ValueError, match="same length"):
        mcnemar_exact([0, 1], [0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        mcnemar_exact([], [], [])
    with pytest.raises(ValueError, match="1-D"):
        mcnemar_exact(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2)))


def test_band_accuracy_bad_input():
    with pytest.raises(ValueError, match="same length"):
        band_accuracy(["工学"], ["工学", "法学"], CSL_COUNTS)


@pytest.mark.parametrize(
    ("class_counts", "error", "match"),
    [
        ({"a": 3, "b": -1}, ValueError, "non-negative"),
        ({"a": 3, "b": float("nan")}, ValueError, "finite"),
        ({"a": "3", "b": "1"}, TypeError, "numbers"),
        ((["a", "a"], [1, 2]), ValueError, "unique"),
        ((["a", "b", "c"], [1, 2]), ValueError, "3 labels but 2 counts"),
        ((["a", "b"], [[1, 2]]), ValueError, "1-D"),
        (([], []), ValueError, "empty"),
        ([1, 2, 3], TypeError, "mapping"),
        (np.array([1, 2]), TypeError, "mapping"),
        (([1, None, 2], [1, 2, 3]), TypeError, "orderable"),
    ],
)
def test_frequency_bands_bad_counts(class_counts, error, match):
    with pytest.raises(error, match=match):
        frequency_bands(class_counts)


@pytest.mark.parametrize(
    ("n_bands", "error", "match"),
    [
        (1, ValueError, "between 2"),
        (14, ValueError, "between 2"),
        (2.0, TypeError, "integer"),
        (True, TypeError, "integer"),
    ],
)
def test_frequency_bands_bad_n_bands(n_bands, error, match):
    with pytest.raises(error, match=match):
        frequency_bands(CSL_COUNTS, n_bands)
