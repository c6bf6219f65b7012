"""scikit-learn contract of AutoTailClassifier on string input."""

import copy

import joblib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks, get_tags
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

import sktail._fit_plan
from sktail import AutoTailClassifier
from sktail.objective import compute_tail_prior

from .conftest import FAST_BAG

SMALL = {"encoder": "jieba-bag", **FAST_BAG, "epochs": 2, "encoder_options": {"embedding_dim": 8}}
BASELINE = {"tail_gate": False, "bs_weight": 0.0, "fgm_epsilon": 0.0}

# Checks of sklearn.utils.estimator_checks that need no numeric data. Those that fit
# on numeric arrays are re-done below with texts.
DATA_FREE_CHECKS = [
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_mixin_order",
    "check_do_not_raise_errors_in_init_or_set_params",
    # these two pass numeric X, but the estimator must fail before looking at it:
    "check_estimators_unfitted",  # NotFittedError comes first
    "check_param_validation",  # InvalidParameterError comes first
]


@pytest.mark.parametrize("check", DATA_FREE_CHECKS)
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sklearn_check(check):
    getattr(estimator_checks, check)("AutoTailClassifier", AutoTailClassifier(**SMALL))


def test_tags():
    tags = get_tags(AutoTailClassifier())
    assert tags.estimator_type == "classifier"
    assert tags.input_tags.string is True
    assert tags.input_tags.two_d_array is False
    assert tags.classifier_tags.multi_class is True


def test_get_set_params_and_clone():
    clf = AutoTailClassifier(fgm_epsilon=0.1, encoder_options={"embedding_dim": 8})
    params = clf.get_params()
    assert params["fgm_epsilon"] == 0.1 and params["tail_gate"] == "auto"
    assert clf.set_params(tail_gate=False, bs_weight=0.0) is clf
    assert (clf.tail_gate, clf.bs_weight) == (False, 0.0)
    twin = clone(clf)
    assert twin is not clf and twin.get_params() == clf.get_params()
    assert twin.encoder_options == clf.encoder_options and twin.encoder_options is not clf.encoder_options
    with pytest.raises(ValueError, match="Invalid parameter"):
        clf.set_params(no_such_parameter=1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("epochs", 0), ("batch_size", 2.5), ("learning_rate", -1e-3), ("learning_rate", "fast"),
        ("tail_gate", "yes"), ("gate_threshold", 1.5), ("tail_tau", -0.1), ("prior_alpha", 0.0),
        ("bs_weight", 1.5), ("bs_temperature", -1.0), ("fgm_epsilon", -0.1), ("fgm_weight", -1.0),
        ("label_smoothing", 1.0), ("validation_fraction", 1.0), ("precision", "fp8"),
        ("grad_accumulation_steps", 0), ("encoder", 3), ("encoder_options", [1]),
        ("max_length", 0), ("dropout", 1.0), ("warmup_ratio", 2.0), ("max_grad_norm", 0.0),
    ],
)
def test_invalid_parameters_are_rejected(name, value):
    clf = AutoTailClassifier(**{name: value})
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter of AutoTailClassifier"):
        clf.fit(["水稻", "刑法"], ["农学", "法学"])


def test_not_fitted_error_before_fit():
    clf = AutoTailClassifier()
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        with pytest.raises(NotFittedError):
            getattr(clf, method)(["文本"])


@pytest.fixture(scope="module")
def fitted(_long_tail_corpus):
    texts, labels = _long_tail_corpus
    return AutoTailClassifier(**SMALL, random_state=0).fit(texts, labels)


def test_fit_returns_self_and_leaves_params_alone(long_tail_corpus):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(**SMALL, random_state=0)
    with pytest.raises(NotFittedError):
        check_is_fitted(clf)
    before = copy.deepcopy(clf.get_params())
    assert clf.fit(texts, labels) is clf
    check_is_fitted(clf)
    after = clf.get_params()
    assert all(joblib.hash(after[k]) == joblib.hash(v) for k, v in before.items())
    assert clf.n_iter_ == SMALL["epochs"]
    # fitting again is idempotent
    first = clf.predict_proba(texts)
    np.testing.assert_array_equal(clf.fit(texts, labels).predict_proba(texts), first)


def test_predict_leaves_the_estimator_unchanged(fitted, long_tail_corpus):
    texts, _ = long_tail_corpus
    before = {k: joblib.hash(v) for k, v in fitted.__dict__.items() if k != "network_"}
    weights = {k: v.clone() for k, v in fitted.network_.state_dict().items()}
    fitted.predict(texts)
    fitted.predict_proba(texts)
    assert {k: joblib.hash(v) for k, v in fitted.__dict__.items() if k != "network_"} == before
    assert all(torch.equal(v, weights[k]) for k, v in fitted.network_.state_dict().items())


