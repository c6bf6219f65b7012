"""Frozen (train_encoder="none") and partly frozen (int) encoders, and the feature cache in fit."""

import pickle
import shutil

import numpy as np
import pytest
import torch
from joblib import Memory, parallel_backend
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import sktail._onnx
import sktail.inference as inference
from sktail import AutoTailClassifier
from sktail._feature_cache import FeatureCache, text_keys
from sktail.encoders._base import TextClassifierNetwork
from sktail.encoders._hf import HFEncoder
from sktail.objective import AutoTailLoss
from sktail.training import (
    CachedFeatures,
    TopLayers,
    Trainer,
    TrainingConfig,
    cached_features,
    regimes,
)

from .conftest import FAST_BAG, write_tiny_bert

FAST_BERT = {"epochs": 2, "batch_size": 16, "learning_rate": 1e-3, "validation_fraction": None, "device": "cpu"}


def _n_inputs(model_dir, texts, max_length=128):
    """Number of distinct token-id sequences (the cache's unit) among ``texts``."""
    return len({tuple(a) for a in HFEncoder(str(model_dir)).tokenize(texts, max_length)})


def _pretrained_state(model_dir):
    return HFEncoder(str(model_dir)).build_network().state_dict()


def _trained_network_state(clf):
    return {k.removeprefix("encoder."): v for k, v in clf.network_.state_dict().items() if k.startswith("encoder.")}


@pytest.fixture
def count_encoded(monkeypatch):
    """Count the texts run through the encoder by ``train_encoder="none"`` fits."""
    counted = []
    original = inference.encode_features

    def spy(encoder_network, text_encoder, ids, **kwargs):
        counted.append(len(ids))
        return original(encoder_network, text_encoder, ids, **kwargs)

    monkeypatch.setattr(inference, "encode_features", spy)
    return counted


# -- train_encoder="none" ------------------------------------------------------
def test_frozen_encoder_stays_bit_identical(tiny_bert_dir, long_tail_corpus):
    texts, labels = long_tail_corpus
    threads = torch.get_num_threads()
    clf = AutoTailClassifier(
        encoder=str(tiny_bert_dir), train_encoder="none", **{**FAST_BERT, "epochs": 3}, random_state=0
    ).fit(texts, labels)
    assert torch.get_num_threads() == threads  # the head's one-thread setting is undone
    pretrained = _pretrained_state(tiny_bert_dir)
    trained = _trained_network_state(clf)
    assert trained.keys() == pretrained.keys()
    for name, tensor in pretrained.items():
        assert torch.equal(trained[name], tensor), name
    assert len(clf.history_) == 3 and clf.epochs_ == 3
    # The head did learn: the loss fell.
    assert clf.history_[-1]["train_loss"] < clf.history_[0]["train_loss"]


def test_frozen_auto_settings_are_the_head_defaults(tiny_bert_dir, long_tail_corpus):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(
        encoder=str(tiny_bert_dir), train_encoder="none", validation_fraction=0.5, device="cpu", random_state=0
    ).fit(texts[:40], labels[:40])
    assert (clf.epochs_, clf.batch_size_, clf.learning_rate_) == (20, 32, 1e-3)
    assert clf.max_length_ == 128
    assert 1 <= clf.best_epoch_ <= 20 and len(clf.history_) == 20
    assert clf.best_validation_score_ == max(h["val_accuracy"] for h in clf.history_)


