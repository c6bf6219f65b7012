"""Bounded reading of untrusted model-file members: zip entries and safetensors weights.

Nothing here trusts a size it has not checked: a zip member is read in chunks,
hashed as it streams and never past its declared (and already bounded) size,
and a safetensors buffer is turned into tensors only after its header has been
parsed and checked against the buffer's length, without copying the data.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct

import torch

__all__ = ["MAX_ABS_WEIGHT", "SafetensorsEntry", "check_finite_tensors", "read_member", "safetensors_entries",
           "tensors_from_buffer"]

_CHUNK = 1 << 20

#: safetensors dtype names and the torch dtypes they are read as.
_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}


def read_member(archive, info, *, into_bytearray: bool = False):
    """Read one zip member in chunks, never more than its declared size.

    Parameters
    ----------
    archive : zipfile.ZipFile
        The open archive.
    info : zipfile.ZipInfo
        The member; its ``file_size`` must already be checked against a limit.
    into_bytearray : bool, default=False
        Return a preallocated ``bytearray`` (writable, so tensors can share
        it) instead of ``bytes``.

    Returns
    -------
    data : bytes or bytearray
        The member's content.
    sha256 : str
        Hex digest of the content, computed while reading.

    Raises
    ------
    ValueError
        If the member holds fewer or more bytes than its header declares.
    """
    size = info.file_size
    buffer = bytearray(size)
    view = memoryview(buffer)
    digest = hashlib.sha256()
    position = 0
    with archive.open(info) as handle:
        while position < size:
            chunk = handle.read(min(_CHUNK, size - position))
            if not chunk:
                break
            view[position:position + len(chunk)] = chunk
            digest.update(chunk)
            position += len(chunk)
        extra = handle.read(1)  # zipfile stops at the declared size; make sure of it
    view.release()
    if position != size or extra:
        raise ValueError(f"{info.filename} does not hold the {size} bytes its zip header declares.")
    return (buffer if into_bytearray else bytes(buffer)), digest.hexdigest()


class SafetensorsEntry:
    """One tensor of a safetensors header: dtype, shape and byte range in the buffer.

    Parameters
    ----------
    dtype : torch.dtype
        Element type.
    shape : tuple of int
        Shape.
    start, end : int
        Byte range of the data in the whole buffer (header included).
    """

    __slots__ = ("dtype", "shape", "start", "end")

    def __init__(self, dtype, shape, start, end):
        self.dtype, self.shape, self.start, self.end = dtype, shape, start, end


def safetensors_entries(buffer, *, max_header_bytes: int) -> dict:
    """Parse and check a safetensors header without touching the tensor data.

    Parameters
    ----------
    buffer : bytes-like
        The whole safetensors file.
    max_header_bytes : int
        Largest JSON header accepted.

    Returns
    -------
    dict of str to SafetensorsEntry
        Tensor name -> entry, in header order.

    Raises
    ------
    ValueError
        If the header is longer than the limit or the buffer, is not a JSON
        object of valid entries, or the byte ranges do not tile the data
        exactly (gaps, overlaps, sizes that disagree with dtype and shape).
    """
    if len(buffer) < 8:
        raise ValueError("network.safetensors is shorter than its 8-byte header length.")
    (header_size,) = struct.unpack("<Q", bytes(buffer[:8]))
    if header_size > min(max_header_bytes, len(buffer) - 8):
        raise ValueError(
            f"network.safetensors declares a {header_size}-byte header (limit {max_header_bytes}, "
            f"file {len(buffer)} bytes)."
        )
    try:
        header = json.loads(bytes(buffer[8:8 + header_size]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"network.safetensors has an invalid header: {error}") from None
    if not isinstance(header, dict):
        raise ValueError("network.safetensors has an invalid header: not a JSON object.")
    header.pop("__metadata__", None)
    base = 8 + header_size
    entries, ranges = {}, []
    for name, spec in header.items():
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"network.safetensors: the header entry {name!r} is malformed.")
        dtype = _DTYPES.get(spec["dtype"]) if isinstance(spec["dtype"], str) else None
        shape, offsets = spec["shape"], spec["data_offsets"]
        if dtype is None:
            raise ValueError(f"network.safetensors: {name!r} has the unsupported dtype {spec['dtype']!r}.")
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            raise ValueError(f"network.safetensors: {name!r} has an invalid shape {shape!r}.")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
            raise ValueError(f"network.safetensors: {name!r} has invalid data offsets {offsets!r}.")
        begin, end = offsets
        nbytes = math.prod(shape) * dtype.itemsize
        if not 0 <= begin <= end <= len(buffer) - base or end - begin != nbytes:
            raise ValueError(
                f"network.safetensors: {name!r} ({spec['dtype']} {shape}, {nbytes} bytes) does not fit "
                f"its data range {offsets} in {len(buffer) - base} bytes of data."
            )
        entries[name] = SafetensorsEntry(dtype, tuple(shape), base + begin, base + end)
        ranges.append((begin, end))
    position = 0
    for begin, end in sorted(ranges):
        if begin != position:
            raise ValueError("network.safetensors: the tensors' data ranges overlap or leave gaps.")
        position = end
    if position != len(buffer) - base:
        raise ValueError("network.safetensors has bytes after its last tensor.")
    return entries


def tensors_from_buffer(buffer: bytearray, entries: dict) -> dict:
    """Tensors that share ``buffer``'s memory (copied only where misaligned).

    Parameters
    ----------
    buffer : bytearray
        The safetensors file, checked by :func:`safetensors_entries`.
    entries : dict of str to SafetensorsEntry
        Its parsed header.

    Returns
    -------
    dict of str to torch.Tensor
        Little-endian data read in place; they keep ``buffer`` alive.
    """
    tensors = {}
    for name, entry in entries.items():
        count = entry.end - entry.start
        if count == 0:
            tensors[name] = torch.empty(entry.shape, dtype=entry.dtype)
            continue
        if entry.start % entry.dtype.itemsize:  # only a hand-made file is misaligned
            source = bytearray(buffer[entry.start:entry.end])
            flat = torch.frombuffer(source, dtype=entry.dtype)
        else:
            flat = torch.frombuffer(buffer, dtype=entry.dtype, count=count // entry.dtype.itemsize, offset=entry.start)
        tensors[name] = flat.view(entry.shape)
    return tensors


#: Largest magnitude a stored weight may have. Trained weights stay many orders below it;
#: float32 products of larger ones overflow, and the model would predict ``classes_[0]`` everywhere.
MAX_ABS_WEIGHT = 1e15


def check_finite_tensors(tensors: dict) -> None:
    """Refuse floating-point tensors holding NaN, infinities or values beyond :data:`MAX_ABS_WEIGHT`.

    One pass per tensor (``torch.aminmax``), no copies.

    Parameters
    ----------
    tensors : dict of str to Tensor
        The weights read from a model file.

    Raises
    ------
    ValueError
        Naming the first offending tensor and its bad value.
    """
    for name, tensor in tensors.items():
        if not tensor.is_floating_point() or tensor.numel() == 0:
            continue
        low, high = (float(v) for v in torch.aminmax(tensor))
        if not (-MAX_ABS_WEIGHT <= low and high <= MAX_ABS_WEIGHT):  # NaN compares False
            bad = low if not -MAX_ABS_WEIGHT <= low else high
            what = "NaN" if bad != bad else f"{bad:g}"
            raise ValueError(
                f"the weight {name} holds {what}; stored weights must be finite and within "
                f"+-{MAX_ABS_WEIGHT:g}, or every prediction would be non-finite."
            )
