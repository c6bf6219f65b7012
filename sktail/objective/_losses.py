"""The AutoTail-BSFGM supervised loss (docs/method.md §1, §4, §5).

Each term has a pure core that takes tensors and returns a tensor, so it can be
tested against hand-computed numbers without a model. :class:`AutoTailLoss`
composes them with the per-class constants of one training set.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AutoTailLoss", "autotail_value_and_grad", "balanced_softmax_loss", "smoothed_cross_entropy"]


def _weighted_mean(losses: torch.Tensor, sample_weight: torch.Tensor | None) -> torch.Tensor:
    if sample_weight is None:
        return losses.mean()
    sample_weight = sample_weight.to(losses.dtype)
    return (losses * sample_weight).sum() / sample_weight.sum().clamp_min(torch.finfo(losses.dtype).tiny)


def smoothed_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    epsilon: float = 0.05,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Label-smoothed cross-entropy ``CE_smooth(z, y; eps)``.

    The target distribution is ``(1 - eps) * onehot(y) + eps / K``.

    Parameters
    ----------
    logits : Tensor of shape (n_samples, n_classes)
        Logits, already shifted by any prior offsets.
    target : LongTensor of shape (n_samples,)
        Class indices.
    epsilon : float, default=0.05
        Smoothing mass spread uniformly over the K classes.
    sample_weight : Tensor of shape (n_samples,), default=None
        Per-example weights; the loss is their weighted mean.

    Returns
    -------
    Tensor
        Scalar loss.
    """
    losses = F.cross_entropy(logits.float(), target, reduction="none", label_smoothing=epsilon)
    return _weighted_mean(losses, sample_weight)