def test_probabilities_and_log_probabilities(fitted, long_tail_corpus):
    texts, _ = long_tail_corpus
    proba = fitted.predict_proba(texts)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(fitted.predict_log_proba(texts)), proba, rtol=1e-10)
    np.testing.assert_array_equal(fitted.predict(texts), fitted.classes_[proba.argmax(axis=1)])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(alphabet="水稻刑法学深度网络 abc1", max_size=12), min_size=1, max_size=6))
def test_probability_rows_sum_to_one(fitted, texts):
    proba = fitted.predict_proba(texts)
    assert proba.shape == (len(texts), len(fitted.classes_))
    assert np.all(np.isfinite(proba)) and np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)


def test_string_and_integer_labels(long_tail_corpus):
    texts, labels = long_tail_corpus
    names = sorted(set(labels))
    codes = np.array([names.index(lab) + 7 for lab in labels])
    by_name = AutoTailClassifier(**SMALL, random_state=0).fit(texts, labels)
    by_code = AutoTailClassifier(**SMALL, random_state=0).fit(texts, codes)
    assert by_name.classes_.tolist() == names
    assert by_code.classes_.tolist() == list(range(7, 7 + len(names)))
    assert by_code.predict(texts).dtype.kind == "i"
    assert set(by_name.predict(texts)) <= set(names)
    # the same rows, the same seed: the same model up to the label names
    np.testing.assert_array_equal(by_name.predict_proba(texts), by_code.predict_proba(texts))


def test_clone_then_refit_gives_equal_results(fitted, _long_tail_corpus):
    texts, labels = _long_tail_corpus
    twin = clone(fitted)
    assert not hasattr(twin, "classes_")
    twin.fit(texts, labels)
    np.testing.assert_array_equal(twin.predict_proba(texts), fitted.predict_proba(texts))
    assert twin.history_[-1]["train_loss"] == fitted.history_[-1]["train_loss"]


def test_joblib_round_trip_is_bit_identical(fitted, long_tail_corpus, tmp_path):
    texts, _ = long_tail_corpus
    path = tmp_path / "model.sktail"
    joblib.dump(fitted, path)
    restored = joblib.load(path)
    np.testing.assert_array_equal(restored.decision_function(texts), fitted.decision_function(texts))
    np.testing.assert_array_equal(restored.predict(texts), fitted.predict(texts))
    np.testing.assert_array_equal(restored.prior_offsets_, fitted.prior_offsets_)
    unfitted = joblib.load(_dump(AutoTailClassifier(tail_gate=False), tmp_path / "unfitted.joblib"))
    assert unfitted.tail_gate is False and not hasattr(unfitted, "network_")


def _dump(obj, path):
    joblib.dump(obj, path)
    return path


def test_pipeline(long_tail_corpus):
    texts, labels = long_tail_corpus
    pipe = Pipeline([
        ("strip", FunctionTransformer(lambda xs: [x.strip() for x in xs])),
        ("clf", AutoTailClassifier(**SMALL, random_state=0)),
    ])
    pipe.set_params(clf__tail_gate=False)
    pipe.fit([" " + t for t in texts], labels)
    assert pipe.named_steps["clf"].tail_gate_on_ is False
    direct = AutoTailClassifier(**SMALL, tail_gate=False, random_state=0).fit(texts, labels)
    np.testing.assert_array_equal(pipe.predict_proba(texts), direct.predict_proba(texts))


def test_cross_val_score(long_tail_corpus):
    texts, labels = long_tail_corpus
    scores = cross_val_score(AutoTailClassifier(**SMALL, random_state=0), texts, labels, cv=3)
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))


@pytest.mark.parametrize("validation_fraction", [None, 0.2])
def test_counts_gate_and_tail_come_from_each_training_fold(long_tail_corpus, validation_fraction):
    texts, labels = long_tail_corpus
    y = np.asarray(labels)
    clf = AutoTailClassifier(**{**SMALL, "epochs": 1, "validation_fraction": validation_fraction}, random_state=0)
    result = cross_validate(
        clf, texts, y, cv=StratifiedKFold(3, shuffle=True, random_state=0),
        return_estimator=True, return_indices=True,
    )
    for est, train in zip(result["estimator"], result["indices"]["train"]):
        fold_counts = np.array([(y[train] == c).sum() for c in est.classes_])
        if validation_fraction is None:
            np.testing.assert_array_equal(est.class_counts_, fold_counts)
        else:
            assert est.class_counts_.sum() == len(train) - round(validation_fraction * len(train))
            assert np.all((est.class_counts_ >= 1) & (est.class_counts_ <= fold_counts))
        prior = compute_tail_prior(est.class_counts_)
        assert est.imbalance_index_ == pytest.approx(prior.imbalance_index, abs=1e-12)
        assert est.tail_gate_on_ == prior.gate_on
        np.testing.assert_array_equal(est.tail_classes_, est.classes_[prior.tail_mask])
        np.testing.assert_allclose(est.prior_offsets_, prior.offsets, rtol=1e-12)
    # the fold counts differ from the full-data counts, so nothing leaked
    full = np.array([(y == c).sum() for c in result["estimator"][0].classes_])
    assert all(not np.array_equal(est.class_counts_, full) for est in result["estimator"])


