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
# The test networks are tiny: intra-op threads only add contention on small CI machines.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from sktail.datasets import make_long_tail_text  # noqa: E402

FAST_BAG = {"encoder": "jieba-bag", "epochs": 3, "batch_size": 16, "validation_fraction": None}


@pytest.fixture(scope="session", autouse=True)
def _sktail_home(tmp_path_factory):
    """sktail's cache folder (ONNX graphs, converted encoders) is a temporary one during the tests."""
    previous = os.environ.get("SKTAIL_HOME")
    os.environ["SKTAIL_HOME"] = str(tmp_path_factory.mktemp("sktail-home"))
    yield
    if previous is None:
        os.environ.pop("SKTAIL_HOME", None)
    else:
        os.environ["SKTAIL_HOME"] = previous


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
    # from_pretrained reads vocab.txt in transformers 4 and 5 alike (5's constructor
    # takes ``vocab=``, and silently ignores ``vocab_file=``, leaving 5 tokens).
    tokenizer = BertTokenizerFast.from_pretrained(path, do_lower_case=True, tokenize_chinese_chars=True)
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


def write_tiny_xlmr(path, *, hidden_size=32, num_layers=2):
    """Write an XLM-RoBERTa directory (Unigram character tokenizer, random weights).

    Like the real XLM-R the padding id is 1 and position ids count from
    ``padding_idx + 1``, so code that mishandles the padding id shows.

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
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizer

    path.mkdir(parents=True, exist_ok=True)
    chars = [c for c in _char_vocab() if not c.startswith("[")]
    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(c, -5.0) for c in chars] + [("<mask>", 0.0)]
    tokenizer = XLMRobertaTokenizer(vocab=pieces)
    tokenizer.save_pretrained(path)
    config = XLMRobertaConfig(
        vocab_size=len(pieces), hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=2, intermediate_size=2 * hidden_size, max_position_embeddings=130,
        type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    torch.manual_seed(0)
    XLMRobertaModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_xlmr_dir(tmp_path_factory):
    """A tiny random-weight XLM-RoBERTa directory (padding id 1)."""
    return write_tiny_xlmr(tmp_path_factory.mktemp("tiny-xlmr"))
