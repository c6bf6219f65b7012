"""Shared fixtures: a synthetic long-tailed corpus and tiny local transformer models.

Nothing here touches the network: model directories are written to temporary
folders from small configs with random weights.
"""

from __future__ import annotations

import copy
import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from sktail.datasets import make_long_tail_text  # noqa: E402

FAST_BAG = {"epochs": 3, "batch_size": 16, "validation_fraction": None}


@pytest.fixture(scope="session")
def _long_tail_corpus():
    return make_long_tail_text((40, 20, 10, 5, 3), n_keywords=2, noise=0.0, random_state=0)


@pytest.fixture
def long_tail_corpus(_long_tail_corpus):
    """``(texts, labels)`` with class counts 40/20/10/5/3 (a fresh copy per test)."""
    return copy.deepcopy(_long_tail_corpus)


def _char_vocab():
    import string

    from sktail.datasets import make_long_tail_text

    texts, _ = make_long_tail_text((30,) * 13, random_state=1)
    chars = sorted(set("".join(texts)) | set(string.ascii_lowercase + string.digits))
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]


def write_tiny_bert(path, *, hidden_size=32, num_layers=2):
    """Write a BERT directory (config, random weights, character vocab) to ``path``.

    Parameters
    ----------
    path : pathlib.Path
        Target directory (created).
    hidden_size : int, default=32
        Width of the model.
    num_layers : int, default=2
        Transformer layers.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = _char_vocab()
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # transformers 5 takes the vocabulary as ``vocab``; ``vocab_file`` is silently ignored
    # and would leave a tokenizer that maps every character to [UNK].
    tokenizer = BertTokenizerFast(vocab=str(path / "vocab.txt"), do_lower_case=True, tokenize_chinese_chars=True)
    if len(tokenizer) != len(vocab):
        raise RuntimeError(f"tiny BERT tokenizer has {len(tokenizer)} tokens, expected {len(vocab)}")
    tokenizer.save_pretrained(path)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=2, intermediate_size=2 * hidden_size, max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    json.loads((path / "config.json").read_text())  # written and parseable
    return path


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    """A tiny random-weight BERT directory with a character vocabulary."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
