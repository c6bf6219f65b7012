"""Imbalance index, gate, tail set, prior and offsets (METHOD.md §2-§3).

Expected values are computed here with :mod:`math` straight from the formulas,
never by calling the functions under test.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sktail.objective import (
    compute_tail_prior,
    imbalance_index,
    prior_offsets,
    tail_mask,
    tail_prior,
)

# METHOD.md §2: the CSL title training split.
CSL_TITLE = [3536, 807, 747, 728, 497, 443, 319, 283, 184, 164, 124, 101, 67]


def _index_by_hand(counts):
    total = sum(counts)
    entropy = -sum(n / total * math.log(n / total + 1e-12) for n in counts)
    return 1.0 - entropy / math.log(len(counts))


def _offset_by_hand(n, counts, tau=0.15, alpha=1.0):
    return tau * math.log((n + alpha) / (sum(counts) + alpha * len(counts)))


# -- METHOD.md's worked example ----------------------------------------------------
def test_worked_example_index_and_gate():
    expected = _index_by_hand(CSL_TITLE)
    assert imbalance_index(CSL_TITLE) == pytest.approx(expected, abs=1e-12)
    assert round(expected, 3) == 0.245  # the number quoted in METHOD.md
    prior = compute_tail_prior(CSL_TITLE)
    assert prior.gate_on is True
    assert prior.imbalance_index == pytest.approx(expected, abs=1e-12)


def test_worked_example_tail_is_the_seven_smallest():
    mask = tail_mask(CSL_TITLE)
    # 13 counts: the median is the 7th smallest, 319, and it belongs to the tail.
    assert sorted(CSL_TITLE)[6] == 319
    assert mask.tolist() == [n <= 319 for n in CSL_TITLE]
    assert mask.sum() == 7
    assert sorted(np.asarray(CSL_TITLE)[mask].tolist()) == sorted(CSL_TITLE)[:7]


def test_worked_example_offsets():
    offsets = compute_tail_prior(CSL_TITLE).offsets
    # N = 8000, K = 13: tau * log((n + 1) / 8013) on the tail, 0 on the head.
    assert sum(CSL_TITLE) == 8000
    expected = [_offset_by_hand(n, CSL_TITLE) if n <= 319 else 0.0 for n in CSL_TITLE]
    np.testing.assert_allclose(offsets, expected, rtol=1e-12, atol=0)
    tail = offsets[offsets != 0]
    assert tail.size == 7
    assert -0.72 < tail.min() < -0.71  # the 67-row class
    assert -0.49 < tail.max() < -0.48  # the 319-row class (the median)
    assert offsets[0] == 0.0  # the head class is untouched


def test_prior_is_additively_smoothed_and_sums_to_one():
    counts = [6, 3, 1, 0]
    expected = [(n + 0.5) / (10 + 0.5 * 4) for n in counts]
    prior = tail_prior(counts, alpha=0.5)
    np.testing.assert_allclose(prior, expected, rtol=1e-12)
    assert prior.sum() == pytest.approx(1.0)


# -- K = 2, forced gate and the threshold ------------------------------------------
def test_two_classes():
    counts = [90, 10]
    expected = 1.0 + (0.9 * math.log(0.9) + 0.1 * math.log(0.1)) / math.log(2)
    prior = compute_tail_prior(counts)
    assert prior.imbalance_index == pytest.approx(expected, abs=1e-10)
    assert prior.gate_on
    # median of (90, 10) is 50: only the minority class is in the tail
    assert prior.tail_mask.tolist() == [False, True]
    np.testing.assert_allclose(prior.offsets, [0.0, 0.15 * math.log(11 / 102)], rtol=1e-12)


def test_two_balanced_classes_keep_the_gate_closed():
    prior = compute_tail_prior([25, 25])
    assert prior.imbalance_index == pytest.approx(0.0, abs=1e-9)
    assert not prior.gate_on
    np.testing.assert_array_equal(prior.offsets, [0.0, 0.0])
    assert prior.tail_mask.tolist() == [True, True]  # reported, although unused


def test_gate_opens_at_the_threshold_inclusive():
    counts = [30, 20, 10]
    index = _index_by_hand(counts)
    assert compute_tail_prior(counts, threshold=index).gate_on  # I >= gamma
    assert not compute_tail_prior(counts, threshold=index + 1e-6).gate_on


def test_forced_gate_on_for_balanced_counts():
    counts = [10, 10, 10, 10]
    prior = compute_tail_prior(counts, tail_gate=True)
    assert prior.gate_on and prior.imbalance_index < 0.1
    # every count equals the median, so every class is in the tail
    np.testing.assert_allclose(prior.offsets, [0.15 * math.log(11 / 44)] * 4, rtol=1e-12)


def test_forced_gate_off_for_imbalanced_counts():
    prior = compute_tail_prior(CSL_TITLE, tail_gate=False)
    assert not prior.gate_on and prior.imbalance_index > 0.1
    np.testing.assert_array_equal(prior.offsets, np.zeros(13))
    assert prior.tail_mask.sum() == 7


def test_tau_and_alpha_enter_the_offsets():
    counts = [50, 10, 5]
    offsets = prior_offsets(counts, tau=0.5, alpha=2.0)
    expected = [0.0, _offset_by_hand(10, counts, 0.5, 2.0), _offset_by_hand(5, counts, 0.5, 2.0)]
    np.testing.assert_allclose(offsets, expected, rtol=1e-12)


def test_zero_counts_are_left_out_of_the_median():
    counts = [0, 5, 10, 20]
    # median of the non-zero counts (5, 10, 20) is 10; including the 0 would give 7.5
    assert tail_mask(counts).tolist() == [True, True, True, False]


def test_single_class_index_is_zero():
    assert imbalance_index([7]) == 0.0


@pytest.mark.parametrize("counts", [[], [[1, 2]], [3, -1], [0, 0], [1.0, np.nan], [np.inf, 1]])
def test_invalid_counts_raise(counts):
    with pytest.raises(ValueError, match="class_counts"):
        imbalance_index(counts)


def test_invalid_gate_string_raises():
    with pytest.raises(ValueError, match="tail_gate"):
        compute_tail_prior([5, 1], tail_gate="yes")


# -- properties -----------------------------------------------------------------------
counts_strategy = st.lists(st.integers(1, 10_000), min_size=2, max_size=40)


@settings(max_examples=100, deadline=None)
@given(counts_strategy)
def test_index_lies_in_unit_interval(counts):
    index = imbalance_index(counts)
    assert -1e-9 <= index <= 1.0


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 10_000), st.integers(2, 60))
def test_index_is_zero_for_uniform_counts(n, k):
    assert imbalance_index([n] * k) == pytest.approx(0.0, abs=1e-9)
    assert not compute_tail_prior([n] * k).gate_on


@settings(max_examples=100, deadline=None)
@given(counts_strategy, st.randoms(use_true_random=False), st.sampled_from(["auto", True, False]))
def test_permuting_the_classes_permutes_the_results(counts, random, gate):
    order = list(range(len(counts)))
    random.shuffle(order)
    permuted = [counts[i] for i in order]
    a = compute_tail_prior(counts, tail_gate=gate)
    b = compute_tail_prior(permuted, tail_gate=gate)
    assert b.imbalance_index == pytest.approx(a.imbalance_index, abs=1e-12)
    assert b.gate_on == a.gate_on
    np.testing.assert_array_equal(b.tail_mask, a.tail_mask[order])
    np.testing.assert_allclose(b.offsets, a.offsets[order], rtol=1e-12)


@settings(max_examples=100, deadline=None)
@given(counts_strategy)
def test_median_class_is_in_the_tail(counts):
    mask = tail_mask(counts)
    ordered = sorted(counts)
    lower_median = ordered[(len(counts) - 1) // 2]
    assert all(mask[i] for i, n in enumerate(counts) if n <= lower_median)
    assert mask.sum() >= math.ceil(len(counts) / 2)


@settings(max_examples=100, deadline=None)
@given(counts_strategy, st.floats(0.0, 2.0), st.floats(0.01, 10.0))
def test_offsets_are_non_positive_and_zero_outside_the_tail(counts, tau, alpha):
    prior = compute_tail_prior(counts, tail_gate=True, tau=tau, alpha=alpha)
    assert np.all(prior.offsets <= 0)
    assert np.all(prior.offsets[~prior.tail_mask] == 0)
    if tau > 0:
        assert np.all(prior.offsets[prior.tail_mask] < 0)