def test_frozen_predictions_use_the_plain_network(tiny_bert_dir, long_tail_corpus, tmp_path):
    """The cached features are what inference computes: logits = head(features)."""
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(
        encoder=str(tiny_bert_dir), train_encoder="none", feature_cache=tmp_path, **FAST_BERT, random_state=0
    ).fit(texts, labels)
    ids = clf.encoder_.tokenize(texts, clf.max_length_)
    features, n_encoded = inference.extract_features(
        clf.network_.encoder, clf.encoder_, ids, batch_size=64, device=torch.device("cpu"),
        cache=FeatureCache(tmp_path, next(p.name for p in tmp_path.iterdir())),
    )
    assert n_encoded == 0
    with torch.no_grad():
        expected = clf.network_.head(torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(clf.decision_function(texts), expected, rtol=1e-4, atol=1e-5)


def test_head_fgm_perturbs_the_batch_features():
    """One HeadTrainer step holds grad L(X) + w_adv * grad L(X + eps g/||g||)."""
    torch.manual_seed(0)
    n_classes, hidden = 3, 5
    network = TextClassifierNetwork(cached_features.CachedFeatureNetwork(hidden), n_classes, dropout=0.0)
    loss_fn = AutoTailLoss(np.zeros(n_classes), np.array([6, 3, 1]), label_smoothing=0.05, bs_weight=0.1)
    config = TrainingConfig(epochs=1, batch_size=4, learning_rate=1e-3, fgm_epsilon=0.3, fgm_weight=0.5)
    trainer = Trainer(network, None, loss_fn, config, np.random.RandomState(0), regime=CachedFeatures())
    x = torch.randn(4, hidden)
    y = torch.tensor([0, 1, 2, 0])
    trainer.train_step({"features": x.clone()}, y, None)
    got = [p.grad.clone() for p in network.head.parameters()]

    inputs = x.clone().requires_grad_(True)
    clean = loss_fn(network.head(inputs), y, None)
    g = torch.autograd.grad(clean, inputs, retain_graph=True)[0]
    r = 0.3 * g / torch.linalg.vector_norm(g)
    adversarial = loss_fn(network.head(x + r), y, None)
    expected = torch.autograd.grad(clean + 0.5 * adversarial, list(network.head.parameters()))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    assert trainer.forward_passes == 2


# -- train_encoder=k -----------------------------------------------------------
def test_partial_freezing_trains_exactly_the_top_layers(tiny_bert_dir, long_tail_corpus):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(
        encoder=str(tiny_bert_dir), train_encoder=1, fgm_epsilon=0.3, **FAST_BERT, random_state=0
    ).fit(texts, labels)
    pretrained = _pretrained_state(tiny_bert_dir)
    trained = _trained_network_state(clf)
    changed = {name for name, tensor in pretrained.items() if not torch.equal(trained[name], tensor)}
    top = {name for name in pretrained if name.startswith("model.encoder.layer.1.")}
    assert changed <= top
    assert {name for name in top if pretrained[name].dim() == 2} <= changed
    # After fit the kept network looks like any other.
    assert all(p.requires_grad for p in clf.network_.parameters())


@pytest.mark.parametrize("fgm_epsilon", [0.0, 0.3])
def test_partial_trainer_keeps_the_frozen_embedding_gradient_for_fgm(tiny_bert_dir, fgm_epsilon):
    encoder = HFEncoder(str(tiny_bert_dir))
    ids = encoder.fit_tokenize(["农学研究", "深度学习模型", "历史文献", "艺术设计"], 32)
    torch.manual_seed(0)
    network = TextClassifierNetwork(encoder.build_network(), 2)
    loss_fn = AutoTailLoss(np.zeros(2), np.array([2, 2]))
    config = TrainingConfig(epochs=1, batch_size=4, learning_rate=1e-2, fgm_epsilon=fgm_epsilon)
    trainer = Trainer(network, encoder, loss_fn, config, np.random.RandomState(0), regime=TopLayers(1))
    embedding = network.encoder.input_embeddings()
    before = embedding.detach().clone()
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    expected = {id(p) for p in network.encoder.model.encoder.layer[1].parameters()}
    expected |= {id(p) for p in network.head.parameters()}
    assert optimized == expected
    assert embedding.requires_grad is (fgm_epsilon > 0)

    trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lambda step: 1.0)
    batch, target, weight = trainer._batches(ids, np.array([0, 1, 0, 1]), None, np.arange(4))
    trainer.train_step(batch, target, weight)
    assert trainer.forward_passes == (2 if fgm_epsilon else 1)
    assert (embedding.grad is not None) is (fgm_epsilon > 0)
    trainer.optimizer_step()
    assert embedding.grad is None
    assert torch.equal(embedding.detach(), before)


