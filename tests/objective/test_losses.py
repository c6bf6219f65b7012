"""Smoothed CE, Balanced Softmax and AutoTailLoss (METHOD.md §1, §4, §5).

Expected values are computed with numpy from the formulas.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sktail.objective import (
    AutoTailLoss,
    balanced_softmax_loss,
    compute_tail_prior,
    smoothed_cross_entropy,
)

LOGITS = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, -0.3], [-1.5, 3.0, 0.0], [0.0, 0.0, 0.0]])
TARGET = np.array([0, 2, 1, 1])
COUNTS = np.array([40.0, 9.0, 2.0])
WEIGHTS = np.array([1.0, 3.0, 0.5, 0.0])


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _ce_rows(z, y, eps=0.0):
    """Per-row CE against ``(1 - eps) * onehot + eps / K``."""
    k = z.shape[1]
    q = np.full(z.shape, eps / k)
    q[np.arange(len(y)), y] += 1.0 - eps
    return -(q * _log_softmax(z)).sum(axis=1)


def _mean(rows, w=None):
    return rows.mean() if w is None else (w * rows).sum() / w.sum()


def _t(a, dtype=torch.float32):
    return torch.tensor(a, dtype=dtype)


def test_smoothed_cross_entropy_by_hand():
    # row 0 by hand: log-sum-exp(2, -1, 0.5) and the smoothed target (0.9667, 0.0167, 0.0167)
    lse = np.log(np.exp(2.0) + np.exp(-1.0) + np.exp(0.5))
    row0 = -(0.95 + 0.05 / 3) * (2.0 - lse) - 0.05 / 3 * ((-1.0 - lse) + (0.5 - lse))
    assert _ce_rows(LOGITS[:1], TARGET[:1], 0.05)[0] == pytest.approx(row0, rel=1e-12)
    got = smoothed_cross_entropy(_t(LOGITS), _t(TARGET, torch.long), 0.05)
    assert got.item() == pytest.approx(_mean(_ce_rows(LOGITS, TARGET, 0.05)), rel=1e-6)


def test_smoothed_cross_entropy_sample_weights_give_a_weighted_mean():
    got = smoothed_cross_entropy(_t(LOGITS), _t(TARGET, torch.long), 0.05, _t(WEIGHTS))
    assert got.item() == pytest.approx(_mean(_ce_rows(LOGITS, TARGET, 0.05), WEIGHTS), rel=1e-6)


def test_balanced_softmax_by_hand():
    shifted = LOGITS + 0.25 * np.log(COUNTS + 1.0)
    expected = _mean(_ce_rows(shifted, TARGET))
    got = balanced_softmax_loss(_t(LOGITS), _t(TARGET, torch.long), _t(np.log(COUNTS + 1.0)), 0.25)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # lambda_b = 1 is Ren et al.'s Balanced Softmax: CE(z + log n)
    full = balanced_softmax_loss(_t(LOGITS), _t(TARGET, torch.long), _t(np.log(COUNTS)), 1.0)
    assert full.item() == pytest.approx(_mean(_ce_rows(LOGITS + np.log(COUNTS), TARGET)), rel=1e-6)


def test_balanced_softmax_has_no_smoothing_and_weights():
    log_prior = np.log(np.maximum(COUNTS, 1.0))
    got = balanced_softmax_loss(_t(LOGITS), _t(TARGET, torch.long), _t(log_prior), 0.25, _t(WEIGHTS))
    expected = _mean(_ce_rows(LOGITS + 0.25 * log_prior, TARGET, eps=0.0), WEIGHTS)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def _autotail_by_hand(z, y, offsets, counts, *, eps=0.05, w_b=0.1, lam=0.25, w=None):
    smoothed = _mean(_ce_rows(z + offsets, y, eps), w)
    balanced = _mean(_ce_rows(z + lam * np.log(np.maximum(counts, 1)), y), w)
    return (1 - w_b) * smoothed + w_b * balanced


def test_autotail_loss_is_the_convex_mix():
    tau = 0.15
    # tail prior by hand: N = 51, K = 3, median 9 -> classes 1 and 2 in the tail
    m = np.array([0.0, np.log(10 / 54), np.log(3 / 54)])
    offsets = tau * m
    np.testing.assert_allclose(compute_tail_prior(COUNTS).offsets, offsets, rtol=1e-12)
    loss = AutoTailLoss(offsets, COUNTS)
    got = loss(_t(LOGITS), _t(TARGET, torch.long))
    assert got.item() == pytest.approx(_autotail_by_hand(LOGITS, TARGET, offsets, COUNTS), rel=1e-6)
    # the mix is convex, not L_LS + 0.1 L_BS
    additive = _mean(_ce_rows(LOGITS + offsets, TARGET, 0.05)) + 0.1 * _mean(
        _ce_rows(LOGITS + 0.25 * np.log(COUNTS), TARGET)
    )
    assert abs(got.item() - additive) > 1e-2


def test_autotail_loss_settings_and_sample_weights():
    offsets = np.array([0.0, -0.3, -0.6])
    loss = AutoTailLoss(offsets, COUNTS, label_smoothing=0.2, bs_weight=0.4, bs_temperature=0.7)
    got = loss(_t(LOGITS), _t(TARGET, torch.long), _t(WEIGHTS))
    expected = _autotail_by_hand(LOGITS, TARGET, offsets, COUNTS, eps=0.2, w_b=0.4, lam=0.7, w=WEIGHTS)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_balanced_softmax_uses_the_raw_logits():
    # Offsets only enter the smoothed term: with w_b = 1 they must not matter.
    a = AutoTailLoss([0.0, -1.0, -2.0], COUNTS, bs_weight=1.0)(_t(LOGITS), _t(TARGET, torch.long))
    b = AutoTailLoss([0.0, 0.0, 0.0], COUNTS, bs_weight=1.0)(_t(LOGITS), _t(TARGET, torch.long))
    assert a.item() == pytest.approx(b.item(), rel=1e-7)


def test_bs_weight_zero_is_the_label_smoothed_baseline():
    loss = AutoTailLoss(np.zeros(3), COUNTS, bs_weight=0.0)
    got = loss(_t(LOGITS), _t(TARGET, torch.long))
    assert got.item() == pytest.approx(_mean(_ce_rows(LOGITS, TARGET, 0.05)), rel=1e-6)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(2, 6).flatmap(
        lambda k: st.tuples(
            arrays(np.float64, st.tuples(st.integers(1, 8), st.just(k)), elements=st.floats(-20, 20)),
            st.lists(st.integers(1, 500), min_size=k, max_size=k),
            st.data(),
        )
    )
)
def test_everything_off_is_plain_cross_entropy(case):
    z, counts, data = case
    y = np.array(data.draw(st.lists(st.integers(0, z.shape[1] - 1), min_size=len(z), max_size=len(z))))
    offsets = compute_tail_prior(counts, tail_gate=False).offsets
    loss = AutoTailLoss(offsets, counts, label_smoothing=0.0, bs_weight=0.0)
    got = loss(_t(z), _t(y, torch.long)).item()
    assert got == pytest.approx(_mean(_ce_rows(z, y)), rel=1e-5, abs=1e-5)


def test_gradient_matches_finite_differences():
    rng = np.random.RandomState(0)
    z0 = rng.normal(size=(5, 3))
    y = torch.tensor([0, 1, 2, 2, 1])
    w = torch.tensor([1.0, 0.5, 2.0, 1.0, 0.0])
    loss = AutoTailLoss([0.0, -0.2, -0.5], COUNTS)
    z = torch.tensor(z0, dtype=torch.float32, requires_grad=True)
    loss(z, y, w).backward()
    h = 1e-2
    numeric = np.zeros_like(z0)
    for idx in np.ndindex(*z0.shape):
        plus, minus = z0.copy(), z0.copy()
        plus[idx] += h
        minus[idx] -= h
        numeric[idx] = (
            loss(_t(plus), y, w).item() - loss(_t(minus), y, w).item()
        ) / (2 * h)
    np.testing.assert_allclose(z.grad.numpy(), numeric, rtol=2e-3, atol=2e-4)
    # zero-weight rows get no gradient
    np.testing.assert_array_equal(z.grad.numpy()[4], 0.0)


def test_gradient_matches_the_closed_form():
    # dL/dz = (1 - w_b) (softmax(z + tau m) - q) / n + w_b (softmax(z + lam log max(n, 1)) - onehot) / n
    z0 = LOGITS
    offsets = np.array([0.0, -0.2, -0.5])
    z = torch.tensor(z0, dtype=torch.float32, requires_grad=True)
    AutoTailLoss(offsets, COUNTS)(z, _t(TARGET, torch.long)).backward()
    q = np.full(z0.shape, 0.05 / 3)
    q[np.arange(4), TARGET] += 0.95
    onehot = np.eye(3)[TARGET]
    expected = (
        0.9 * (np.exp(_log_softmax(z0 + offsets)) - q)
        + 0.1 * (np.exp(_log_softmax(z0 + 0.25 * np.log(np.maximum(COUNTS, 1)))) - onehot)
    ) / len(z0)
    np.testing.assert_allclose(z.grad.numpy(), expected, rtol=1e-5, atol=1e-7)


def test_balanced_softmax_offset_is_log_of_the_count_clamped_at_one():
    """METHOD.md §4: ``log(max(n_k, 1))``; a class absent from training gets offset 0."""
    counts = np.array([40, 9, 0])
    loss = AutoTailLoss(np.zeros(3), counts)
    np.testing.assert_allclose(loss.log_prior.numpy(), [np.log(40), np.log(9), 0.0], rtol=1e-6)
    z = np.array([[0.3, -0.2, 1.1]])
    got = AutoTailLoss(np.zeros(3), counts, label_smoothing=0.0, bs_weight=1.0)(_t(z), _t(np.array([2]), torch.long))
    shifted = z + 0.25 * np.array([np.log(40), np.log(9), 0.0])
    expected = -(shifted[0, 2] - np.log(np.exp(shifted[0]).sum()))
    assert got.item() == pytest.approx(expected, rel=1e-6)
