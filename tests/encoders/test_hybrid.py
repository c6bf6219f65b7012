"""encoder="tfidf-e5": character TF-IDF and frozen e5-small under one linear head."""

import contextlib
import pickle
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV

import sktail
from sktail import AutoTailClassifier
from sktail.adversarial import FGM
from sktail.datasets import make_long_tail_text
from sktail.encoders import HybridEncoder, _e5_memory
from sktail.encoders._hybrid import HybridRegime
from sktail.training import Callback, observe

COUNTS = (14, 10, 7, 5, 4)  # 40 texts
PARAMS = {"encoder": "tfidf-e5", "weight_decay": 0.3, "validation_fraction": None, "epochs": 4,
          "batch_size": 8, "random_state": 0}
SKLEARN_TFIDF = {"analyzer": "char", "ngram_range": (1, 3), "sublinear_tf": True, "smooth_idf": True,
                 "norm": "l2", "dtype": np.float32}


@pytest.fixture(scope="session")
def e5():
    """Build the in-memory e5 network and tokenizer once for the whole session."""
    sha = _e5_memory._installed_sha256()
    return _e5_memory._e5_tokenizer(sha), _e5_memory._e5_model(sha, "cpu")


@pytest.fixture(scope="module")
def corpus():
    X, y = make_long_tail_text(COUNTS, random_state=0)
    return list(X), np.asarray(y)


@pytest.fixture(scope="module")
def fitted(e5, corpus, tmp_path_factory):
    """A fitted classifier (its features in a feature cache) and its probabilities on the corpus."""
    cache = tmp_path_factory.mktemp("features")
    clf = AutoTailClassifier(**PARAMS, feature_cache=str(cache)).fit(*corpus)
    return clf, clf.predict_proba(corpus[0])


def _weights(clf):
    return {k: v.clone() for k, v in clf.network_.state_dict().items()}


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_tfidf_channel_equals_sklearn_transform(e5, corpus):
    train = corpus[0]
    test = [*train[:5], "完全未见的字符串", "", "Deep  Learning\t\tFOR 文本\n分类", "ABC abc"]
    encoder = HybridEncoder()
    encoder.fit_tokenize(train + ["Deep learning for text"], 128)
    batch = encoder.collate(encoder.tokenize(test, 128))
    offsets = batch["lex_offsets"].numpy()
    ours = sp.csr_matrix(
        (batch["lex_values"].numpy(), batch["lex_ids"].numpy(), np.append(offsets, len(batch["lex_ids"]))),
        shape=(len(test), len(encoder.vectorizer)),
    )
    vectorizer = TfidfVectorizer(**SKLEARN_TFIDF).fit(train + ["Deep learning for text"])
    expected = sp.csr_matrix(vectorizer.transform(test))
    expected.sort_indices()
    assert encoder.vectorizer.tokens_ == vectorizer.get_feature_names_out().tolist()
    np.testing.assert_array_equal(encoder.vectorizer.idf_, vectorizer.idf_)
    np.testing.assert_array_equal(ours.indptr, expected.indptr)
    np.testing.assert_array_equal(ours.indices, expected.indices)
    np.testing.assert_array_equal(ours.data, expected.data)
    assert ours.dtype == np.float32


