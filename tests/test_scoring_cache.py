"""Scoring reuses frozen features: the feature cache of fits, and the memo of the last batch (issue 27)."""

import logging
import pickle

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold

import sktail.inference as inference
from sktail import AutoTailClassifier, _scoring
from sktail.datasets import make_long_tail_text
from sktail.devices import resolve_inference_precision

COUNTS = (16, 10, 7, 5, 4)
QUICK = {"epochs": 3, "batch_size": 8, "random_state": 0}
FAST_BERT = {"epochs": 2, "batch_size": 16, "learning_rate": 1e-3, "validation_fraction": None, "device": "cpu"}


@pytest.fixture(scope="module")
def corpus():
    X, y = make_long_tail_text(COUNTS, random_state=3)
    return list(X), np.asarray(y)


@pytest.fixture(scope="module")
def unseen():
    X, _ = make_long_tail_text((6, 6), random_state=11)
    return [t + "之研究" for t in X]


@pytest.fixture
def count_encoded(monkeypatch):
    """Texts run through a frozen module, per call of ``encode_features``."""
    counted = []
    original = inference.encode_features

    def spy(encoder_network, text_encoder, ids, **kwargs):
        counted.append(len(ids))
        return original(encoder_network, text_encoder, ids, **kwargs)

    monkeypatch.setattr(inference, "encode_features", spy)
    return counted


def _whole_network_logits(clf, texts):
    """The logits of running the whole network, as predict did before features were reused."""
    device = torch.device("cpu")
    precision = resolve_inference_precision(clf.precision, device, clf.network_)
    ids = clf.encoder_.tokenize(texts, clf.max_length_)
    return inference.predict_logits(clf.network_, clf.encoder_, ids, batch_size=64, device=device,
                                    precision=precision)


def test_default_predict_reads_and_fills_the_fits_cache(corpus, unseen, tmp_path, count_encoded):
    texts, labels = corpus
    clf = AutoTailClassifier(**QUICK, feature_cache=tmp_path).fit(texts, labels)
    assert sum(count_encoded) == len(set(texts))
    proba = clf.predict_proba(texts)
    assert sum(count_encoded) == len(set(texts))  # every text's features came from the fit's cache
    np.testing.assert_allclose(clf.decision_function(texts), _whole_network_logits(clf, texts), atol=1e-5)
    assert proba.shape == (len(texts), len(clf.classes_))

    clf.predict(unseen)
    assert count_encoded[-1] == len(unseen)
    other = AutoTailClassifier(**{**QUICK, "random_state": 1}, feature_cache=tmp_path).fit(texts, labels)
    before = len(count_encoded)
    np.testing.assert_allclose(other.decision_function(unseen), _whole_network_logits(other, unseen), atol=1e-5)
    assert len(count_encoded) == before  # the first model's predict filled the cache for the second


def test_predict_proba_after_predict_reuses_the_last_batch(corpus, unseen, count_encoded):
    texts, labels = corpus
    clf = AutoTailClassifier(**QUICK).fit(texts, labels)  # no feature_cache at all
    count_encoded.clear()
    labels_out = clf.predict(unseen)
    assert count_encoded == [len(unseen)]
    proba = clf.predict_proba(unseen)
    assert count_encoded == [len(unseen)]  # nothing encoded again
    np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], labels_out)
    np.testing.assert_allclose(clf.decision_function(unseen), _whole_network_logits(clf, unseen), atol=1e-5)

    clf.predict(unseen[:3] + ["全新的一个标题"])
    assert count_encoded[-1] == 1  # only the text outside the last batch
    clf.predict(unseen)
    assert count_encoded[-1] == len(unseen) - 3  # the memo holds the last batch only


def test_the_memo_is_no_part_of_a_refit_or_a_pickle(corpus, unseen, count_encoded):
    texts, labels = corpus
    clf = AutoTailClassifier(**QUICK).fit(texts, labels)
    clf.predict(unseen)
    twin = pickle.loads(pickle.dumps(clf))
    count_encoded.clear()
    np.testing.assert_array_equal(twin.predict_proba(unseen), clf.predict_proba(unseen))
    assert count_encoded == [len(unseen)]  # the pickle held no features: the twin encoded them
    clf.fit(texts, labels)
    clf.predict(unseen)
    assert count_encoded == [len(unseen), len(texts), len(unseen)]  # a refit starts without a memo


def test_batches_above_the_memo_limit_are_not_remembered(corpus, unseen, count_encoded, monkeypatch):
    texts, labels = corpus
    clf = AutoTailClassifier(**QUICK).fit(texts, labels)
    monkeypatch.setattr(_scoring, "MEMO_ROWS", 4)
    count_encoded.clear()
    clf.predict(unseen[:4])
    clf.predict(unseen[:4])
    assert count_encoded == [4]  # remembered
    clf.predict(unseen)
    clf.predict(unseen)
    # the 4 remembered texts are read, the rest encoded; that batch is too big to keep
    assert count_encoded == [4, len(unseen) - 4, len(unseen)]


