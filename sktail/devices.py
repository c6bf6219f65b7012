"""Devices and numeric precision: where a network runs and in which dtype.

Training and inference resolve ``precision`` differently. Training
(:func:`resolve_precision`) keeps fp32 on the CPU. Inference
(:func:`resolve_inference_precision`) picks, for ``"auto"`` on a CPU, the
fastest faithful path the CPU and the installed packages allow: bf16 on CPUs
with native bf16 instructions, ONNX Runtime with int8 weights
(``"onnx-int8"``, ``pip install "sktail[fast]"``) for Hugging Face encoders on
x86 CPUs with AVX2, fp32 otherwise (``docs/speed.md``).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import torch

__all__ = [
    "INFERENCE_PATHS",
    "InferencePrecision",
    "autocast",
    "cpu_features",
    "resolve_device",
    "resolve_inference_precision",
    "resolve_precision",
]

#: Every inference path :class:`InferencePrecision` accepts.
INFERENCE_PATHS = ("fp32", "bf16", "fp16", "onnx-fp32", "onnx-int8")


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
    precision : {"auto", "fp32", "bf16", "fp16", "int8"}
        ``"auto"``: bf16 on CUDA devices that support it, fp16 with a gradient
        scaler on other CUDA devices, fp32 elsewhere. ``"int8"`` is an
        inference path only: training runs in fp32.
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
    if precision in ("fp32", "int8"):
        return None, False
    if precision == "bf16":
        return torch.bfloat16, False
    if precision == "fp16":
        return torch.float16, device.type == "cuda"
    raise ValueError(f"precision must be 'auto', 'fp32', 'bf16', 'fp16' or 'int8', got {precision!r}.")


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


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset:
    """Instruction-set flags of this CPU (torch's cpuinfo, else ``/proc/cpuinfo``)."""
    get = getattr(getattr(torch, "cpu", None), "get_capabilities", None)
    if get is not None:
        try:
            return frozenset(name for name, value in get().items() if value is True)
        except Exception:  # noqa: BLE001 - any failure: fall back to the file
            pass
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_features() -> dict:
    """What this CPU offers for fast inference.

    Returns
    -------
    dict
        ``capability``: torch's vector width (``torch.backends.cpu.get_cpu_capability()``,
        e.g. ``"AVX2"``, ``"AVX512"``, ``"DEFAULT"``); ``native_bf16``: whether
        the CPU has bf16 instructions (``avx512_bf16`` or ``amx_bf16``);
        ``int8``: whether the CPU has the vector instructions ONNX Runtime's
        int8 kernels were checked on (x86 AVX2 or wider); ``vnni``: whether it
        has int8 dot-product instructions (``avx512_vnni``/``avx_vnni``/AMX).
    """
    flags = _cpu_flags()
    capability = _cpu_capability()
    return {
        "capability": capability,
        "native_bf16": bool(flags & {"avx512_bf16", "amx_bf16"}),
        "int8": capability in ("AVX2", "AVX512"),
        "vnni": bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"}),
    }


def _cpu_capability() -> str:
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "DEFAULT"


@dataclass(frozen=True)
class InferencePrecision:
    """One way of running a network forward without training.

    Parameters
    ----------
    name : {"fp32", "bf16", "fp16", "onnx-fp32", "onnx-int8"}
        ``"fp32"``, ``"bf16"``, ``"fp16"``: torch, under autocast for the last
        two. ``"onnx-fp32"``: the encoder exported to ONNX Runtime, fp32 with
        its graph fusions. ``"onnx-int8"``: the same with int8 weights (per
        output channel) on the attention projections, the feed-forward layers
        kept in fp32 (see :mod:`sktail._onnx` and ``docs/speed.md``).

    Attributes
    ----------
    name : str
        The path, one of :data:`INFERENCE_PATHS`.

    See Also
    --------
    resolve_inference_precision : Which path ``precision="auto"`` takes.

    Examples
    --------
    >>> from sktail.devices import InferencePrecision
    >>> path = InferencePrecision("bf16")
    >>> path.runtime, path.autocast_dtype
    ('torch', torch.bfloat16)
    >>> InferencePrecision("onnx-int8").runtime
    'onnxruntime'
    """

    name: str

    def __post_init__(self):
        if self.name not in INFERENCE_PATHS:
            raise ValueError(f"inference precision must be one of {INFERENCE_PATHS}, got {self.name!r}.")

    @property
    def runtime(self) -> str:
        """``"onnxruntime"`` for the ONNX paths, else ``"torch"``."""
        return "onnxruntime" if self.name.startswith("onnx-") else "torch"

    @property
    def autocast_dtype(self):
        """The torch autocast dtype, or None (full precision or ONNX Runtime)."""
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def cache_tag(self) -> str:
        """What features computed this way depend on (part of the feature-cache key).

        The torch paths keep the tag of earlier releases (``"autocast=<dtype>"``);
        the ONNX paths add the runtime's version, the quantisation recipe and
        whether the CPU has int8 dot-product instructions.
        """
        if self.runtime == "torch":
            return f"autocast={self.autocast_dtype}"
        from ._onnx import cache_tag

        return cache_tag(self.name, vnni=cpu_features()["vnni"])


def resolve_inference_precision(precision, device: torch.device, network=None) -> InferencePrecision:
    """The inference path for a ``precision`` setting.

    Parameters
    ----------
    precision : {"auto", "fp32", "bf16", "fp16", "int8"} or InferencePrecision
        The estimator's ``precision``. ``"auto"``: on CUDA as in training (bf16
        where supported, else fp16); on a CPU, bf16 when the CPU has native
        bf16 instructions, else fp32; other devices: fp32. ``"int8"``: ONNX
        Runtime with the smoothed int8 recipe (``"onnx-int8"``), on the CPU, for
        a Hugging Face encoder of a checked architecture; it is faster but not
        exact (``docs/speed.md``), so it is never chosen for you. Other values
        are used as given.
    device : torch.device
        Where the network runs.
    network : torch.nn.Module, default=None
        The encoder network (or the classifier network holding it as
        ``.encoder``); ``"int8"`` checks that it can be exported.

    Returns
    -------
    InferencePrecision
        The chosen path (``precision`` itself when it is one already).

    Raises
    ------
    ValueError
        For ``"int8"`` off the CPU or with a network ONNX Runtime cannot run.
    ImportError
        For ``"int8"`` without ONNX Runtime installed.
    """
    if isinstance(precision, InferencePrecision):
        return precision
    if precision == "auto":
        if device.type == "cuda":
            return InferencePrecision("bf16" if torch.cuda.is_bf16_supported() else "fp16")
        if device.type == "cpu" and cpu_features()["native_bf16"]:
            return InferencePrecision("bf16")
        return InferencePrecision("fp32")
    if precision == "int8":
        from ._onnx import MODEL_TYPES, available, supports

        if device.type != "cpu":
            raise ValueError(f"precision='int8' runs on the CPU only, not on {device}.")
        if not available():
            raise ImportError('precision="int8" needs ONNX Runtime: pip install "sktail[fast]"')
        if network is None or not supports(network):
            raise ValueError(
                f"precision='int8' needs a Hugging Face encoder network of a type in {sorted(MODEL_TYPES)} "
                f"(e5-small, macbert-base, ...); got {type(network).__name__}.")
        return InferencePrecision("onnx-int8")
    if precision in ("fp32", "bf16", "fp16"):
        return InferencePrecision(precision)
    raise ValueError(f"precision must be 'auto', 'fp32', 'bf16', 'fp16' or 'int8', got {precision!r}.")
