"""Batching, schedule, optimizer groups, inference order, best epoch, accumulation."""

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sktail.devices import resolve_device, resolve_precision
from sktail.inference import length_sorted_batches, predict_logits
from sktail.training import (
    NonFiniteError,
    build_optimizer,
    length_bucketed_batches,
    linear_warmup_decay,
)

from ._helpers import LABELS, TEXTS, batch_of, grads, tiny_loss, tiny_setup, tiny_trainer


# -- batching ------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 300), min_size=1, max_size=200),
    st.integers(1, 17),
    st.integers(1, 4),
    st.integers(0, 2**31 - 1),
)
def test_bucketed_batches_cover_each_row_once(lengths, batch_size, pool, seed):
    batches = length_bucketed_batches(lengths, batch_size, np.random.RandomState(seed), pool=pool)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    span = batch_size * pool
    n = len(lengths)
    expected = sum(math.ceil(min(span, n - s) / batch_size) for s in range(0, n, span))
    assert len(batches) == expected


def test_bucketed_batches_group_similar_lengths_within_a_pool():
    lengths = np.random.RandomState(0).randint(1, 1000, size=64)
    batches = length_bucketed_batches(lengths, 8, np.random.RandomState(1), pool=50)
    # one pool: the batches are consecutive slices of the length-sorted rows
    spans = sorted((lengths[b].min(), lengths[b].max()) for b in batches)
    assert all(hi <= next_lo for (_, hi), (next_lo, _) in zip(spans, spans[1:]))
    # ... and their order is shuffled
    mins = [lengths[b].min() for b in batches]
    assert mins != sorted(mins) and mins != sorted(mins, reverse=True)


def test_bucketed_batches_depend_on_the_rng_only():
    lengths = list(range(40))
    a = length_bucketed_batches(lengths, 4, np.random.RandomState(3))
    b = length_bucketed_batches(lengths, 4, np.random.RandomState(3))
    c = length_bucketed_batches(lengths, 4, np.random.RandomState(4))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=60), st.integers(1, 9))
def test_sorted_batches_are_longest_first(lengths, batch_size):
    batches = length_sorted_batches(lengths, batch_size)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    ordered = [lengths[i] for i in rows]
    assert ordered == sorted(lengths, reverse=True)
    assert all(len(b) == batch_size for b in batches[:-1])


# -- learning-rate schedule -------------------------------------------------------------
def test_schedule_values_by_hand():
    f = linear_warmup_decay(10, 0.2)  # 2 warm-up steps, then 8 decay steps
    assert [f(s) for s in range(11)] == pytest.approx(
        [0.0, 0.5, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8, 0.0]
    )
    assert linear_warmup_decay(15, 0.1)(1) == pytest.approx(0.5)  # ceil(1.5) = 2 warm-up steps
    no_warmup = linear_warmup_decay(4, 0.0)
    assert [no_warmup(s) for s in range(5)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    assert f(12) == 0.0  # never negative


def test_fit_builds_the_schedule_over_all_steps():
    encoder, ids, network = tiny_setup()
    trainer = tiny_trainer(network, encoder, epochs=2, batch_size=3, learning_rate=0.1,
                           grad_accumulation_steps=2, warmup_ratio=0.5, fgm_epsilon=0.0)
    assert trainer.steps_per_epoch(len(ids)) == 2  # 4 batches, 2 per step
    lrs = []
    real_step = trainer.optimizer_step

    def spy():
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        real_step()

    trainer.optimizer_step = spy
    trainer.fit((ids, LABELS, None))
    # 4 steps in total, 2 of warm-up: factors 0, 0.5, 1, 0.5
    assert lrs == pytest.approx([0.0, 0.05, 0.1, 0.05])


# -- optimizer -------------------------------------------------------------------------
def test_optimizer_decays_matrices_only():
    _, _, network = tiny_setup()
    network.head.bias.requires_grad_(False)
    optimizer = build_optimizer(network, 1e-3, 0.01)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(network.encoder.bag.weight), id(network.head.weight)}
    assert no_decay["params"] == []  # the frozen bias is not optimised at all
    assert all(g["lr"] == 1e-3 for g in optimizer.param_groups)
    assert isinstance(optimizer, torch.optim.AdamW)


# -- inference -----------------------------------------------------------------------
def test_predict_logits_returns_the_input_order():
    encoder, ids, network = tiny_setup()
    network.train()
    got = predict_logits(network, encoder, ids, batch_size=3, device=torch.device("cpu"))
    assert network.training  # the mode is restored
    network.eval()
    with torch.no_grad():
        expected = np.stack([network(encoder.collate([a]))[0].numpy() for a in ids])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 3)


