"""Scoring Dask collections (``sktail/distributed.py``).

First with Dask's local scheduler, then on a ``LocalCluster`` of two worker
processes, one of which is killed in the middle of a job.
"""

from __future__ import annotations

import logging
import os
import signal
import time

import dask
import dask.bag as db
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from sktail import AutoTailClassifier
from sktail.distributed import is_main_process, predict_dask


@pytest.fixture(scope="module")
def fitted(_long_tail_corpus):
    texts, labels = _long_tail_corpus
    clf = AutoTailClassifier(encoder="jieba-bag",
        epochs=3, validation_fraction=None, encoder_options={"embedding_dim": 16}, random_state=0
    )
    return clf.fit(texts, labels)


@pytest.fixture(scope="module")
def papers(_long_tail_corpus):
    """Texts with a non-default index, as a pandas Series."""
    texts, _ = _long_tail_corpus
    texts = texts * 3
    return pd.Series(texts, index=[f"paper-{i:04d}" for i in range(len(texts))], name="title")


def _expected_proba(clf, papers):
    return pd.DataFrame(clf.predict_proba(papers.tolist()), index=papers.index, columns=list(clf.classes_))


# -- the local scheduler ---------------------------------------------------------
def test_series_labels_and_probabilities_equal_predict(fitted, papers):
    series = dd.from_pandas(papers, npartitions=4)
    with dask.config.set(scheduler="sync"):
        labels = predict_dask(fitted, series).compute()
        proba = predict_dask(fitted, series, proba=True).compute()
    pd.testing.assert_index_equal(labels.index, papers.index, exact=False)
    assert labels.name == "title"
    np.testing.assert_array_equal(labels.to_numpy(), fitted.predict(papers.tolist()))
    pd.testing.assert_frame_equal(proba, _expected_proba(fitted, papers), check_index_type=False)


def test_one_column_frame_and_divisions(fitted, papers):
    frame = dd.from_pandas(papers.to_frame(), npartitions=3)
    result = predict_dask(fitted, frame, proba=True)
    assert result.divisions == frame.divisions
    assert list(result.columns) == list(fitted.classes_)
    with dask.config.set(scheduler="sync"):
        computed = result.compute()
    pd.testing.assert_frame_equal(computed, _expected_proba(fitted, papers), check_index_type=False)


def test_bag_of_texts(fitted, papers):
    bag = db.from_sequence(papers.tolist(), npartitions=3)
    with dask.config.set(scheduler="sync"):
        labels = predict_dask(fitted, bag).compute()
        rows = predict_dask(fitted, bag, proba=True).compute()
    assert labels == fitted.predict(papers.tolist()).tolist()
    np.testing.assert_array_equal(np.vstack(rows), fitted.predict_proba(papers.tolist()))


def test_empty_partition_keeps_the_columns(fitted, papers):
    series = dd.from_pandas(papers, npartitions=2)
    empty = series[series.str.len() > 10_000]
    with dask.config.set(scheduler="sync"):
        proba = predict_dask(fitted, empty, proba=True).compute()
        labels = predict_dask(fitted, empty).compute()
    assert proba.shape == (0, len(fitted.classes_)) and list(proba.columns) == list(fitted.classes_)
    assert len(labels) == 0


def test_wrong_inputs_raise(fitted, papers):
    frame = dd.from_pandas(pd.DataFrame({"title": papers, "year": 2020}), npartitions=2)
    with pytest.raises(ValueError, match="2 columns"):
        predict_dask(fitted, frame)
    with pytest.raises(TypeError, match="dask.dataframe.Series"):
        predict_dask(fitted, papers.tolist())
    with pytest.raises(NotFittedError):
        predict_dask(AutoTailClassifier(), dd.from_pandas(papers, npartitions=2))


def test_is_main_process_follows_rank(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert not is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert is_main_process()


# -- two worker processes --------------------------------------------------------
@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    with cluster, Client(cluster) as c:
        yield c


def test_cluster_scores_like_one_process(client, fitted, papers):
    series = dd.from_pandas(papers, npartitions=6)
    proba = predict_dask(fitted, series, proba=True).compute()
    expected = _expected_proba(fitted, papers)
    pd.testing.assert_frame_equal(
        proba, expected, check_exact=False, rtol=1e-6, atol=1e-9, check_index_type=False
    )


def test_killed_worker_loses_and_duplicates_no_row(client, fitted, papers):
    def slowly(part):  # a partition takes a while, so the job is caught mid-way
        time.sleep(0.4)
        return part

    series = dd.from_pandas(papers, npartitions=12)
    slow = series.map_partitions(slowly, meta=series._meta)
    future = client.compute(predict_dask(fitted, slow, proba=True))

    deadline = time.monotonic() + 60
    busy = []
    while time.monotonic() < deadline and not future.done():
        busy = [w for w, tasks in client.processing().items() if tasks]
        if len(busy) == 2:
            break
        time.sleep(0.05)
    assert len(busy) == 2 and not future.done(), "the job ended before a worker could be killed"
    victim = busy[0]
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)

    proba = future.result(timeout=120)
    assert victim not in client.scheduler_info()["workers"]
    assert proba.index.is_unique
    pd.testing.assert_frame_equal(
        proba, _expected_proba(fitted, papers), check_exact=False, rtol=1e-6, atol=1e-9,
        check_index_type=False,
    )
