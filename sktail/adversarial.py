"""Fast Gradient Method (FGM) adversarial training on word embeddings (docs/method.md §6)."""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch

__all__ = ["FGM", "fgm_perturbation"]

#: Largest FGM radius accepted. The paper uses 0.3; every entry of the perturbation is at
#: most ``epsilon``, so a bound keeps the perturbed embeddings (and their squares in layer
#: norms) far inside float32, where a radius like ``1e300`` would make them infinite. The
#: smallest non-zero float32 norm is about 4e-23, so ``epsilon / norm`` stays finite too.
MAX_FGM_EPSILON = 1e4


def check_fgm_epsilon(epsilon) -> float:
    """``epsilon`` as a float, checked to be a finite radius in ``[0, MAX_FGM_EPSILON]``.

    Parameters
    ----------
    epsilon : float
        The FGM radius (``fgm_epsilon``).

    Returns
    -------
    float
        ``epsilon``, as a float.

    Raises
    ------
    ValueError
        Naming ``fgm_epsilon`` when it is negative, not finite or above
        :data:`MAX_FGM_EPSILON`.
    """
    value = float(epsilon)
    if not (math.isfinite(value) and 0 <= value <= MAX_FGM_EPSILON):
        raise ValueError(
            f"fgm_epsilon={epsilon!r} is outside [0, {MAX_FGM_EPSILON:g}]: the FGM perturbation of the "
            "word embeddings would overflow float32 and make the loss non-finite. The method uses 0.3; "
            "0 switches FGM off."
        )
    return value


def fgm_perturbation(grad: torch.Tensor, epsilon: float) -> torch.Tensor | None:
    """The FGM step ``r = eps * g / ||g||_2`` with one norm over the whole matrix.

    Parameters
    ----------
    grad : Tensor
        Gradient of the loss with respect to the embedding matrix.
    epsilon : float
        Radius of the perturbation.

    Returns
    -------
    Tensor or None
        The perturbation, or None when the norm is zero or not finite (the
        step is then skipped).
    """
    norm = torch.linalg.vector_norm(grad.float())
    # One host sync per step: the skip rule needs the norm's value.
    norm_value = float(norm)
    if norm_value == 0.0 or not math.isfinite(norm_value):
        return None
    return (epsilon / norm_value) * grad.to(torch.float32)


class FGM:
    """Perturb an embedding matrix along its gradient, then restore it bit-exactly.

    Parameters
    ----------
    embedding : torch.nn.Parameter
        The encoder's input word-embedding matrix ``E``.
    epsilon : float
        ``eps_fgm``; 0 disables the attack. At most :data:`MAX_FGM_EPSILON`
        (a ``ValueError`` names ``fgm_epsilon`` otherwise).

    See Also
    --------
    fgm_perturbation : The step ``r``.

    Notes
    -----
    ``r = eps * g / ||g||_2`` where ``g = dL/dE`` is the gradient held after the
    clean backward pass. Inside :meth:`perturb`, ``E <- E + r``; on exit ``E``
    is copied back from a saved copy, never by subtracting ``r``, so no
    rounding drift can accumulate.

    References
    ----------
    Miyato, Dai and Goodfellow, "Adversarial Training Methods for
    Semi-Supervised Text Classification", ICLR 2017.

    Examples
    --------
    >>> import torch
    >>> emb = torch.nn.Embedding(4, 2)
    >>> emb(torch.tensor([1])).sum().backward()
    >>> before = emb.weight.detach().clone()
    >>> fgm = FGM(emb.weight, epsilon=0.3)
    >>> with fgm.perturb() as applied:
    ...     bool(applied), bool(torch.equal(emb.weight, before))
    (True, False)
    >>> bool(torch.equal(emb.weight, before))
    True
    """

    def __init__(self, embedding: torch.nn.Parameter, epsilon: float):
        self.embedding = embedding
        self.epsilon = check_fgm_epsilon(epsilon)

    @property
    def enabled(self) -> bool:
        """Whether the attack is switched on (``epsilon > 0``)."""
        return self.epsilon > 0

    @contextmanager
    def perturb(self, grad: torch.Tensor | None = None):
        """Add the FGM perturbation for the duration of the ``with`` block.

        Parameters
        ----------
        grad : Tensor, default=None
            Gradient to use; defaults to ``embedding.grad``.

        Yields
        ------
        bool
            True if the embeddings were perturbed, False if the step was
            skipped (FGM off, no gradient, zero or non-finite norm).
        """
        grad = self.embedding.grad if grad is None else grad
        r = None
        if self.enabled and grad is not None:
            r = fgm_perturbation(grad.to_dense() if grad.is_sparse else grad, self.epsilon)
        if r is None:
            yield False
            return
        weight = self.embedding.data
        backup = weight.clone()
        weight.add_(r.to(weight.dtype))
        del r
        try:
            yield True
        finally:
            weight.copy_(backup)