def balanced_softmax_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    log_prior: torch.Tensor,
    temperature: float = 0.25,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Tempered Balanced Softmax ``CE(z + lambda_b * log(max(n, 1)), y)``.

    Parameters
    ----------
    logits : Tensor of shape (n_samples, n_classes)
        Raw logits ``z``.
    target : LongTensor of shape (n_samples,)
        Class indices.
    log_prior : Tensor of shape (n_classes,)
        ``log(max(n_k, 1))``: a class absent from the training rows gets offset 0.
    temperature : float, default=0.25
        ``lambda_b``; 1 gives Ren et al.'s Balanced Softmax.
    sample_weight : Tensor of shape (n_samples,), default=None
        Per-example weights; the loss is their weighted mean.

    Returns
    -------
    Tensor
        Scalar loss, without label smoothing.

    References
    ----------
    Ren et al., "Balanced Meta-Softmax for Long-Tailed Visual Recognition",
    NeurIPS 2020.
    """
    shifted = logits.float() + temperature * log_prior.to(logits.device, torch.float32)
    losses = F.cross_entropy(shifted, target, reduction="none")
    return _weighted_mean(losses, sample_weight)


def _softmax_and_logsumexp(shifted: torch.Tensor):
    top = shifted.max(dim=1, keepdim=True).values
    exp = torch.exp(shifted - top)
    total = exp.sum(dim=1, keepdim=True)
    return exp / total, (torch.log(total) + top).squeeze(1)


def autotail_value_and_grad(
    logits: torch.Tensor,
    target: torch.Tensor,
    offsets: torch.Tensor,
    log_prior: torch.Tensor,
    *,
    label_smoothing: float = 0.05,
    bs_weight: float = 0.1,
    bs_temperature: float = 0.25,
    sample_weight: torch.Tensor | None = None,
):
    r"""The weighted *sum* of the per-row losses of :class:`AutoTailLoss` and its gradient in closed form.

    For one row, with :math:`p = \mathrm{softmax}(z + \tau m)`,
    :math:`p' = \mathrm{softmax}(z + \lambda_b \log \max(n, 1))` and the smoothed
    target :math:`q = (1 - \varepsilon)\,\mathrm{onehot}(y) + \varepsilon / K`,

    .. math::

        \partial L / \partial z = (1 - w_b)(p - q) + w_b (p' - \mathrm{onehot}(y)).

    Full-batch solvers use it: no autograd graph is kept over the rows.

    Parameters
    ----------
    logits : Tensor of shape (n_samples, n_classes)
        Raw logits ``z`` (float32).
    target : LongTensor of shape (n_samples,)
        Class indices.
    offsets : Tensor of shape (n_classes,)
        ``tau * m`` (zeros when the gate is off).
    log_prior : Tensor of shape (n_classes,)
        ``log(max(n_k, 1))``.
    label_smoothing, bs_weight, bs_temperature : float
        ``eps``, ``w_b`` and ``lambda_b``, as for :class:`AutoTailLoss`.
    sample_weight : Tensor of shape (n_samples,), default=None
        Per-row weights (1 when None).

    Returns
    -------
    value : float
        ``sum_i w_i L_i``, reduced in float64.
    grad : Tensor of shape (n_samples, n_classes)
        ``w_i dL_i / dz_i`` in the dtype of ``logits``.

    Examples
    --------
    >>> import torch
    >>> from sktail.objective import AutoTailLoss, autotail_value_and_grad
    >>> loss = AutoTailLoss(torch.tensor([0.0, -0.3]), [8, 2])
    >>> z, y = torch.tensor([[1.0, 0.0], [0.2, 0.4]]), torch.tensor([0, 1])
    >>> value, grad = autotail_value_and_grad(z, y, loss.offsets, loss.log_prior)
    >>> round(value / 2, 5) == round(loss(z, y).item(), 5)
    True
    """
    n, k = logits.shape
    rows = torch.arange(n, device=logits.device)
    weight = None if sample_weight is None else sample_weight.to(logits.dtype)
    p, lse = _softmax_and_logsumexp(logits + offsets.to(logits.dtype))
    shifted_true = logits[rows, target] + offsets.to(logits.dtype)[target]
    # CE against q: lse - (1 - eps) z_y - eps * mean_k z_k (all on shifted logits).
    mean_shifted = (logits + offsets.to(logits.dtype)).mean(dim=1)
    per_row = lse - (1.0 - label_smoothing) * shifted_true - label_smoothing * mean_shifted
    grad = p
    grad -= label_smoothing / k
    grad[rows, target] -= 1.0 - label_smoothing
    if bs_weight:
        balanced_logits = logits + bs_temperature * log_prior.to(logits.dtype)
        p_bs, lse_bs = _softmax_and_logsumexp(balanced_logits)
        per_row = (1.0 - bs_weight) * per_row + bs_weight * (lse_bs - balanced_logits[rows, target])
        p_bs[rows, target] -= 1.0
        grad.mul_(1.0 - bs_weight).add_(p_bs, alpha=bs_weight)
    if weight is not None:
        per_row = per_row * weight
        grad.mul_(weight[:, None])
    return float(per_row.double().sum()), grad


class AutoTailLoss(nn.Module):
    r"""The AutoTail-BSFGM supervised loss for one training set.

    .. math::

        L = (1 - w_b)\,\mathrm{CE}_\varepsilon(z + \tau m, y)
            + w_b\,\mathrm{CE}(z + \lambda_b \log \max(n, 1), y)

    Parameters
    ----------
    offsets : array-like of shape (n_classes,)
        ``tau * m_k`` from :func:`sktail.objective.compute_tail_prior`
        (all zeros when the gate is off).
    class_counts : array-like of shape (n_classes,)
        Training counts ``n_k``.
    label_smoothing : float, default=0.05
        ``eps`` of the smoothed term.
    bs_weight : float, default=0.1
        ``w_b``; 0 drops the Balanced Softmax term.
    bs_temperature : float, default=0.25
        ``lambda_b``.

    See Also
    --------
    smoothed_cross_entropy : The label-smoothed term.
    balanced_softmax_loss : The Balanced Softmax term.
    sktail.objective.compute_tail_prior : Computes ``offsets``.

    Notes
    -----
    With zero offsets and ``bs_weight=0`` this is the label-smoothed baseline;
    with ``label_smoothing=0`` as well it is plain cross-entropy. The convex mix
    follows the authors' code (``docs/method.md`` §5), and so does the
    Balanced Softmax offset ``log(max(n_k, 1))`` (§4, Ren et al.'s form): the
    prior's smoothing ``alpha`` does not enter it.

    References
    ----------
    "AutoTail-BSFGM: Class-Balance-Aware Fine-Tuning for Chinese Scholarly Text
    Classification", arXiv 2606.03576, 2026.

    Examples
    --------
    >>> import torch
    >>> from sktail.objective import AutoTailLoss, compute_tail_prior
    >>> counts = [40, 9, 2]
    >>> loss = AutoTailLoss(compute_tail_prior(counts).offsets, counts)
    >>> logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, -0.3]])
    >>> round(loss(logits, torch.tensor([0, 2])).item(), 4)
    0.9523
    """

    def __init__(
        self,
        offsets,
        class_counts,
        *,
        label_smoothing: float = 0.05,
        bs_weight: float = 0.1,
        bs_temperature: float = 0.25,
    ):
        super().__init__()
        self.label_smoothing = float(label_smoothing)
        self.bs_weight = float(bs_weight)
        self.bs_temperature = float(bs_temperature)
        counts = np.asarray(class_counts, dtype=np.float64)
        self.register_buffer("offsets", torch.as_tensor(np.asarray(offsets), dtype=torch.float32))
        self.register_buffer("log_prior", torch.as_tensor(np.log(np.maximum(counts, 1.0)), dtype=torch.float32))

    def forward(self, logits, target, sample_weight=None):
        """Compute the loss of a batch.

        Parameters
        ----------
        logits : Tensor of shape (n_samples, n_classes)
            Raw logits ``z``.
        target : LongTensor of shape (n_samples,)
            Class indices.
        sample_weight : Tensor of shape (n_samples,), default=None
            Per-example weights.

        Returns
        -------
        Tensor
            Scalar loss.
        """
        smoothed = smoothed_cross_entropy(
            logits.float() + self.offsets, target, self.label_smoothing, sample_weight
        )
        if self.bs_weight == 0:
            return smoothed
        balanced = balanced_softmax_loss(
            logits, target, self.log_prior, self.bs_temperature, sample_weight
        )
        return (1.0 - self.bs_weight) * smoothed + self.bs_weight * balanced
