"""Devices and numeric precision: where a network runs and in which dtype."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["autocast", "resolve_device", "resolve_precision"]


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU.

    Parameters
    ----------
    device : str, default="auto"
        ``"auto"`` or any string accepted by :class:`torch.device`.

    Returns
    -------
    torch.device
        The device to run on.

    Raises
    ------
    ValueError
        If ``device`` is not a valid torch device, or names CUDA while CUDA is
        not available.
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device={device!r} is not a valid torch device: {error}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    return resolved


def resolve_precision(precision: str, device: torch.device):
    """Choose the autocast dtype and whether a gradient scaler is needed.

    Parameters
    ----------
    precision : {"auto", "fp32", "bf16", "fp16"}
        ``"auto"``: bf16 on CUDA devices that support it, fp16 with a gradient
        scaler on other CUDA devices, fp32 elsewhere.
    device : torch.device
        The training device.

    Returns
    -------
    dtype : torch.dtype or None
        Autocast dtype; None means full fp32.
    use_scaler : bool
        True for fp16 on CUDA.
    """
    if precision == "auto":
        if device.type != "cuda":
            return None, False
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp32":
        return None, False
    if precision == "bf16":
        return torch.bfloat16, False
    if precision == "fp16":
        return torch.float16, device.type == "cuda"
    raise ValueError(f"precision must be 'auto', 'fp32', 'bf16' or 'fp16', got {precision!r}.")


def autocast(device: torch.device, dtype):
    """Mixed-precision context for ``device``; a no-op when ``dtype`` is None.

    Parameters
    ----------
    device : torch.device
        Where the computation runs.
    dtype : torch.dtype or None
        Autocast dtype, from :func:`resolve_precision`.

    Returns
    -------
    contextlib.AbstractContextManager
        :func:`torch.autocast` for ``device`` and ``dtype``, or a
        :func:`contextlib.nullcontext`.
    """
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