def test_partial_freezing_needs_a_layer_stack_and_a_valid_count(tiny_bert_dir):
    encoder = HFEncoder(str(tiny_bert_dir))
    network = TextClassifierNetwork(encoder.build_network(), 2)
    with pytest.raises(ValueError, match="between 1 and the encoder's 2 layers"):
        regimes.freeze_lower_layers(network, 3)

    class Flat(torch.nn.Module):
        hidden_size = 4

    with pytest.raises(ValueError, match="model.encoder.layer"):
        regimes.transformer_layers(Flat())


def test_int_larger_than_the_layers_is_reported_by_fit(tiny_bert_dir, long_tail_corpus):
    texts, labels = long_tail_corpus
    with pytest.raises(ValueError, match="between 1 and the encoder's 2 layers"):
        AutoTailClassifier(encoder=str(tiny_bert_dir), train_encoder=5, **FAST_BERT).fit(texts, labels)


@pytest.mark.parametrize("train_encoder", ["none", 1])
def test_builtin_encoder_rejects_freezing(long_tail_corpus, train_encoder):
    texts, labels = long_tail_corpus
    with pytest.raises(ValueError, match="pretrained transformer encoder"):
        AutoTailClassifier(train_encoder=train_encoder, **FAST_BAG).fit(texts, labels)


@pytest.mark.parametrize("value", [True, 0, -1, "some", 1.5])
def test_invalid_train_encoder_values(long_tail_corpus, value):
    texts, labels = long_tail_corpus
    with pytest.raises(ValueError, match="train_encoder"):
        AutoTailClassifier(train_encoder=value, **FAST_BAG).fit(texts, labels)


# -- the feature cache inside fit ----------------------------------------------
def test_cache_hits_misses_and_invalidation(tiny_bert_dir, long_tail_corpus, tmp_path, count_encoded):
    texts, labels = long_tail_corpus
    n_distinct = _n_inputs(tiny_bert_dir, texts)
    assert n_distinct == len(set(texts))
    params = {"encoder": str(tiny_bert_dir), "train_encoder": "none", **FAST_BERT, "random_state": 0}
    cold = AutoTailClassifier(**params, feature_cache=tmp_path / "cache").fit(texts, labels)
    assert count_encoded == [n_distinct]

    warm = AutoTailClassifier(**params, feature_cache=Memory(tmp_path / "cache", verbose=0)).fit(texts, labels)
    assert count_encoded == [n_distinct]  # a hit: nothing encoded
    np.testing.assert_allclose(warm.predict_proba(texts), cold.predict_proba(texts), rtol=1e-5, atol=1e-6)

    changed = list(texts)
    changed[0] = changed[0] + "新词"
    AutoTailClassifier(**params, feature_cache=tmp_path / "cache").fit(changed, labels)
    assert count_encoded[-1] == 1  # only the edited text

    AutoTailClassifier(**{**params, "max_length": 8}, feature_cache=tmp_path / "cache").fit(texts, labels)
    assert count_encoded[-1] == _n_inputs(tiny_bert_dir, texts, 8)  # truncated texts are new inputs

    other_model = write_tiny_bert(tmp_path / "other-bert", num_layers=1)
    AutoTailClassifier(**{**params, "encoder": str(other_model)}, feature_cache=tmp_path / "cache").fit(texts, labels)
    assert count_encoded[-1] == n_distinct  # another encoder: a fresh namespace


def test_grid_search_encodes_each_text_once(tiny_bert_dir, long_tail_corpus, tmp_path, count_encoded):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(
        encoder=str(tiny_bert_dir), train_encoder="none", feature_cache=tmp_path, **FAST_BERT, random_state=0
    )
    GridSearchCV(clf, {"fgm_epsilon": [0.0, 0.3]}, cv=2).fit(texts, labels)
    assert sum(count_encoded) == _n_inputs(tiny_bert_dir, texts)  # 4 fits + the refit, one encoding per text