def test_fit_predict_shapes_classes_and_defaults(fitted, corpus):
    clf, proba = fitted
    X, y = corpus
    assert list(clf.classes_) == sorted(set(y))
    assert proba.shape == (len(X), len(clf.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(clf.predict(X[:7]), clf.classes_[proba[:7].argmax(axis=1)])
    assert clf.max_length_ == 128 and clf.weight_decay_ == 0.3
    assert clf.best_epoch_ == PARAMS["epochs"] == len(clf.history_)
    assert HybridEncoder.defaults == {"max_length": 128, "epochs": 15, "batch_size": 256,
                                      "learning_rate": 1e-2, "weight_decay": 0.3, "validation_fraction": None}
    assert HybridEncoder(max_length=256).defaults["max_length"] == 256
    # The network: one EmbeddingBag over TF-IDF, one Linear over the dense channel, no e5 inside.
    network = clf.network_
    assert network.head.out_features == len(clf.classes_)
    assert network.lexical.weight.shape == (len(clf.encoder_.vectorizer), len(clf.classes_))
    assert set(network.state_dict()) == {"encoder.mean", "encoder.scale", "lexical.weight", "head.weight", "head.bias"}
    assert sum(p.numel() for p in network.parameters()) < 100_000
    assert (clf.predict_proba(["全新的文本 unseen"]).sum() - 1) < 1e-5


def test_save_load_predicts_identically_and_file_is_small(fitted, corpus, tmp_path):
    clf, proba = fitted
    path = clf.save(tmp_path / "model.sktail")
    assert path.stat().st_size < 5 << 20
    with zipfile.ZipFile(path) as archive:
        assert sum(info.file_size for info in archive.infolist()) < 5 << 20
    loaded = sktail.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(corpus[0]), proba)


def test_loading_refuses_another_e5_file(fitted, tmp_path, monkeypatch):
    path = fitted[0].save(tmp_path / "model.sktail")
    monkeypatch.setattr(_e5_memory, "_installed_sha256", lambda: "0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        sktail.load(path)


def test_pickle_round_trip(fitted, corpus):
    clf, proba = fitted
    blob = pickle.dumps(clf)
    assert len(blob) < 5 << 20
    np.testing.assert_array_equal(pickle.loads(blob).predict_proba(corpus[0]), proba)


def test_feature_cache_reuse_and_clone_refit(fitted, corpus, monkeypatch):
    regimes = []
    features = HybridRegime.features

    def spy(self, trainer, ids):
        regimes.append(self)
        return features(self, trainer, ids)

    monkeypatch.setattr(HybridRegime, "features", spy)
    clf = fitted[0]
    refit = clone(clf).fit(*corpus)
    assert regimes[-1].n_encoded_ == 0
    _assert_same_weights(_weights(refit), _weights(clf))


def test_grid_search_refits(fitted, corpus):
    search = GridSearchCV(clone(fitted[0]).set_params(epochs=2), {"dropout": [0.3]}, cv=2).fit(*corpus)
    assert search.best_estimator_.dropout == 0.3 and search.best_estimator_.history_[-1]["epoch"] == 2


def test_fgm_perturbs_both_channel_inputs(fitted, corpus, monkeypatch):
    targets, records = [], []
    adversarial, perturb = HybridRegime.adversarial, FGM.perturb

    def spy_adversarial(self, network, batch):
        out = adversarial(self, network, batch)
        targets.append(out[1])
        return out

    @contextlib.contextmanager
    def spy_perturb(self, grad=None):
        before = self.embedding.detach().clone()
        with perturb(self, grad) as applied:
            records.append((self.embedding, applied, not torch.equal(before, self.embedding.detach())))
            yield applied
        assert torch.equal(before, self.embedding.detach())  # restored

    monkeypatch.setattr(HybridRegime, "adversarial", spy_adversarial)
    monkeypatch.setattr(FGM, "perturb", spy_perturb)
    clone(fitted[0]).set_params(epochs=2).fit(*corpus)
    assert targets and all(len(t) == 2 for t in targets)
    values, dense = targets[-1]
    assert values.dim() == 1 and dense.shape[1] == 384
    perturbed = {id(e) for e, applied, changed in records if applied and changed}
    assert sum(id(t[0]) in perturbed and id(t[1]) in perturbed for t in targets) >= len(targets) // 2


class _Stop(Exception):
    pass


class _StopAfterEpoch(Callback):
    def on_epoch_end(self, trainer, record):
        if record["epoch"] == 2:
            raise _Stop


def test_checkpoint_resume_gives_the_uninterrupted_weights(fitted, corpus, tmp_path):
    clf = clone(fitted[0]).set_params(checkpoint_dir=str(tmp_path / "ckpt"))
    with observe(_StopAfterEpoch()), pytest.raises(_Stop):
        clf.fit(*corpus)
    assert any((tmp_path / "ckpt").iterdir())
    clf.fit(*corpus)
    _assert_same_weights(_weights(clf), _weights(fitted[0]))


@pytest.mark.parametrize("train_encoder", ["none", 2])
def test_only_train_encoder_all_is_accepted(corpus, train_encoder):
    clf = AutoTailClassifier(encoder="tfidf-e5", train_encoder=train_encoder)
    with pytest.raises(ValueError, match="train_encoder='all'"):
        clf.fit(*corpus)


def test_encoder_options_are_checked():
    with pytest.raises(ValueError, match="max_length"):
        HybridEncoder(max_length=1000)
    with pytest.raises(ValueError, match="dense_scale"):
        HybridEncoder(dense_scale=-1.0)