def test_grid_search_over_gate_and_fgm_is_the_same_with_two_jobs(long_tail_corpus):
    texts, labels = long_tail_corpus
    grid = {"tail_gate": [True, False], "fgm_epsilon": [0.0, 0.3]}
    base = AutoTailClassifier(**{**SMALL, "epochs": 1}, random_state=0)
    results = []
    for n_jobs in (1, 2):
        search = GridSearchCV(base, grid, cv=2, n_jobs=n_jobs).fit(texts, labels)
        results.append(search)
        assert len(search.cv_results_["params"]) == 4
        assert search.best_estimator_.tail_gate_on_ == search.best_params_["tail_gate"]
    np.testing.assert_array_equal(
        results[0].cv_results_["mean_test_score"], results[1].cv_results_["mean_test_score"]
    )
    assert results[0].best_params_ == results[1].best_params_


def _capture_trainers(monkeypatch):
    made = []

    class Recording(sktail._fit_plan.Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(sktail._fit_plan, "Trainer", Recording)
    return made


def test_baseline_trains_with_plain_label_smoothed_ce(long_tail_corpus, monkeypatch):
    texts, labels = long_tail_corpus
    made = _capture_trainers(monkeypatch)
    clf = AutoTailClassifier(**SMALL, **BASELINE, random_state=0).fit(texts, labels)
    (trainer,) = made
    assert clf.tail_gate_on_ is False and clf.imbalance_index_ > clf.gate_threshold
    np.testing.assert_array_equal(clf.prior_offsets_, 0.0)
    loss_fn = trainer.loss_fn
    assert torch.equal(loss_fn.offsets, torch.zeros(5)) and loss_fn.bs_weight == 0.0
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3, 4, 4])
    torch.testing.assert_close(loss_fn(z, y), F.cross_entropy(z, y, label_smoothing=0.05))
    n_batches = -(-len(texts) // SMALL["batch_size"])
    assert trainer.forward_passes == SMALL["epochs"] * n_batches  # no FGM pass


def test_default_objective_uses_prior_balanced_softmax_and_fgm(long_tail_corpus, monkeypatch):
    texts, labels = long_tail_corpus
    made = _capture_trainers(monkeypatch)
    clf = AutoTailClassifier(**SMALL, random_state=0).fit(texts, labels)
    (trainer,) = made
    assert clf.tail_gate_on_ and np.all(clf.prior_offsets_[np.isin(clf.classes_, clf.tail_classes_)] < 0)
    assert trainer.loss_fn.bs_weight == 0.1
    np.testing.assert_allclose(trainer.loss_fn.offsets.numpy(), clf.prior_offsets_, rtol=1e-6)
    n_batches = -(-len(texts) // SMALL["batch_size"])
    assert trainer.forward_passes == 2 * SMALL["epochs"] * n_batches


def test_bare_string_is_rejected():
    with pytest.raises(TypeError, match="wrap it in a list"):
        AutoTailClassifier(**SMALL).fit("水稻种植", ["农学"])


def test_binary_decision_function_gives_raw_logits_per_class():
    from sklearn.metrics import make_scorer, roc_auc_score

    from sktail.datasets import make_long_tail_text

    texts, labels = make_long_tail_text((30, 10), n_keywords=2, noise=0.0, random_state=0)
    y = np.array([sorted(set(labels)).index(lab) for lab in labels])
    clf = AutoTailClassifier(**SMALL, random_state=0).fit(texts, y)
    logits = clf.decision_function(texts)
    assert logits.shape == (len(texts), 2)
    proba = clf.predict_proba(texts)
    np.testing.assert_allclose(
        logits[:, 1] - logits[:, 0], np.log(proba[:, 1] / proba[:, 0]), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(clf.predict(texts), clf.classes_[logits.argmax(axis=1)])
    scorer = make_scorer(roc_auc_score, response_method="predict_proba")
    auc = cross_val_score(clf, texts, y, cv=2, scoring=scorer, error_score="raise")
    assert np.all((auc >= 0) & (auc <= 1))