def test_chunks_share_one_memo(corpus, unseen, count_encoded, monkeypatch):
    import sktail.classifier as classifier

    texts, labels = corpus
    clf = AutoTailClassifier(**QUICK).fit(texts, labels)
    reference = clf.decision_function(unseen)
    monkeypatch.setattr(classifier, "PREDICT_CHUNK_SIZE", 5)
    clf.fit(texts, labels)
    count_encoded.clear()
    np.testing.assert_allclose(clf.decision_function(unseen), reference, atol=1e-6)
    assert sum(count_encoded) == len(unseen)
    clf.decision_function(unseen)
    assert sum(count_encoded) == len(unseen)


def test_grid_search_scores_from_the_features_of_its_fits(corpus, tmp_path, count_encoded):
    texts, labels = corpus
    base = AutoTailClassifier(**QUICK, feature_cache=str(tmp_path))
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    GridSearchCV(base, {"fgm_epsilon": [0.0, 0.3], "tail_gate": [False, "auto"]}, cv=cv).fit(texts, labels)
    # 8 fits, 8 scorings and the refit: each text's e5 features computed once.
    assert sum(count_encoded) == len(set(texts))


def test_frozen_transformer_predict_reads_the_fits_cache(tiny_bert_dir, long_tail_corpus, tmp_path, count_encoded):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(encoder=str(tiny_bert_dir), train_encoder="none", feature_cache=tmp_path,
                             **FAST_BERT, random_state=0).fit(texts, labels)
    n_fit = sum(count_encoded)
    logits = clf.decision_function(texts)
    clf.predict_proba(texts)
    assert sum(count_encoded) == n_fit  # both from the fit's cache
    # The head over freshly computed features, in float32 whatever the precision of the
    # features (a head with the standardisation folded in loses whole units under bf16).
    device = torch.device("cpu")
    precision = resolve_inference_precision(clf.precision, device, clf.network_)
    ids = clf.encoder_.tokenize(texts, clf.max_length_)
    fresh = inference.encode_features(clf.network_.encoder, clf.encoder_, ids, batch_size=64, device=device,
                                      precision=precision)
    with torch.no_grad():
        expected = clf.network_.head(torch.from_numpy(fresh)).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-5)


def test_a_fine_tuned_encoder_runs_its_whole_network(tiny_bert_dir, long_tail_corpus, tmp_path, count_encoded):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(encoder=str(tiny_bert_dir), feature_cache=tmp_path, **{**FAST_BERT, "epochs": 1},
                             random_state=0).fit(texts[:20], labels[:20])
    clf.predict(texts)
    assert count_encoded == [] and not any(tmp_path.iterdir())


def test_a_quiet_long_encoding_says_so_in_one_line(corpus, unseen, capsys, monkeypatch):
    texts, labels = corpus
    monkeypatch.setattr(inference, "NOTICE_TEXTS", 5)
    monkeypatch.setattr(logging.getLogger("sktail"), "level", logging.NOTSET)  # as in a fresh process
    clf = AutoTailClassifier(**QUICK).fit(texts, labels)
    err = capsys.readouterr().err
    assert err.count("sktail: computing") == 1 and f"features of {len(texts)} texts" in err
    assert "feature_cache=DIR" in err and "verbose=1" in err and "setLevel('WARNING')" in err
    assert "minutes" in err
    clf.predict(unseen)
    assert f"features of {len(unseen)} texts" in capsys.readouterr().err
    clf.predict(unseen[:4])  # below the threshold (and remembered): nothing
    assert capsys.readouterr() == ("", "")
    logger = logging.getLogger("sktail")
    level = logger.level
    try:
        logger.setLevel(logging.WARNING)
        clf.predict(unseen[4:] + ["全新的一个标题"] * 5)
        assert capsys.readouterr() == ("", "")
    finally:
        logger.setLevel(level)


def test_fit_labels_its_encoding_bar_features_not_predict(corpus, capsys):
    pytest.importorskip("tqdm")
    texts, labels = corpus
    clf = AutoTailClassifier(**QUICK, verbose=1).fit(texts, labels)
    out, err = capsys.readouterr()
    assert out == "" and "features:" in err and "predict:" not in err
    assert "sktail: computing" not in err  # verbose shows a bar instead of the notice
    clf.predict(texts[:5] + ["全新的一个标题"])
    assert "predict:" in capsys.readouterr().err
