"""The encoder registry: a family added in one file, names, options and typos."""

import numpy as np
import pytest
import torch
from torch import nn

from sktail import AutoTailClassifier, load
from sktail.encoders import EncoderFamily, EncoderNetwork, TextEncoder, _registry, register
from sktail.encoders._registry import family_of, get_family, make_encoder


# -- a whole encoder family in this one file -------------------------------------------
class CharCountNetwork(EncoderNetwork):
    """Embeds character ids and sums them."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.table = nn.EmbeddingBag(vocab_size, dim, mode="mean")
        self.hidden_size = dim

    def forward(self, batch):
        return self.table(batch["ids"], batch["offsets"])

    def input_embeddings(self):
        return self.table.weight


class CharCountEncoder(TextEncoder):
    """Characters as tokens; vocabulary learnt in fit."""

    defaults = {"max_length": 64, "epochs": 15, "batch_size": 8, "learning_rate": 5e-2}

    def __init__(self, dim=8):
        self.dim = dim
        self.chars = None

    def fit_tokenize(self, texts, max_length):
        self.chars = ["<unk>", *sorted(set("".join(texts)))]
        return self.tokenize(texts, max_length)

    def tokenize(self, texts, max_length):
        index = {c: i for i, c in enumerate(self.chars)}
        return [np.array([index.get(c, 0) for c in text[:max_length]] or [0], dtype=np.int64) for text in texts]

    def collate(self, ids):
        offsets = np.cumsum([0] + [len(a) for a in ids[:-1]])
        return {"ids": torch.from_numpy(np.concatenate(ids)), "offsets": torch.from_numpy(offsets)}

    def build_network(self, *, pretrained=True):
        return CharCountNetwork(len(self.chars), self.dim)

    def to_config(self):
        return {"dim": self.dim}, {"chars.txt": "\n".join(self.chars).encode("utf-8")}

    @classmethod
    def from_config(cls, config, files):
        encoder = cls(**config)
        encoder.chars = files["chars.txt"].decode("utf-8").split("\n")
        return encoder


@pytest.fixture
def char_count_family():
    family = register(EncoderFamily("test-char-count", CharCountEncoder, names=("char-count",)))
    try:
        yield family
    finally:
        _registry._FAMILIES.pop(family.id)


def test_a_family_added_in_one_file_fits_saves_and_loads(char_count_family, long_tail_corpus, tmp_path):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier("char-count", encoder_options={"dim": 6}, validation_fraction=None, random_state=0)
    clf.fit(texts, labels)
    assert type(clf.encoder_) is CharCountEncoder and clf.epochs_ == 15
    assert family_of(clf.encoder_) is char_count_family
    assert clf.score(texts, labels) > 0.5
    restored = load(clf.save(tmp_path / "model.sktail"))
    np.testing.assert_array_equal(restored.predict_proba(texts), clf.predict_proba(texts))
    with pytest.raises(ValueError, match="pretrained transformer encoder"):
        AutoTailClassifier("char-count", train_encoder="none").fit(texts, labels)


def test_built_in_families_are_registered():
    assert get_family("jieba-bag").resolve().__name__ == "BagEncoder"
    assert get_family("huggingface").resolve().__name__ == "HFEncoder"
    with pytest.raises(KeyError, match="unknown encoder family 'nope'"):
        get_family("nope")


def test_a_name_cannot_belong_to_two_families():
    with pytest.raises(ValueError, match="already belong to the family 'jieba-bag'"):
        register(EncoderFamily("other", CharCountEncoder, names=("jieba-bag",)))


@pytest.mark.parametrize("name, match", [
    ("jieba_bag", "did you mean 'jieba-bag'"),
    ("e5_small", "did you mean 'e5-small'"),
])
def test_misspelt_names_fail_at_once_with_a_suggestion(name, match):
    with pytest.raises(ValueError, match=match):
        make_encoder(name)


def test_a_file_is_not_an_encoder_folder(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="is a file"):
        make_encoder(str(path))


def test_hub_ids_fail_at_once_when_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="HF_HUB_OFFLINE is set"):
        make_encoder("nonexistent/model")


def test_misspelt_options_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"'embed_dim' \(did you mean 'embedding_dim'\?\).*valid options"):
        make_encoder("jieba-bag", {"embed_dim": 8})
