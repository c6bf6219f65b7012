"""FGM on the word embeddings (METHOD.md §6)."""

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sktail.adversarial import FGM, fgm_perturbation

from ._helpers import LABELS, batch_of, grads, tiny_loss, tiny_setup, tiny_trainer


# -- the perturbation ------------------------------------------------------------------
def test_perturbation_uses_one_norm_over_the_whole_matrix():
    g = np.array([[3.0, 4.0], [0.0, 0.5], [10.0, 0.0]], dtype=np.float32)
    r = fgm_perturbation(torch.from_numpy(g), 0.3).numpy()
    expected = 0.3 * g / np.sqrt((g.astype(np.float64) ** 2).sum())
    np.testing.assert_allclose(r, expected, rtol=1e-6)
    assert np.linalg.norm(r) == pytest.approx(0.3, rel=1e-6)
    # rows keep their relative sizes (a per-row norm would make them equal)
    assert np.linalg.norm(r[2]) / np.linalg.norm(r[0]) == pytest.approx(2.0, rel=1e-6)


@pytest.mark.parametrize("bad", [0.0, np.nan, np.inf])
def test_perturbation_is_skipped_on_zero_or_non_finite_norm(bad):
    g = torch.zeros(3, 2) if bad == 0.0 else torch.tensor([[1.0, bad], [0.0, 1.0]])
    assert fgm_perturbation(g, 0.3) is None


def _embedding_with_grad(grad):
    weight = torch.nn.Parameter(torch.arange(6, dtype=torch.float32).reshape(3, 2))
    weight.grad = grad
    return weight


@pytest.mark.parametrize(
    ("epsilon", "grad"),
    [(0.3, torch.zeros(3, 2)), (0.3, torch.full((3, 2), float("nan"))), (0.3, None), (0.0, torch.ones(3, 2))],
    ids=["zero-norm", "nan-norm", "no-grad", "epsilon-0"],
)
def test_skipped_steps_leave_the_embeddings_alone(epsilon, grad):
    weight = _embedding_with_grad(grad)
    before = weight.detach().clone()
    with FGM(weight, epsilon).perturb() as applied:
        assert applied is False
        assert torch.equal(weight, before)
    assert torch.equal(weight, before)


def test_perturb_adds_r_inside_the_block():
    g = torch.tensor([[1.0, 2.0], [0.0, -2.0], [0.0, 0.0]])
    weight = _embedding_with_grad(g)
    before = weight.detach().clone()
    with FGM(weight, 0.5).perturb() as applied:
        assert applied is True
        torch.testing.assert_close(weight.detach(), before + 0.5 * g / 3.0)
    assert torch.equal(weight, before)


def test_restore_also_happens_on_error():
    weight = _embedding_with_grad(torch.ones(3, 2))
    before = weight.detach().clone()
    with pytest.raises(RuntimeError, match="boom"), FGM(weight, 0.3).perturb():
        raise RuntimeError("boom")
    assert torch.equal(weight, before)


def _bits(t):
    return t.detach().view(torch.int32).clone()


_finite32 = st.floats(-1e6, 1e6, width=32, allow_subnormal=False)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 5)), elements=_finite32),
    st.data(),
    st.floats(1e-4, 10.0),
)
def test_restore_is_bit_exact(values, data, epsilon):
    grad = data.draw(arrays(np.float32, values.shape, elements=_finite32))
    weight = torch.nn.Parameter(torch.from_numpy(values.copy()))
    weight.grad = torch.from_numpy(grad)
    before = _bits(weight)
    with FGM(weight, epsilon).perturb():
        pass
    assert torch.equal(_bits(weight), before)


def test_subtracting_r_would_not_be_bit_exact():
    # Why FGM restores from a copy: (E + r) - r != E in floating point.
    weight = torch.nn.Parameter(torch.tensor([[0.1, 1e-3, 7.3]]))
    grad = torch.tensor([[1.0, 1.0, 1.0]])
    r = fgm_perturbation(grad, 0.3)
    assert not torch.equal((weight.detach() + r) - r, weight.detach())
    weight.grad = grad
    before = _bits(weight)
    with FGM(weight, 0.3).perturb():
        pass
    assert torch.equal(_bits(weight), before)


# -- FGM inside the training step ------------------------------------------------------
def _counting_trainer(**config):
    encoder, ids, network = tiny_setup()
    trainer = tiny_trainer(network, encoder, **config)
    backward = {"n": 0}

    def count(grad):
        backward["n"] += 1

    network.head.weight.register_hook(count)
    return trainer, encoder, ids, backward


def test_one_extra_forward_and_backward_per_step_when_on():
    trainer, encoder, ids, backward = _counting_trainer(fgm_epsilon=0.3)
    trainer.train_step(*batch_of(encoder, ids, LABELS, range(4)))
    assert (trainer.forward_passes, backward["n"]) == (2, 2)
    trainer.optimizer_step()
    trainer.train_step(*batch_of(encoder, ids, LABELS, range(4, 8)))
    assert (trainer.forward_passes, backward["n"]) == (4, 4)


