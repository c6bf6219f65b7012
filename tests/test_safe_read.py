"""Bounded member reads and the safetensors header parser used by ``load``."""

import hashlib
import io
import json
import zipfile

import pytest
import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from sktail._safe_read import read_member, safetensors_entries, tensors_from_buffer

TENSORS = {
    "a": torch.arange(12, dtype=torch.float32).reshape(3, 4),
    "b": torch.tensor([1, 2, 3], dtype=torch.int64),
    "c": torch.zeros(0, 5),
    "d": torch.tensor([1.5], dtype=torch.bfloat16),
}


def _raw(header, data=b""):
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)  # the data start 8-byte aligned, as safetensors writes them
    return len(raw).to_bytes(8, "little") + raw + data


def test_tensors_equal_safetensors_own_reader():
    data = safetensors_save(TENSORS, metadata={"format": "pt"})
    buffer = bytearray(data)
    entries = safetensors_entries(buffer, max_header_bytes=1 << 20)
    tensors = tensors_from_buffer(buffer, entries)
    expected = safetensors_load(data)
    assert tensors.keys() == expected.keys()
    for name, tensor in expected.items():
        assert tensors[name].dtype == tensor.dtype and torch.equal(tensors[name], tensor)


def test_misaligned_data_is_copied_not_misread():
    header = {"x": {"dtype": "F32", "shape": [2], "data_offsets": [1, 9]},
              "pad": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}
    payload = b"\x00" + torch.tensor([1.0, -2.0]).numpy().tobytes()
    buffer = bytearray(_raw(header, payload))
    entries = safetensors_entries(buffer, max_header_bytes=1 << 20)
    assert entries["x"].start % 4 == 1
    tensors = tensors_from_buffer(buffer, entries)
    assert tensors["x"].tolist() == [1.0, -2.0]


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x01\x02", "shorter than its 8-byte header length"),
        ((1 << 40).to_bytes(8, "little") + b"{}", "declares a 1099511627776-byte header"),
        (_raw({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\x00" * 4), "does not fit"),
        (_raw({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\x00" * 4), "does not fit"),
        (_raw({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\x00" * 4), "invalid shape"),
        (_raw({"x": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}, b"\x00" * 4), "invalid shape"),
        (_raw({"x": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\x00" * 8), "unsupported dtype"),
        (_raw({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "more": 1}}, b"\x00" * 4), "malformed"),
        (_raw({"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\x00" * 8), "overlap or leave gaps"),
        (_raw({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
               "y": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 4), "overlap or leave gaps"),
        (_raw({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 12), "bytes after its last"),
        (_raw([1, 2]), "not a JSON object"),
        (b"\x04\x00\x00\x00\x00\x00\x00\x00{{{{", "invalid header"),
    ],
    ids=["short", "huge-header", "past-the-end", "size-mismatch", "negative-dim", "float-dim", "dtype",
         "extra-key", "gap", "overlap", "trailing", "not-object", "not-json"],
)
def test_bad_headers_are_refused(raw, message):
    with pytest.raises(ValueError, match=message):
        safetensors_entries(bytearray(raw), max_header_bytes=1 << 20)


def test_a_huge_declared_shape_allocates_nothing():
    raw = _raw({"x": {"dtype": "F32", "shape": [1 << 30, 1 << 30], "data_offsets": [0, 4]}}, b"\x00" * 4)
    with pytest.raises(ValueError, match="does not fit"):
        safetensors_entries(bytearray(raw), max_header_bytes=1 << 20)


def _archive(members, compress=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compress) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    buffer.seek(0)
    return zipfile.ZipFile(buffer)


@pytest.mark.parametrize("compress", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_read_member_hashes_while_streaming(compress):
    data = bytes(range(256)) * 10_000  # several 1 MB chunks
    with _archive({"m.bin": data}, compress) as archive:
        content, digest = read_member(archive, archive.getinfo("m.bin"))
        assert content == data and digest == hashlib.sha256(data).hexdigest()
        content, _ = read_member(archive, archive.getinfo("m.bin"), into_bytearray=True)
        assert isinstance(content, bytearray) and content == data


def test_read_member_stops_at_the_declared_size():
    with _archive({"m.json": b"{}" + b" " * 100_000}) as archive:
        info = archive.getinfo("m.json")
        info.file_size = 2  # a header that lies: the stream inflates to far more
        with pytest.raises((ValueError, zipfile.BadZipFile)):
            read_member(archive, info)
