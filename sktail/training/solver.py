"""A deterministic full-batch solver for a linear head on fixed features.

The head of a frozen-feature model (``encoder="tfidf-e5"``, ``train_encoder="none"``)
is a linear model ``z = X W + b`` over feature blocks ``X = [s_1 X_1, s_2 X_2, ...]``
(sparse TF-IDF, dense standardised transformer features, each with a scale
``s_b``). Its weights minimise the exact AutoTail-BSFGM loss (``docs/method.md``
sections 1-5) plus an L2 penalty on ``W`` (not on ``b``), scikit-learn's
``LogisticRegression`` convention:

.. math::

    F(W, b) = \\frac{1}{S} \\sum_i w_i L_i(X_i W + b) + \\frac{1}{2 C S} \\lVert W \\rVert^2,
    \\qquad S = \\sum_i w_i .

``F`` is convex and smooth, so L-BFGS (:func:`minimize_lbfgs`) reaches its
optimum to a stated relative gradient tolerance. Two equivalent
parametrisations (:func:`design_form`):

* *primal* (:class:`PrimalDesign`): the unknown is ``W`` itself,
  ``n_features x K`` floats per L-BFGS vector;
* *kernel* (:class:`KernelDesign`), the representer form ``W = X^T A``:
  with ``G = X X^T + delta I = L L^T`` (Cholesky) and ``U = L^T A``, the logits
  are ``L U`` and ``||W||^2 = ||U||^2``, so the same Euclidean L-BFGS runs on
  ``n_samples x K`` floats. ``delta`` is a ridge of ``1e-6`` times the mean
  diagonal that keeps ``G`` definite. The memory is ``O(n_samples^2)``.

Vectors are float32; losses, inner products and norms are reduced in float64.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from ..objective import autotail_value_and_grad

__all__ = ["HeadSolution", "KernelDesign", "PrimalDesign", "design_form", "minimize_lbfgs",
           "solve_head"]

#: L-BFGS keeps this many correction pairs.
HISTORY = 10


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a.double(), b.double()))


def _norm(a: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a, dtype=torch.float64))


@dataclass
class LbfgsResult:
    """Where :func:`minimize_lbfgs` stopped.

    Attributes
    ----------
    x : Tensor
        The last iterate.
    value : float
        ``f(x)``.
    grad_norm : float
        ``||grad f(x)||`` divided by ``||grad f(x0)||``.
    n_iter : int
        Iterations taken.
    converged : bool
        Whether the tolerance was reached.
    """

    x: torch.Tensor
    value: float
    grad_norm: float
    n_iter: int
    converged: bool


def minimize_lbfgs(fun, x0: torch.Tensor, *, tol: float = 1e-4, max_iter: int = 500,
                   history: int = HISTORY, reference: float | None = None) -> LbfgsResult:
    """Minimise a smooth function by L-BFGS with a backtracking (Armijo) line search.

    Deterministic: the same ``fun`` and ``x0`` give the same iterates.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (value: float, grad: Tensor like x)``.
    x0 : Tensor of shape (n,)
        Starting point (not changed).
    tol : float, default=1e-4
        Stop when ``||grad f(x)|| <= tol * ||grad f(x0)||``.
    max_iter : int, default=500
        Most iterations.
    history : int, default=10
        Correction pairs kept.
    reference : float, default=None
        The gradient norm the tolerance is relative to (``||grad f(x0)||`` when
        None); a warm start passes that of a fixed point, so it stops where a
        cold start would.

    Returns
    -------
    LbfgsResult

    Examples
    --------
    >>> import torch
    >>> from sktail.training.solver import minimize_lbfgs
    >>> target = torch.tensor([1.0, -2.0])
    >>> result = minimize_lbfgs(lambda x: (float(((x - target) ** 2).sum()), 2 * (x - target)),
    ...                         torch.zeros(2), tol=1e-8)
    >>> result.converged, [round(v, 4) for v in result.x.tolist()]
    (True, [1.0, -2.0])
    """
    x = x0.clone()
    value, grad = fun(x)
    initial = _norm(grad) if reference is None else float(reference)
    if not math.isfinite(value) or not math.isfinite(initial):
        raise FloatingPointError("the head's objective is not finite at the starting point.")
    pairs: deque = deque(maxlen=history)
    n_iter = 0
    relative = 0.0 if initial == 0 else _norm(grad) / initial
    while relative > tol and n_iter < max_iter:
        direction = _two_loop(grad, pairs)
        slope = _dot(grad, direction)
        if not slope < 0:  # a bad curvature history: restart along the gradient
            pairs.clear()
            direction = -grad / max(_norm(grad), 1e-30)
            slope = _dot(grad, direction)
        step = 1.0 if pairs else min(1.0, 1.0 / max(_norm(grad), 1e-30))
        while True:
            candidate = x + step * direction
            new_value, new_grad = fun(candidate)
            # The float32 logits make f noisy at about 1e-7 of its size: within that noise a
            # step counts as a decrease, and the gradient tolerance decides when to stop.
            noise = 1e-6 * abs(value)
            if math.isfinite(new_value) and new_value <= value + 1e-4 * step * slope + noise:
                break
            step *= 0.5
            if step < 1e-12:
                return LbfgsResult(x, value, relative, n_iter, False)
        s, y = candidate - x, new_grad - grad
        sy = _dot(s, y)
        if sy > 1e-12 * _dot(y, y):
            pairs.append((s, y, 1.0 / sy))
        x, value, grad = candidate, new_value, new_grad
        n_iter += 1
        relative = _norm(grad) / initial
    return LbfgsResult(x, value, relative, n_iter, relative <= tol)


def _two_loop(grad, pairs):
    q = grad.clone()
    alphas = []
    for s, y, rho in reversed(pairs):
        alpha = rho * _dot(s, q)
        q.sub_(y, alpha=alpha)
        alphas.append(alpha)
    if pairs:
        s, y, _ = pairs[-1]
        q.mul_(_dot(s, y) / _dot(y, y))
    for (s, y, rho), alpha in zip(pairs, reversed(alphas)):
        beta = rho * _dot(y, q)
        q.add_(s, alpha=alpha - beta)
    return q.neg_()


def _as_tensor(block, device):
    """A scipy CSR matrix as a torch CSR tensor; an array as a float32 tensor."""
    if hasattr(block, "indptr"):
        return torch.sparse_csr_tensor(
            torch.from_numpy(block.indptr.astype(np.int64)), torch.from_numpy(block.indices.astype(np.int64)),
            torch.from_numpy(block.data.astype(np.float32, copy=False)), size=block.shape,
            device=device, check_invariants=False,
        )
    return torch.as_tensor(np.asarray(block, dtype=np.float32), device=device)


class PrimalDesign:
    """Logits ``sum_b s_b X_b W_b``: the unknown is ``W``, stacked over the blocks.

    Parameters
    ----------
    blocks : list of scipy.sparse.csr_matrix or ndarray
        Feature blocks of the same rows.
    scales : list of float
        Their scales ``s_b``.
    device : torch.device or str, default="cpu"
    """

    form = "primal"

    def __init__(self, blocks, scales, device="cpu"):
        self.scales = [float(s) for s in scales]
        self.widths = [int(b.shape[1]) for b in blocks]
        self.n_rows = int(blocks[0].shape[0])
        self._blocks = [_as_tensor(b, device) for b in blocks]
        # The transposes of sparse blocks as CSR too: X^T G is then a row-parallel product.
        self._transposed = [_as_tensor(b.T.tocsr(), device) if hasattr(b, "indptr") else None for b in blocks]
        self.n_params = sum(self.widths)

    def matmul(self, coef: torch.Tensor) -> torch.Tensor:
        """``X W`` for ``coef`` of shape (n_params, K)."""
        out, start = None, 0
        for block, scale, width in zip(self._blocks, self.scales, self.widths):
            part = block @ coef[start : start + width]
            out = part * scale if out is None else out.add_(part, alpha=scale)
            start += width
        return out

    def rmatmul(self, grad: torch.Tensor) -> torch.Tensor:
        """``X^T G`` for ``grad`` of shape (n_rows, K)."""
        parts = []
        for block, transposed, scale in zip(self._blocks, self._transposed, self.scales):
            part = (transposed @ grad) if transposed is not None else block.T @ grad
            parts.append(part.mul_(scale))
        return torch.cat(parts)

    def weights(self, coef: torch.Tensor) -> list:
        """The weights ``W_b`` of each block (before its scale) as arrays of shape (width, K)."""
        return [w.cpu().numpy() for w in torch.split(coef, self.widths)]


class KernelDesign:
    """The representer form ``W = X^T A`` of the same head, solved as ``z = L U`` (see the module).

    Parameters
    ----------
    grams : list of Tensor
        ``X_b X_b^T`` of each block over the training rows (float32, n x n).
    scales : list of float
        The scales ``s_b``: ``G = sum_b s_b^2 X_b X_b^T``.
    """

    form = "kernel"

    def __init__(self, grams, scales):
        self.scales = [float(s) for s in scales]
        gram = sum((s * s) * g for s, g in zip(self.scales, grams))
        ridge = 1e-6 * float(torch.diagonal(gram).double().mean()) + 1e-12
        gram.diagonal().add_(ridge)
        factor, info = torch.linalg.cholesky_ex(gram.double())
        if int(info) != 0:
            raise FloatingPointError("the head's kernel matrix is not positive definite.")
        self._factor = factor.to(torch.float32)
        self.n_rows = self.n_params = int(gram.shape[0])

    def matmul(self, coef: torch.Tensor) -> torch.Tensor:
        """``L U``."""
        return self._factor @ coef

    def rmatmul(self, grad: torch.Tensor) -> torch.Tensor:
        """``L^T G``."""
        return self._factor.T @ grad

    def dual(self, coef: torch.Tensor) -> torch.Tensor:
        """``A = L^{-T} U``, with ``W = X^T A``."""
        return torch.linalg.solve_triangular(self._factor.double().T, coef.double(), upper=True).float()


def design_form(n_rows: int, n_features: int, n_classes: int) -> str:
    """``"kernel"`` when an n x n matrix is smaller than L-BFGS's vectors in the primal, else ``"primal"``.

    Parameters
    ----------
    n_rows, n_features, n_classes : int

    Returns
    -------
    str
    """
    primal = (2 * HISTORY + 4) * n_features * n_classes
    kernel = 2 * n_rows * n_rows + (2 * HISTORY + 4) * n_rows * n_classes
    return "kernel" if kernel < primal else "primal"


@dataclass
class HeadSolution:
    """A solved head in the parametrisation of its design.

    Attributes
    ----------
    coef : Tensor of shape (n_params, K)
        ``W`` (primal) or ``U`` (kernel).
    bias : Tensor of shape (K,)
    value : float
        The objective at the solution.
    grad_norm : float
        Relative gradient norm reached.
    n_iter : int
        L-BFGS iterations.
    converged : bool
    """

    coef: torch.Tensor
    bias: torch.Tensor
    value: float
    grad_norm: float
    n_iter: int
    converged: bool


def solve_head(design, y, loss_fn, C: float, *, sample_weight=None, tol: float = 1e-4,
               max_iter: int = 500, init: HeadSolution | None = None, perturbation=None,
               warn: bool = True) -> HeadSolution:
    """Minimise ``F(W, b)`` (see the module) over one design.

    Parameters
    ----------
    design : PrimalDesign or KernelDesign
    y : Tensor of int64, shape (n_rows,)
        Class indices.
    loss_fn : AutoTailLoss
        Its offsets, log prior and weights define the loss.
    C : float
        Inverse regularisation strength.
    sample_weight : Tensor of shape (n_rows,), default=None
    tol : float, default=1e-4
        Stop when the gradient norm is at most ``tol`` times its norm at zero weights.
    max_iter : int, default=500
    init : HeadSolution, default=None
        Warm start (same design shape).
    perturbation : callable, default=None
        ``perturbation(coef, bias, logits, grad) -> (value, grad_logits, grad_coef)``:
        an extra term of the objective (FGM) in sums over rows; see
        :func:`sktail.training.solved_head.fgm_term`.
    warn : bool, default=True
        Issue a ``ConvergenceWarning`` with the tolerance reached when it is missed.

    Returns
    -------
    HeadSolution
    """
    n_classes = int(loss_fn.offsets.numel())
    n_params = design.n_params
    total = float(len(y)) if sample_weight is None else float(sample_weight.double().sum())
    penalty = 1.0 / (C * total)
    options = {"label_smoothing": loss_fn.label_smoothing, "bs_weight": loss_fn.bs_weight,
               "bs_temperature": loss_fn.bs_temperature, "sample_weight": sample_weight}

    def fun(theta):
        coef = theta[: n_params * n_classes].view(n_params, n_classes)
        bias = theta[n_params * n_classes :]
        logits = design.matmul(coef).add_(bias)
        value, grad_logits = autotail_value_and_grad(logits, y, loss_fn.offsets, loss_fn.log_prior, **options)
        extra = None
        if perturbation is not None:
            extra_value, extra_logits, extra = perturbation(coef, bias, logits, grad_logits)
            value += extra_value
            grad_logits = grad_logits.add_(extra_logits)
        grad_coef = design.rmatmul(grad_logits)
        if extra is not None:
            grad_coef.add_(extra)
        grad_coef.mul_(1.0 / total).add_(coef, alpha=penalty)
        value = value / total + 0.5 * penalty * _dot(coef.reshape(-1), coef.reshape(-1))
        return value, torch.cat([grad_coef.reshape(-1), grad_logits.sum(dim=0, dtype=torch.float64).float() / total])

    zero = torch.zeros(n_params * n_classes + n_classes, dtype=torch.float32, device=y.device)
    # The tolerance is relative to the gradient at zero weights, warm start or not.
    reference = _norm(fun(zero)[1])
    theta0 = zero if init is None else torch.cat([init.coef.reshape(-1), init.bias])
    result = minimize_lbfgs(fun, theta0, tol=tol, max_iter=max_iter, reference=reference)
    if not result.converged and warn:
        warnings.warn(
            f"the head's solver stopped after {result.n_iter} L-BFGS iterations at a relative "
            f"gradient norm of {result.grad_norm:.2e}, above tol={tol:g}; its weights are not "
            "at the optimum. Raise max_iter (solver_options) or lower C.",
            ConvergenceWarning, stacklevel=2,
        )
    coef = result.x[: n_params * n_classes].view(n_params, n_classes).clone()
    return HeadSolution(coef, result.x[n_params * n_classes :].clone(), result.value, result.grad_norm,
                        result.n_iter, result.converged)