def test_one_extra_forward_per_batch_over_an_epoch():
    trainer, encoder, ids, backward = _counting_trainer(fgm_epsilon=0.3, batch_size=3)
    trainer.run_epoch(ids, LABELS)
    n_batches = int(np.ceil(len(ids) / 3))
    assert (trainer.forward_passes, backward["n"]) == (2 * n_batches, 2 * n_batches)


def test_no_extra_pass_when_fgm_is_off():
    trainer, encoder, ids, backward = _counting_trainer(fgm_epsilon=0.0)
    assert not trainer.fgm.enabled
    trainer.run_epoch(ids, LABELS)
    n_batches = int(np.ceil(len(ids) / 4))
    assert (trainer.forward_passes, backward["n"]) == (n_batches, n_batches)


def test_no_extra_pass_when_the_embedding_gradient_is_zero():
    encoder, ids, network = tiny_setup()
    trainer = tiny_trainer(network, encoder, fgm_epsilon=0.3)
    empty = [np.zeros(0, dtype=np.int64)] * 2  # empty texts pool to zeros: dL/dE = 0
    trainer.train_step(encoder.collate(empty), torch.tensor([0, 1]), None)
    assert trainer.forward_passes == 1


def test_adversarial_gradient_is_added_with_weight_w_adv():
    encoder, ids, network = tiny_setup()
    reference = copy.deepcopy(network)
    loss_fn = tiny_loss()
    batch, target, _ = batch_of(encoder, ids, LABELS, [0, 2, 4, 5, 9])
    epsilon, w_adv = 0.4, 0.7

    # by hand: clean gradient, r from dL/dE, gradient at E + r, summed with weight w_adv
    params = dict(reference.named_parameters())
    names = list(params)
    clean = torch.autograd.grad(loss_fn(reference(batch), target), list(params.values()))
    g = clean[names.index("encoder.bag.weight")]
    r = epsilon * g / torch.linalg.vector_norm(g)
    with torch.no_grad():
        params["encoder.bag.weight"].add_(r)
    adversarial = torch.autograd.grad(loss_fn(reference(batch), target), list(params.values()))
    expected = {n: c + w_adv * a for n, c, a in zip(names, clean, adversarial)}

    trainer = tiny_trainer(network, encoder, loss_fn, fgm_epsilon=epsilon, fgm_weight=w_adv)
    trainer.train_step(batch, target, None)
    got = grads(network)
    for name in names:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-7)
    # and the adversarial part is not negligible
    assert not torch.allclose(expected["head.weight"], clean[names.index("head.weight")], atol=1e-4)


def test_restore_happens_before_clipping_and_the_optimizer_step(monkeypatch):
    encoder, ids, network = tiny_setup()
    trainer = tiny_trainer(network, encoder, fgm_epsilon=0.3)
    embedding = trainer.fgm.embedding
    original = embedding.detach().clone()
    seen = {}

    real_forward = network.encoder.forward

    def spy_forward(batch):
        seen.setdefault("forward", []).append(torch.equal(embedding, original))
        return real_forward(batch)

    real_clip = torch.nn.utils.clip_grad_norm_

    def spy_clip(parameters, *args, **kwargs):
        seen["clip"] = torch.equal(embedding, original)
        return real_clip(parameters, *args, **kwargs)

    monkeypatch.setattr(network.encoder, "forward", spy_forward)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy_clip)
    trainer.optimizer.register_step_pre_hook(
        lambda *_: seen.__setitem__("step", torch.equal(embedding, original))
    )
    trainer.train_step(*batch_of(encoder, ids, LABELS, range(5)))
    trainer.optimizer_step()
    assert seen["forward"] == [True, False]  # the second forward saw E + r
    assert seen["clip"] is True and seen["step"] is True
    assert not torch.equal(embedding, original)  # then the optimizer moved E


def test_perturbation_follows_the_current_batch_under_accumulation(monkeypatch):
    encoder, ids, network = tiny_setup()
    reference = copy.deepcopy(network)
    loss_fn = tiny_loss()
    trainer = tiny_trainer(network, encoder, loss_fn, fgm_epsilon=0.3, grad_accumulation_steps=2)
    used = []
    real_perturb = trainer.fgm.perturb

    def spy(grad=None):
        used.append((trainer.fgm.embedding.grad if grad is None else grad).detach().clone())
        return real_perturb(grad)

    monkeypatch.setattr(trainer.fgm, "perturb", spy)
    second = batch_of(encoder, ids, LABELS, range(4, 8))
    trainer.train_step(*batch_of(encoder, ids, LABELS, range(4)))
    trainer.train_step(*second)
    (g,) = torch.autograd.grad(loss_fn(reference(second[0]), second[1]), [reference.encoder.bag.weight])
    direction = used[1] / torch.linalg.vector_norm(used[1])
    torch.testing.assert_close(direction, g / torch.linalg.vector_norm(g), rtol=1e-4, atol=1e-6)
