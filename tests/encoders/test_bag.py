"""The built-in jieba bag-of-embeddings encoder."""

import numpy as np
import pytest
import torch

from sktail import AutoTailClassifier
from sktail.encoders._bag import BagEncoder, BagNetwork

from .._helpers import LABELS, batch_of, tiny_setup, tiny_trainer
from ..conftest import FAST_BAG

SMALL = {"encoder": "jieba-bag", **FAST_BAG, "epochs": 1, "encoder_options": {"embedding_dim": 8}}


def test_collate_flattens_with_offsets():
    encoder = BagEncoder()
    batch = encoder.collate([np.array([5, 6, 7]), np.array([], dtype=np.int64), np.array([2])])
    assert batch["ids"].tolist() == [5, 6, 7, 2]
    assert batch["offsets"].tolist() == [0, 3, 3]
    assert batch["ids"].dtype == batch["offsets"].dtype == torch.int64


def test_network_is_sized_to_the_vocabulary():
    encoder = BagEncoder(embedding_dim=5, init_std=0.01)
    assert encoder.describe() == "jieba-bag(dim=5, vocab=unfitted)"
    encoder.fit_tokenize(["水稻种植", "刑法"], 16)
    torch.manual_seed(0)
    network = encoder.build_network()
    assert isinstance(network, BagNetwork) and network.hidden_size == 5
    assert network.input_embeddings().shape == (len(encoder.vocabulary), 5)
    assert network.input_embeddings() is network.bag.weight
    assert float(network.bag.weight.detach().std()) < 0.02
    assert encoder.describe() == f"jieba-bag(dim=5, vocab={len(encoder.vocabulary)})"


def test_empty_text_pools_to_zeros():
    encoder = BagEncoder(embedding_dim=4)
    ids = encoder.fit_tokenize(["水稻", ""], 8)
    assert len(ids[1]) == 0
    pooled = encoder.build_network()(encoder.collate(ids))
    assert torch.equal(pooled[1], torch.zeros(4))
    assert not torch.equal(pooled[0], torch.zeros(4))


def _network_and_batch(token_dropout):
    encoder = BagEncoder(embedding_dim=3, min_count=1, token_dropout=token_dropout)
    ids = encoder.fit_tokenize(["水稻种植技术", "刑法", ""], 32)
    torch.manual_seed(0)
    return encoder.build_network(), encoder.collate(ids)


def test_token_dropout_averages_the_kept_tokens_in_training_only():
    network, batch = _network_and_batch(0.5)
    table, ids, offsets = network.bag.weight.detach(), batch["ids"], batch["offsets"].tolist()
    network.eval()
    plain = network(batch)
    torch.manual_seed(1)
    network.train()
    dropped = network(batch)
    torch.manual_seed(1)  # the same draw: token i is kept where rand >= 0.5
    keep = torch.rand(ids.shape) >= 0.5
    bounds = [*offsets, len(ids)]
    for text in range(3):
        span = slice(bounds[text], bounds[text + 1])
        kept = ids[span][keep[span]]
        expected = table[kept].mean(dim=0) if len(kept) else torch.zeros(3)
        assert torch.allclose(dropped[text], expected, atol=1e-6)
        full = table[ids[span]].mean(dim=0) if bounds[text + 1] > bounds[text] else torch.zeros(3)
        assert torch.allclose(plain[text], full, atol=1e-6)
    assert not torch.allclose(dropped[0], plain[0])  # 14 tokens, some were dropped


def test_token_dropout_zero_is_the_plain_mean_and_gradients_reach_the_table():
    network, batch = _network_and_batch(0.0)
    network.train()
    assert torch.equal(network(batch), network.bag(batch["ids"], batch["offsets"]))
    network, batch = _network_and_batch(0.3)
    network.train()
    network(batch).sum().backward()
    assert network.bag.weight.grad is not None and network.bag.weight.grad.abs().sum() > 0


def test_tokenize_truncates():
    encoder = BagEncoder(words=False, bigrams=False)
    encoder.fit_tokenize(["一二三四五六"], 3)
    assert [len(a) for a in encoder.tokenize(["一二三四五六", "一"], 3)] == [3, 1]


def test_vocabulary_comes_from_the_training_rows_only(long_tail_corpus):
    texts, labels = long_tail_corpus
    # one private marker character per row: the vocabulary must hold exactly the
    # markers of the rows left for training after the validation hold-out
    markers = [chr(0x4E00 + 5000 + i) for i in range(len(texts))]
    marked = [m + t for m, t in zip(markers, texts)]
    options = {**SMALL["encoder_options"], "min_count": 1}  # markers occur once each
    params = {**SMALL, "validation_fraction": 0.3, "encoder_options": options}
    clf = AutoTailClassifier(**params, random_state=0).fit(marked, labels)
    vocab = set(clf.encoder_.vocabulary.tokens_)
    seen = [m for m in markers if "c:" + m in vocab]
    assert len(seen) == clf.class_counts_.sum() < len(texts)