def test_concurrent_fits_share_the_cache_safely(tiny_bert_dir, long_tail_corpus, tmp_path, monkeypatch):
    texts, labels = long_tail_corpus
    # Torch fp32 features, compared exactly below (int8 features depend slightly on the batch;
    # precision="auto" would cache bf16 features on CPUs with native bf16).
    monkeypatch.setattr(sktail._onnx, "available", lambda: False)
    clf = AutoTailClassifier(
        encoder=str(tiny_bert_dir), train_encoder="none", feature_cache=tmp_path, precision="fp32", **FAST_BERT,
        random_state=0,
    )
    with parallel_backend("threading", n_jobs=2):
        GridSearchCV(clf, {"fgm_epsilon": [0.0, 0.3]}, cv=2, n_jobs=2, refit=False).fit(texts, labels)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
    (namespace,) = tmp_path.iterdir()
    encoder = HFEncoder(str(tiny_bert_dir))
    ids = encoder.tokenize(texts, 128)
    network = encoder.build_network()
    cached, found = FeatureCache(tmp_path, namespace.name).lookup(text_keys(ids))
    assert found.all()
    fresh = inference.encode_features(network, encoder, ids, batch_size=64, device=torch.device("cpu"))
    np.testing.assert_allclose(cached, fresh, rtol=1e-5, atol=1e-6)


def test_frozen_pickle_loads_on_cpu_without_the_cache(tiny_bert_dir, long_tail_corpus, tmp_path, monkeypatch):
    texts, labels = long_tail_corpus
    cache = tmp_path / "cache"
    clf = AutoTailClassifier(
        encoder=str(tiny_bert_dir), train_encoder="none", feature_cache=cache, **FAST_BERT, random_state=0
    ).fit(texts, labels)
    full = AutoTailClassifier(encoder=str(tiny_bert_dir), **{**FAST_BERT, "epochs": 1}, random_state=0)
    full.fit(texts[:20], labels[:20])
    blob = pickle.dumps(clf)
    shutil.rmtree(cache)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restored = pickle.loads(blob)
    assert not cache.exists()
    assert restored.network_.state_dict().keys() == full.network_.state_dict().keys()
    np.testing.assert_array_equal(restored.predict_proba(texts), clf.predict_proba(texts))
    assert cache.exists()  # predicting refilled the feature cache
    assert clone(restored).get_params()["feature_cache"] == cache


def test_standardization_folds_exactly_into_the_head():
    rng = np.random.RandomState(0)
    features = (3.0 + 0.05 * rng.randn(50, 6)).astype(np.float32)
    features[:, 2] = 1.5  # a constant dimension keeps scale 1
    mean, scale = cached_features.standardization(features)
    assert scale[2] == 1.0
    standardized = (features - mean) / scale
    np.testing.assert_allclose(standardized[:, [0, 1, 3]].std(axis=0), 1.0, rtol=1e-4)
    torch.manual_seed(0)
    head = torch.nn.Linear(6, 3)
    with torch.no_grad():
        expected = head(torch.from_numpy(standardized)).numpy()
    cached_features.fold_standardization(head, mean, scale)
    with torch.no_grad():
        folded = head(torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(folded, expected, rtol=1e-4, atol=1e-4)


def test_partial_freezing_resumes_from_a_checkpoint(tiny_bert_dir, tmp_path, monkeypatch):
    from sktail.datasets import make_long_tail_text

    from .test_checkpoint import _assert_same_run, _count_steps, _Crash

    corpus = make_long_tail_text((10, 6, 4), n_keywords=2, noise=0.1, random_state=0)
    settings = {
        "encoder": str(tiny_bert_dir), "train_encoder": 1, "epochs": 3, "batch_size": 4, "learning_rate": 1e-3,
        "validation_fraction": 0.25, "fgm_epsilon": 0.3, "random_state": 5, "device": "cpu",
    }
    reference = AutoTailClassifier(**settings).fit(*corpus)
    _count_steps(monkeypatch, crash_at=7)
    with pytest.raises(_Crash):
        AutoTailClassifier(**settings, checkpoint_dir=tmp_path, checkpoint_interval=0).fit(*corpus)
    calls = _count_steps(monkeypatch)
    resumed = AutoTailClassifier(**settings, checkpoint_dir=tmp_path, checkpoint_interval=0).fit(*corpus)
    assert len(calls) == 12 - 6
    _assert_same_run(resumed, reference)
