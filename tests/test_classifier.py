"""AutoTailClassifier: fitting, prediction, attributes, persistence."""

import pickle

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sktail import AutoTailClassifier

from .conftest import FAST_BAG


def test_fit_predict_string_labels(long_tail_corpus):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(**{**FAST_BAG, "epochs": 15}, random_state=0)
    assert clf.fit(texts, labels) is clf
    assert clf.score(texts, labels) > 0.9
    proba = clf.predict_proba(texts)
    assert proba.shape == (len(texts), 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(clf.predict(texts)) <= set(clf.classes_)


def test_fitted_attributes_follow_training_counts(long_tail_corpus):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(**FAST_BAG, random_state=0).fit(texts, labels)
    counts = dict(zip(clf.classes_, clf.class_counts_))
    assert sorted(counts.values()) == [3, 5, 10, 20, 40]
    assert clf.tail_gate_on_
    assert set(clf.tail_classes_) == {lab for lab, n in counts.items() if n <= 10}
    assert np.all(clf.prior_offsets_[np.isin(clf.classes_, clf.tail_classes_)] < 0)
    assert len(clf.history_) == 3 and clf.best_epoch_ == 3


def test_integer_labels_and_validation_split(long_tail_corpus):
    texts, labels = long_tail_corpus
    names = sorted(set(labels))
    y = np.array([names.index(lab) * 10 for lab in labels])
    clf = AutoTailClassifier(encoder="jieba-bag", epochs=4, validation_fraction=0.2, random_state=0).fit(texts, y)
    assert clf.classes_.tolist() == [0, 10, 20, 30, 40]
    assert clf.class_counts_.sum() == len(texts) - round(0.2 * len(texts))
    assert 1 <= clf.best_epoch_ <= 4
    assert clf.best_validation_score_ == max(h["val_accuracy"] for h in clf.history_)


def test_not_fitted_raises():
    with pytest.raises(NotFittedError):
        AutoTailClassifier().predict(["文本"])


def test_same_random_state_same_probabilities(long_tail_corpus):
    texts, labels = long_tail_corpus
    a = AutoTailClassifier(**FAST_BAG, random_state=7).fit(texts, labels).predict_proba(texts)
    b = AutoTailClassifier(**FAST_BAG, random_state=7).fit(texts, labels).predict_proba(texts)
    np.testing.assert_array_equal(a, b)


def test_pickle_round_trip_is_bit_identical(long_tail_corpus):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(**FAST_BAG, random_state=0).fit(texts, labels)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(texts), clf.predict_proba(texts))


def test_tiny_bert_directory_with_fgm(tiny_bert_dir, long_tail_corpus):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(
        encoder=str(tiny_bert_dir), epochs=2, batch_size=8, learning_rate=1e-3,
        validation_fraction=None, fgm_epsilon=0.3, random_state=0,
    ).fit(texts, labels)
    proba = clf.predict_proba(texts[:7])
    assert proba.shape == (7, 5)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(texts[:7]), proba)


@pytest.mark.parametrize(("selection", "key"), [("accuracy", "val_accuracy"), ("auto", "val_accuracy"),
                                                ("balanced_accuracy", "val_balanced_accuracy")])
def test_epoch_selection_keeps_the_best_epoch_of_its_metric(long_tail_corpus, selection, key):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(encoder="jieba-bag", epochs=5, validation_fraction=0.3, epoch_selection=selection,
                             random_state=1).fit(texts, labels)
    scores = [h[key] for h in clf.history_]
    assert clf.best_epoch_ == 1 + int(np.argmax(scores))  # the first epoch reaching the maximum
    assert clf.best_validation_score_ == max(scores)


def test_epoch_selection_last_keeps_the_last_weights(long_tail_corpus):
    texts, labels = long_tail_corpus
    settings = {"encoder": "jieba-bag", "epochs": 4, "random_state": 4}  # its best epoch is 2
    last = AutoTailClassifier(**settings, validation_fraction=0.3, epoch_selection="last").fit(texts, labels)
    assert last.best_epoch_ == 4 and last.best_validation_score_ == last.history_[-1]["val_accuracy"]
    # the same run keeping its best-accuracy epoch differs unless that epoch is the last
    best = AutoTailClassifier(**settings, validation_fraction=0.3).fit(texts, labels)
    assert [h["val_accuracy"] for h in best.history_] == [h["val_accuracy"] for h in last.history_]
    assert best.best_epoch_ == 2
    assert not np.array_equal(best.predict_proba(texts), last.predict_proba(texts))


def test_jieba_bag_trains_on_every_row_and_keeps_the_last_epoch(long_tail_corpus):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(encoder="jieba-bag", epochs=3, random_state=0).fit(texts, labels)
    assert clf.class_counts_.sum() == len(texts)
    assert clf.best_epoch_ == clf.n_iter_ == 3 and clf.best_validation_score_ is None