def test_validation_data_texts_stay_out_of_the_vocabulary(long_tail_corpus):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(**{**SMALL, "epochs": 2, "validation_fraction": None}, random_state=0)
    clf.fit(texts, labels, validation_data=(["龘靐齉"], [labels[0]]))
    assert not {"c:龘", "c:靐", "c:齉"} & set(clf.encoder_.vocabulary.tokens_)
    assert clf.best_validation_score_ is not None


def test_classifier_handles_empty_texts(long_tail_corpus):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(**SMALL, random_state=0).fit([*texts, ""], [*labels, labels[0]])
    proba = clf.predict_proba(["", "   "])
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba[0], proba[1])  # both pool to zeros: the head bias alone
    # precision="auto" predicts in bf16 on CPUs with native bf16 (sktail.devices), in fp32
    # elsewhere: check each path explicitly, so the test means the same on every CPU.
    bias = clf.network_.head.bias.detach()
    clf.set_params(precision="fp32")
    np.testing.assert_allclose(clf.decision_function([""])[0], bias.numpy(), rtol=1e-6)
    clf.set_params(precision="bf16")  # the head's output rounded to bf16: the bias, rounded
    np.testing.assert_array_equal(clf.decision_function([""])[0], bias.to(torch.bfloat16).float().numpy())


def test_classifier_truncates_to_max_length(long_tail_corpus):
    texts, labels = long_tail_corpus
    options = {"embedding_dim": 8, "words": False, "bigrams": False}
    clf = AutoTailClassifier(**{**SMALL, "encoder_options": options}, max_length=2, random_state=0)
    clf.fit(texts, labels)
    assert clf.max_length_ == 2
    a, b = clf.decision_function([texts[0][:2] + "水稻", texts[0][:2] + "刑法学"])
    np.testing.assert_array_equal(a, b)  # only the first two characters count


def test_fgm_perturbs_the_embedding_table_rows_of_the_batch():
    encoder, ids, network = tiny_setup()
    trainer = tiny_trainer(network, encoder, fgm_epsilon=0.3)
    table = network.encoder.bag.weight
    assert trainer.fgm.embedding is table
    before = table.detach().clone()
    rows = [0, 4]
    changed = []
    real_forward = network.encoder.forward

    def spy(batch):
        changed.append(set(torch.nonzero((table != before).any(dim=1)).flatten().tolist()))
        return real_forward(batch)

    network.encoder.forward = spy
    trainer.train_step(*batch_of(encoder, ids, LABELS, rows))
    used = set(np.concatenate([ids[i] for i in rows]).tolist())
    assert changed[0] == set()
    assert changed[1] and changed[1] <= used  # only the batch's tokens move
    assert torch.equal(table, before)


@pytest.mark.parametrize("option", [{"unknown": 1}, {"embedding_dim": "wide"}])
def test_bad_encoder_options_are_reported(option, long_tail_corpus):
    texts, labels = long_tail_corpus
    with pytest.raises((ValueError, TypeError), match="encoder_options|embedding_dim|invalid literal"):
        AutoTailClassifier(**{**SMALL, "encoder_options": option}).fit(texts, labels)


def test_auto_epochs_reach_the_minimum_number_of_steps():
    from sktail.encoders import BagEncoder

    encoder = BagEncoder()
    # 7,200 rows at 128 a step: 57 steps an epoch, 8 epochs already give 456 >= 450
    assert encoder.auto_epochs(7200, 128) == 8
    # 2,765 rows: 22 steps an epoch, so 21 epochs (462 steps)
    assert encoder.auto_epochs(2765, 128) == 21
    assert encoder.auto_epochs(100_000, 128) == 8


def test_auto_epochs_are_used_by_fit_and_explicit_epochs_win(long_tail_corpus):
    texts, labels = long_tail_corpus
    options = {"encoder": "jieba-bag", "validation_fraction": None, "encoder_options": {"embedding_dim": 8}}
    auto = AutoTailClassifier(**options, batch_size=64, random_state=0).fit(texts, labels)
    assert auto.epochs_ == 450 // 2 and len(auto.history_) == auto.epochs_  # 78 rows: 2 steps an epoch
    fixed = AutoTailClassifier(**options, batch_size=64, epochs=3, random_state=0).fit(texts, labels)
    assert fixed.epochs_ == 3


def test_encoders_saved_before_token_dropout_load_without_it():
    encoder = BagEncoder(embedding_dim=3)
    encoder.fit_tokenize(["水稻种植", "刑法"], 16)
    config, files = encoder.to_config()
    assert config["token_dropout"] == 0.4
    del config["token_dropout"]
    assert BagEncoder.from_config(config, files).token_dropout == 0.0
    del encoder.__dict__["token_dropout"]  # as unpickled from an older version
    assert encoder.build_network().token_dropout == 0.0
