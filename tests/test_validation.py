"""Input validation: bad inputs give clear errors, odd but valid inputs work."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

from sktail import AutoTailClassifier

TEXTS = ["深度学习模型", "水稻种植技术", "神经网络训练", "小麦病虫害", "卷积网络", "玉米产量"] * 2
LABELS = ["工学", "农学"] * 6
TINY = {"encoder": "jieba-bag", "epochs": 1, "batch_size": 8, "validation_fraction": None, "encoder_options": {"embedding_dim": 8}}


def _with(values, index, value):
    values = list(values)
    values[index] = value
    return values


# (case id, fit arguments, exception, message pattern)
BAD_FIT_INPUTS = [
    ("none-text", dict(X=_with(TEXTS, 1, None)), TypeError, r"X\[1\] is missing"),
    ("nan-text", dict(X=_with(TEXTS, 2, float("nan"))), TypeError, r"X\[2\] is missing"),
    ("pandas-na-text", dict(X=pd.Series(_with(TEXTS, 4, pd.NA), dtype=object)), TypeError, r"X\[4\] is missing"),
    ("bytes-text", dict(X=_with(TEXTS, 3, "文本".encode())), TypeError, r"X\[3\] is bytes"),
    ("number-text", dict(X=_with(TEXTS, 0, 5)), TypeError, r"X\[0\] is int"),
    ("nested-list", dict(X=_with(TEXTS, 4, ["深度", "学习"])), TypeError, r"X\[4\] is list"),
    ("lone-surrogate", dict(X=_with(TEXTS, 5, "a\ud800b")), ValueError, r"X\[5\] contains a lone surrogate"),
    ("bare-str", dict(X="深度学习模型"), TypeError, r"single str"),
    ("bare-bytes", dict(X=b"abc"), TypeError, r"single bytes"),
    ("2d-two-columns", dict(X=np.array([TEXTS, TEXTS], dtype=object).T), ValueError, r"shape \(12, 2\)"),
    ("dataframe-two-columns", dict(X=pd.DataFrame({"a": TEXTS, "b": TEXTS})), ValueError, r"2 columns"),
    ("dict", dict(X=dict(enumerate(TEXTS))), TypeError, r"dict"),
    ("not-iterable", dict(X=3.5), TypeError, r"list-like of str, got float"),
    ("empty-X", dict(X=[], y=[]), ValueError, r"X is empty"),
    ("length-mismatch", dict(y=LABELS[:-1]), ValueError, r"12 texts but 11 labels"),
    ("none-label", dict(y=_with(LABELS, 2, None)), ValueError, r"y\[2\] is missing"),
    ("nan-label", dict(y=_with([0, 1] * 6, 5, float("nan"))), ValueError, r"y\[5\] is missing"),
    ("single-class", dict(y=["工学"] * 12), ValueError, r"single class"),
    ("2d-y", dict(y=np.zeros((12, 2), dtype=int)), ValueError, r"1-D .*Multilabel"),
    ("multilabel-lists", dict(y=_with(LABELS, 7, ["工学", "农学", "理学"])), ValueError, r"y\[7\] is a list; multilabel"),
    ("mixed-label-types", dict(y=_with(LABELS, 3, 1)), TypeError, r"mixes label types"),
    ("continuous-y", dict(y=np.linspace(0, 1, 12)), ValueError, r"continuous"),
    ("negative-weight", dict(sample_weight=_with([1.0] * 12, 3, -1.0)), ValueError, r"sample_weight\[3\] is -1.0"),
    ("nan-weight", dict(sample_weight=_with([1.0] * 12, 1, math.nan)), ValueError, r"sample_weight\[1\] is nan"),
    ("weight-length", dict(sample_weight=[1.0] * 5), ValueError, r"sample_weight must have shape \(12,\)"),
    ("zero-weights", dict(sample_weight=[0.0] * 12), ValueError, r"sums to 0"),
    ("validation-not-pair", dict(validation_data=TEXTS), ValueError, r"pair \(X_val, y_val\)"),
    ("validation-2d", dict(validation_data=(np.array([TEXTS, TEXTS]).T, LABELS)), ValueError, r"X_val must be 1-D"),
    ("validation-length", dict(validation_data=(TEXTS, LABELS[:3])), ValueError, r"X_val and y_val have different lengths"),
    ("validation-none-text", dict(validation_data=(_with(TEXTS, 6, None), LABELS)), TypeError, r"X_val\[6\] is missing"),
    ("validation-unseen-label", dict(validation_data=(TEXTS, _with(LABELS, 0, "理学"))), ValueError, r"not present in y: \['理学'\]"),
    ("validation-label-type", dict(validation_data=(TEXTS, [0, 1] * 6)), TypeError, r"y_val holds number labels but y holds str"),
]


@pytest.mark.parametrize("arguments, error, message", [case[1:] for case in BAD_FIT_INPUTS], ids=[c[0] for c in BAD_FIT_INPUTS])
def test_bad_fit_input_is_rejected_with_a_clear_error(arguments, error, message):
    arguments = {"X": TEXTS, "y": LABELS, **arguments}
    with pytest.raises(error, match=message):
        AutoTailClassifier(**TINY, random_state=0).fit(**arguments)


def test_at_least_twenty_bad_inputs_are_covered():
    assert len(BAD_FIT_INPUTS) >= 20


# Each parameter with values outside its bounds.
BAD_PARAMS = [
    ("encoder", 3), ("epoch_selection", "best"), ("epoch_selection", None), ("max_length", 0), ("max_length", "long"), ("epochs", 0), ("epochs", 2.5),
    ("batch_size", 0), ("learning_rate", 0.0), ("learning_rate", -1e-3), ("learning_rate", math.nan),
    ("weight_decay", -0.1), ("warmup_ratio", 1.5), ("max_grad_norm", 0.0), ("dropout", 1.0),
    ("dropout", -0.1), ("label_smoothing", 1.0), ("tail_gate", "yes"), ("gate_threshold", 1.1),
    ("tail_tau", -1.0), ("prior_alpha", 0.0), ("bs_weight", 1.5), ("bs_temperature", -0.5),
    ("fgm_epsilon", -0.1), ("fgm_epsilon", math.inf), ("fgm_weight", -1.0), ("validation_fraction", 1.0),
    ("encoder_options", ["embedding_dim"]), ("precision", "fp8"), ("grad_accumulation_steps", 0),
    ("device", 0), ("random_state", "seed"), ("verbose", -1), ("checkpoint_dir", 3),
    ("checkpoint_interval", -1.0), ("distributed", "yes"), ("keep_on_device", "no"),
    ("train_encoder", 0), ("train_encoder", "some"), ("feature_cache", 3),
]


@pytest.mark.parametrize("name, value", BAD_PARAMS)
def test_invalid_parameter_values_are_rejected(name, value):
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        AutoTailClassifier(**{**TINY, name: value}).fit(TEXTS, LABELS)


def test_every_parameter_has_an_invalid_value_case():
    assert {name for name, _ in BAD_PARAMS} == set(AutoTailClassifier().get_params())


@pytest.mark.parametrize(
    "options, message",
    [
        ({"embedding_dim": 0}, "embedding_dim must be a positive int"),
        ({"min_count": 1.5}, "min_count must be a positive int"),
        ({"init_std": math.nan}, "init_std must be a finite float"),
        ({"token_dropout": 1.0}, r"token_dropout must be a float in \[0, 1\)"),
        ({"token_dropout": True}, "token_dropout must be a float"),
        ({"words": False, "chars": False, "bigrams": False}, "enable at least one"),
        ({"hidden": 3}, r"encoder_options \['hidden'\] are not valid"),
    ],
)
def test_invalid_encoder_options(options, message):
    with pytest.raises(ValueError, match=message):
        AutoTailClassifier(**{**TINY, "encoder_options": options}).fit(TEXTS, LABELS)


def test_unknown_device_string():
    with pytest.raises(ValueError, match="device='gpu0' is not a valid torch device"):
        AutoTailClassifier(**TINY, device="gpu0").fit(TEXTS, LABELS)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba", "decision_function", "save"])
def test_methods_before_fit_raise_not_fitted(method, tmp_path):
    argument = tmp_path / "m.sktail" if method == "save" else TEXTS
    with pytest.raises(NotFittedError):
        getattr(AutoTailClassifier(), method)(argument)


# -- odd but valid inputs ----------------------------------------------------------
ODD_TEXTS = [
    "", "   ", "\t\n", "😀🚀 深度学习", "控制\x00字符\x1b\x07", "mixed 中文 English ру́сский العربية 日本語",
    "\u200b\u200d零宽", "深度学习" * 25_000, "a", "水稻\r\n种植",
]


@pytest.fixture(scope="module")
def bag_model():
    texts = TEXTS + ODD_TEXTS
    labels = LABELS + ["工学", "农学"] * (len(ODD_TEXTS) // 2)
    return AutoTailClassifier(**TINY, random_state=0).fit(texts, labels)


def test_odd_texts_fit_and_predict(bag_model):
    proba = bag_model.predict_proba(ODD_TEXTS)
    assert proba.shape == (len(ODD_TEXTS), 2)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_long_text_is_truncated_to_max_length(bag_model):
    ids = bag_model.encoder_.tokenize(["深度学习" * 25_000], bag_model.max_length_)
    assert len(ids[0]) == bag_model.max_length_


@pytest.mark.parametrize(
    "container",
    [
        list,
        tuple,
        lambda t: np.array(t, dtype=object),
        lambda t: np.array(t),
        lambda t: np.array(t, dtype=object).reshape(-1, 1),
        pd.Series,
        lambda t: pd.DataFrame({"text": t}),
        iter,
    ],
    ids=["list", "tuple", "object-array", "unicode-array", "column-array", "series", "one-column-frame", "iterator"],
)
def test_containers_give_the_same_predictions(bag_model, container):
    expected = bag_model.predict_proba(TEXTS)
    np.testing.assert_array_equal(bag_model.predict_proba(container(TEXTS)), expected)


def test_pandas_fit_inputs():
    X = pd.DataFrame({"title": TEXTS})
    y = pd.Series(LABELS, name="label")
    clf = AutoTailClassifier(**TINY, random_state=0).fit(X, y)
    assert clf.classes_.tolist() == ["农学", "工学"]


@pytest.fixture(scope="module")
def bert_model(tiny_bert_dir):
    return AutoTailClassifier(
        encoder=str(tiny_bert_dir), epochs=1, batch_size=8, learning_rate=1e-3,
        validation_fraction=None, fgm_epsilon=0.1, random_state=0,
    ).fit(TEXTS + ODD_TEXTS, LABELS + ["工学", "农学"] * 5)


def test_odd_texts_with_a_transformer_encoder(bert_model):
    clf = bert_model
    ids = clf.encoder_.tokenize(ODD_TEXTS, clf.max_length_)
    assert max(len(a) for a in ids) == clf.max_length_
    proba = clf.predict_proba(ODD_TEXTS)
    assert np.all(np.isfinite(proba)) and proba.shape == (len(ODD_TEXTS), 2)


# -- properties over arbitrary unicode -------------------------------------------------
@pytest.mark.parametrize("model", ["bag_model", "bert_model"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(max_size=40), min_size=1, max_size=6))
def test_predict_proba_on_arbitrary_unicode(request, model, texts):
    clf = request.getfixturevalue(model)
    proba = clf.predict_proba(texts)
    assert proba.shape == (len(texts), 2)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert set(clf.predict(texts)) <= set(clf.classes_)


@settings(max_examples=5, deadline=None)
@given(texts=st.lists(st.text(max_size=30), min_size=4, max_size=8))
def test_fit_on_arbitrary_unicode(texts):
    labels = ["a", "b"] * (len(texts) // 2) + ["a"] * (len(texts) % 2)
    clf = AutoTailClassifier(**{**TINY, "encoder_options": {"embedding_dim": 4}}, random_state=0)
    predictions = clf.fit(texts, labels).predict(texts)
    assert predictions.shape == (len(texts),)
    assert set(predictions) <= {"a", "b"}
    assert all(bool(torch.isfinite(p).all()) for p in clf.network_.parameters())


# -- unordered containers, iterators and extreme weights ----------------------------------
UNORDERED = {
    "set": set, "frozenset": frozenset, "dict": lambda v: dict(enumerate(v)),
    "dict-keys": lambda v: dict.fromkeys(v).keys(), "dict-values": lambda v: dict(enumerate(v)).values(),
    "dict-items": lambda v: dict(enumerate(v)).items(),
}


@pytest.mark.parametrize("make", UNORDERED.values(), ids=UNORDERED.keys())
@pytest.mark.parametrize("argument", ["X", "y", "X_val", "y_val", "sample_weight"])
def test_unordered_containers_are_rejected_everywhere(argument, make):
    values = {"X": TEXTS, "y": LABELS, "X_val": TEXTS, "y_val": LABELS, "sample_weight": [1.0] * 12}[argument]
    arguments = {"X": TEXTS, "y": LABELS}
    if argument.endswith("_val"):
        pair = {"X_val": TEXTS, "y_val": LABELS, argument: make(values)}
        arguments["validation_data"] = (pair["X_val"], pair["y_val"])
    else:
        arguments[argument] = make(values)
    with pytest.raises(TypeError, match=f"{argument} is a .*no defined order"):
        AutoTailClassifier(**TINY, random_state=0).fit(**arguments)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function"])
def test_predict_on_a_set_is_rejected(bag_model, method):
    with pytest.raises(TypeError, match="X is a set, which has no defined order"):
        getattr(bag_model, method)(set(TEXTS))


def test_generators_are_read_once_for_every_fit_input():
    expected = AutoTailClassifier(**TINY, random_state=0).fit(TEXTS, LABELS, sample_weight=[1.0] * 12)
    clf = AutoTailClassifier(**TINY, random_state=0).fit(
        (t for t in TEXTS), (y for y in LABELS), sample_weight=(1.0 for _ in TEXTS),
        validation_data=((t for t in TEXTS), (y for y in LABELS)),
    )
    np.testing.assert_array_equal(clf.predict_proba(TEXTS), expected.predict_proba(TEXTS))


def test_scalar_y_is_a_type_error():
    with pytest.raises(TypeError, match="y must be a sequence of labels .* got int"):
        AutoTailClassifier(**TINY).fit(TEXTS, 5)


@pytest.mark.parametrize("scale", [2.0**900, 2.0**-900, 0.5, 1e300, 1e-300, 3.0])
def test_sample_weight_scale_does_not_change_the_fit(scale):
    weights = np.array([1.0, 2.0, 0.5] * 4)
    expected = AutoTailClassifier(**TINY, random_state=0).fit(TEXTS, LABELS, sample_weight=weights)
    clf = AutoTailClassifier(**TINY, random_state=0).fit(TEXTS, LABELS, sample_weight=weights * scale)
    assert all(np.isfinite(h["train_loss"]) for h in clf.history_)
    if np.frexp(scale)[0] == 0.5:  # a power of two: the float32 weighted means are bit-identical
        np.testing.assert_array_equal(clf.predict_proba(TEXTS), expected.predict_proba(TEXTS))
    else:
        np.testing.assert_allclose(clf.predict_proba(TEXTS), expected.predict_proba(TEXTS), rtol=1e-5)


@pytest.mark.parametrize(
    "weights, message",
    [
        (_with([1e300] * 12, 4, 1e-300), r"sample_weight\[4\] is 1e-300, less than 1e-30 times the largest"),
        (_with([1.0] * 12, 2, math.inf), r"sample_weight\[2\] is inf"),
        ([1e308] * 11 + [-1.0], r"sample_weight\[11\] is -1.0"),
        (["a"] * 12, r"sample_weight must be numbers"),
    ],
)
def test_unusable_sample_weights_name_sample_weight(weights, message):
    with pytest.raises((TypeError, ValueError), match=message):
        AutoTailClassifier(**TINY, random_state=0).fit(TEXTS, LABELS, sample_weight=weights)