# -- epochs --------------------------------------------------------------------------
def test_best_epoch_weights_are_restored():
    encoder, ids, network = tiny_setup()
    trainer = tiny_trainer(network, encoder, epochs=4, fgm_epsilon=0.0)
    scores = iter([0.2, 0.8, 0.8, 0.5])  # a tie does not replace the earlier best
    states = []
    real_epoch = trainer.run_epoch

    def run_epoch(*args):
        loss = real_epoch(*args)
        states.append(copy.deepcopy(network.state_dict()))
        return loss

    trainer.run_epoch = run_epoch
    trainer.evaluate = lambda ids, y: {"val_accuracy": next(scores), "val_balanced_accuracy": 0.0}
    history, best_epoch = trainer.fit((ids, LABELS, None), (ids, LABELS))
    assert best_epoch == 2 and [h["epoch"] for h in history] == [1, 2, 3, 4]
    for name, value in network.state_dict().items():
        assert torch.equal(value, states[1][name])
    assert not torch.equal(states[1]["head.weight"], states[3]["head.weight"])


def test_without_validation_the_last_epoch_is_kept():
    encoder, ids, network = tiny_setup()
    trainer = tiny_trainer(network, encoder, epochs=2, fgm_epsilon=0.0)
    history, best_epoch = trainer.fit((ids, LABELS, None))
    assert best_epoch == 2 and all("val_accuracy" not in h for h in history)
    assert all(np.isfinite(h["train_loss"]) and h["seconds"] >= 0 for h in history)


def test_non_finite_loss_raises():
    encoder, ids, network = tiny_setup()
    trainer = tiny_trainer(network, encoder, fgm_epsilon=0.0)
    trainer.compute_loss = lambda *args: torch.tensor(float("nan"), requires_grad=True)
    with pytest.raises(NonFiniteError, match="no usable model"):
        trainer.fit((ids, LABELS, None))


def test_gradient_accumulation_matches_one_double_batch():
    encoder, ids, network = tiny_setup()
    twin = copy.deepcopy(network)
    loss_fn = tiny_loss()
    halves = [range(0, 4), range(4, 8)]

    accumulated = tiny_trainer(network, encoder, loss_fn, fgm_epsilon=0.0, grad_accumulation_steps=2)
    for rows in halves:
        accumulated.train_step(*batch_of(encoder, ids, LABELS, rows))
    single = tiny_trainer(twin, encoder, loss_fn, fgm_epsilon=0.0, batch_size=8)
    single.train_step(*batch_of(encoder, ids, LABELS, range(8)))

    a, b = grads(network), grads(twin)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-7)
    accumulated.optimizer_step()
    single.optimizer_step()
    for (name, p), q in zip(network.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def test_run_epoch_steps_once_per_accumulation_group():
    encoder, ids, network = tiny_setup()
    trainer = tiny_trainer(network, encoder, fgm_epsilon=0.0, batch_size=3, grad_accumulation_steps=2)
    steps = []
    real_step = trainer.optimizer_step
    trainer.optimizer_step = lambda: (steps.append(trainer.forward_passes), real_step())
    trainer.run_epoch(ids, LABELS)
    # 10 rows -> 4 batches: a step after batches 2 and 4
    assert steps == [2, 4]


# -- devices and precision -------------------------------------------------------------
def test_precision_resolution_on_cpu():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == (None, False)
    assert resolve_precision("fp32", cpu) == (None, False)
    assert resolve_precision("bf16", cpu) == (torch.bfloat16, False)
    assert resolve_precision("fp16", cpu) == (torch.float16, False)  # no scaler off CUDA
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp8", cpu)


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


# -- host-device synchronisation -------------------------------------------------------
_SYNCING = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__")


def _count_syncs(monkeypatch):
    """Count the calls of the tensor methods that make the host wait for the device."""
    counts = {name: 0 for name in _SYNCING}
    for name in _SYNCING:
        original = getattr(torch.Tensor, name)

        def spy(self, *args, __original=original, __name=name, **kwargs):
            counts[__name] += 1
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    return counts


@pytest.mark.parametrize("fgm_epsilon, accumulation", [(0.0, 1), (0.3, 1), (0.3, 2)])
def test_an_epoch_synchronises_once_per_optimizer_step_and_once_per_fgm_pass(monkeypatch, fgm_epsilon, accumulation):
    encoder, ids, network = tiny_setup()
    trainer = tiny_trainer(network, encoder, fgm_epsilon=fgm_epsilon, batch_size=2,
                           grad_accumulation_steps=accumulation)
    n_batches = math.ceil(len(ids) / 2)
    n_steps = math.ceil(n_batches / accumulation)
    counts = _count_syncs(monkeypatch)
    trainer.run_epoch(ids, LABELS)
    monkeypatch.undo()
    # One readback of (loss, gradient norm) per optimizer step; FGM's skip rule
    # reads its norm once per batch. Nothing else in the step waits for the device.
    fgm_reads = n_batches if fgm_epsilon else 0
    assert sum(counts.values()) == n_steps + fgm_reads, counts
