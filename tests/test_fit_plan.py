"""fit = plan -> train -> set attributes: a failed (re)fit leaves the previous fitted state as it was."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sktail import AutoTailClassifier
from sktail._fit_plan import plan_fit

KW = {"encoder": "jieba-bag", "epochs": 1, "batch_size": 16, "validation_fraction": None, "random_state": 0,
      "encoder_options": {"embedding_dim": 8}}


def _relabelled(labels):
    return np.array([f"new-{label}" for label in labels])


FAILURES = {
    "unseen validation labels": lambda X, y: ({}, X, _relabelled(y), {"validation_data": (X[:3], ["Z"] * 3)}),
    "one class": lambda X, y: ({}, X, ["only"] * len(X), {}),
    "bad encoder option": lambda X, y: ({"encoder_options": {"embed_dim": 8}}, X, _relabelled(y), {}),
    "no validation rows": lambda X, y: ({"validation_fraction": 0.001}, X[:20], _relabelled(y[:20]), {}),
    "invalid train_encoder": lambda X, y: ({"train_encoder": "none"}, X, _relabelled(y), {}),
    "fewer classes": lambda X, y: ({"encoder_options": {"nope": 1}}, X, np.where(np.asarray(y) == y[0], "a", "b"), {}),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_a_failed_refit_keeps_the_previous_fitted_state(long_tail_corpus, case):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(**KW).fit(texts, labels)
    before = {k: v for k, v in vars(clf).items() if k.endswith("_") and not k.startswith("_")}
    proba, original = clf.predict_proba(texts[:5]), clf.get_params(deep=False)
    params, X, y, fit_kwargs = FAILURES[case](texts, labels)
    clf.set_params(**params)
    with pytest.raises((ValueError, TypeError)):
        clf.fit(X, y, **fit_kwargs)
    # As after a failed scikit-learn fit: the old model, untouched, with its own classes.
    after = {k: v for k, v in vars(clf).items() if k.endswith("_") and not k.startswith("_")}
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
    np.testing.assert_array_equal(clf.set_params(**original).predict_proba(texts[:5]), proba)
    # The estimator is usable again once the problem is fixed.
    clf.set_params(**{**KW, "train_encoder": "all"})
    assert set(clf.fit(texts, labels).predict(texts[:5])) <= set(labels)


def test_an_unfitted_estimator_stays_unfitted_after_a_failed_fit(long_tail_corpus):
    texts, _ = long_tail_corpus
    clf = AutoTailClassifier(**KW)
    with pytest.raises(ValueError, match="single class"):
        clf.fit(texts, ["only"] * len(texts))
    with pytest.raises(NotFittedError):
        clf.predict(texts[:2])


def test_the_plan_does_not_touch_the_estimator(long_tail_corpus):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(**{**KW, "validation_fraction": 0.2})
    before = dict(vars(clf))
    plan = plan_fit(clf.get_params(deep=False), texts, labels)
    assert vars(clf) == before
    assert plan.class_counts.sum() == len(plan.train[0]) and len(plan.validation[0]) > 0
    assert plan.resolved["epochs"] == 1 and plan.regime.name == "all"
