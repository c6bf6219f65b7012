"""The full-batch head solver: closed-form gradient, L-BFGS, primal and kernel forms."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sktail.objective import AutoTailLoss, autotail_value_and_grad, compute_tail_prior
from sktail.training.solver import (
    KernelDesign,
    PrimalDesign,
    design_form,
    minimize_lbfgs,
    solve_head,
)


def _problem(seed=0, n=60, width=12, k=4):
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=[0.55, 0.25, 0.15, 0.05])
    y[:k] = np.arange(k)
    centers = rng.standard_normal((k, width))
    dense = (centers[y] + rng.standard_normal((n, width))).astype(np.float32)
    lexical = sp.random(n, 30, density=0.2, format="csr", dtype=np.float32, random_state=seed)
    counts = np.bincount(y, minlength=k)
    loss = AutoTailLoss(compute_tail_prior(counts, tail_gate=True).offsets, counts)
    return lexical, dense, torch.from_numpy(y.astype(np.int64)), loss


@pytest.mark.parametrize("bs_weight", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_closed_form_gradient_equals_autograd_of_the_loss(bs_weight, weighted):
    torch.manual_seed(0)
    loss = AutoTailLoss(torch.tensor([0.0, -0.4, -0.6]), [30, 4, 2], bs_weight=bs_weight)
    logits = torch.randn(20, 3, requires_grad=True)
    target = torch.randint(0, 3, (20,))
    weight = torch.rand(20) + 0.1 if weighted else None
    mean = loss(logits, target, weight)
    mean.backward()
    value, grad = autotail_value_and_grad(logits.detach(), target, loss.offsets, loss.log_prior,
                                          bs_weight=bs_weight, sample_weight=weight)
    total = 20.0 if weight is None else float(weight.sum())
    assert value / total == pytest.approx(mean.item(), rel=1e-6)
    torch.testing.assert_close(grad / total, logits.grad, atol=1e-7, rtol=1e-5)


def test_lbfgs_minimises_an_ill_conditioned_quadratic():
    scales = torch.tensor([1.0, 10.0, 100.0, 1000.0])
    target = torch.tensor([1.0, -1.0, 2.0, 0.5])

    def fun(x):
        return float((scales * (x - target) ** 2).sum()), 2 * scales * (x - target)

    result = minimize_lbfgs(fun, torch.zeros(4), tol=1e-7, max_iter=200)
    assert result.converged
    torch.testing.assert_close(result.x, target, atol=1e-4, rtol=0)


def test_solved_head_is_stationary_for_the_penalised_objective():
    lexical, dense, y, loss = _problem()
    design = PrimalDesign([lexical, dense], [1.0, 0.5])
    solution = solve_head(design, y, loss, C=2.0, tol=1e-6, max_iter=2000)
    assert solution.converged and solution.grad_norm <= 1e-6
    # Finite differences of the objective at the solution vanish along random directions.
    coef, bias = solution.coef.double(), solution.bias.double()
    x = torch.from_numpy(np.hstack([lexical.toarray(), 0.5 * dense]).astype(np.float64))

    def objective(c, b):
        value, _ = autotail_value_and_grad((x @ c + b).float(), y, loss.offsets, loss.log_prior)
        return value / len(y) + float((c * c).sum()) / (2 * 2.0 * len(y))

    base = objective(coef, bias)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        direction = torch.randn(coef.shape, generator=generator, dtype=torch.float64)
        direction /= direction.norm()
        assert objective(coef + 1e-3 * direction, bias) - base > -1e-7
        assert objective(coef - 1e-3 * direction, bias) - base > -1e-7


def test_kernel_form_gives_the_primal_solution():
    lexical, dense, y, loss = _problem(seed=3)
    primal = solve_head(PrimalDesign([lexical, dense], [1.0, 0.3]), y, loss, C=1.0, tol=1e-7, max_iter=3000)
    grams = [torch.from_numpy((lexical @ lexical.T).toarray().astype(np.float32)), torch.from_numpy(dense @ dense.T)]
    kernel_design = KernelDesign(grams, [1.0, 0.3])
    kernel = solve_head(kernel_design, y, loss, C=1.0, tol=1e-7, max_iter=3000)
    dual = kernel_design.dual(kernel.coef).numpy()
    weights = np.vstack([lexical.T @ dual, 0.3 * dense.T @ dual])
    np.testing.assert_allclose(weights, primal.coef.numpy(), atol=2e-3)
    np.testing.assert_allclose(kernel.bias.numpy(), primal.bias.numpy(), atol=2e-3)
    assert kernel.value == pytest.approx(primal.value, rel=1e-4)


def test_solver_is_deterministic_and_warm_starts_converge_faster():
    lexical, dense, y, loss = _problem(seed=5)
    design = PrimalDesign([lexical, dense], [1.0, 1.0])
    first = solve_head(design, y, loss, C=1.0, tol=1e-5)
    again = solve_head(design, y, loss, C=1.0, tol=1e-5)
    assert torch.equal(first.coef, again.coef) and torch.equal(first.bias, again.bias)
    cold = solve_head(design, y, loss, C=1.5, tol=1e-5)
    warm = solve_head(design, y, loss, C=1.5, tol=1e-5, init=first)
    assert warm.n_iter < cold.n_iter


def test_missed_tolerance_warns_with_the_reached_norm():
    lexical, dense, y, loss = _problem()
    with pytest.warns(Warning, match="relative gradient norm"):
        solution = solve_head(PrimalDesign([lexical, dense], [1.0, 1.0]), y, loss, C=100.0, tol=1e-12, max_iter=3)
    assert not solution.converged and solution.n_iter == 3


def test_design_form_follows_the_shape():
    assert design_form(3072, 490_000, 67) == "kernel"   # CSL abstracts: few rows, many n-grams
    assert design_form(8000, 157_000, 13) == "primal"   # CSL titles
    assert design_form(500_000, 200_000, 13) == "primal"
