"""Scale-out helpers: scoring Dask collections of texts, and rank 0 of torchrun jobs.

This is a leaf module: ``dask`` is imported only inside :func:`predict_dask`
(install it with ``pip install "sktail[dask]"``). Data-parallel *training*
needs no helper: ``AutoTailClassifier.fit`` joins a ``torchrun`` job by itself
(see its ``distributed`` parameter and ``docs/distributed.md``).
"""

from __future__ import annotations

import os
import uuid

import numpy as np

__all__ = ["is_main_process", "predict_dask"]


def is_main_process() -> bool:
    """Whether this process is rank 0 of a ``torch.distributed`` job (or runs alone).

    Use it to write files once, e.g. ``if is_main_process(): joblib.dump(clf, path)``.

    Returns
    -------
    bool
        False only on ranks other than 0: of the initialised process group,
        else of the ``RANK`` variable that ``torchrun`` sets.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def _import_dask():
    try:
        import dask
        import dask.bag
        import dask.dataframe
    except ImportError as error:
        raise ImportError(
            'predict_dask needs dask with its dataframe and distributed parts: pip install "sktail[dask]"'
        ) from error
    return dask


def _share(estimator):
    """Ship the estimator to the workers once, not with every task.

    With a ``distributed`` client the pickled estimator is scattered to every
    worker (a restarted worker copies it from a peer); with the local
    schedulers it becomes a single node of the graph.
    """
    import dask

    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        client = None
    if client is None:
        return dask.delayed(estimator, name=f"sktail-estimator-{uuid.uuid4().hex}", traverse=False)
    return client.scatter(estimator, broadcast=True, hash=False)


def _scores(estimator, texts, proba: bool):
    if len(texts) == 0:
        if proba:
            return np.zeros((0, len(estimator.classes_)))
        return np.asarray(estimator.classes_)[:0]
    return estimator.predict_proba(texts) if proba else estimator.predict(texts)


def _score_series(part, estimator, proba: bool):
    """Labels (a Series) or probabilities (a DataFrame) of one pandas partition."""
    import pandas as pd

    values = _scores(estimator, part, proba)
    if proba:
        return pd.DataFrame(values, index=part.index, columns=list(estimator.classes_))
    return pd.Series(values, index=part.index, name=part.name)


def _score_list(part, estimator, proba: bool):
    """Labels, or one probability row per text, of one Bag partition."""
    texts = list(part)
    values = _scores(estimator, texts, proba)
    return list(values) if proba else values.tolist()


def predict_dask(estimator, texts, *, proba=False):
    """Score a Dask collection of texts with a fitted classifier, partition by partition.

    The estimator is pickled and sent to each worker once (scattered to all
    workers when a ``distributed`` client is active); every partition is then
    scored by the ordinary ``predict`` or ``predict_proba`` on its worker.
    Tasks are pure, so when a worker dies Dask recomputes its partitions on
    another worker: no row is lost or duplicated.

    Parameters
    ----------
    estimator : classifier
        A fitted classifier over raw texts: an
        :class:`~sktail.AutoTailClassifier`, or a scikit-learn ``Pipeline``
        ending in a classifier (``classes_`` and ``predict_proba`` needed for
        ``proba=True``).
    texts : dask.dataframe.Series, dask.dataframe.DataFrame or dask.bag.Bag
        The texts: a Series (e.g. ``ddf["title"]``), a one-column DataFrame,
        or a Bag of strings.
    proba : bool, default=False
        Return class probabilities instead of labels.

    Returns
    -------
    dask.dataframe.Series, dask.dataframe.DataFrame or dask.bag.Bag
        Lazy. For Series and DataFrame input: a Series of labels with the
        input's index and divisions, or with ``proba=True`` a DataFrame with
        one column per class of ``estimator.classes_``. For a Bag: a Bag of
        labels, or of probability rows (1-D arrays). Call ``.compute()``,
        ``.persist()`` or ``.to_parquet(...)``.

    See Also
    --------
    sktail.AutoTailClassifier.predict_proba : The scoring run on each partition.

    Notes
    -----
    Give GPU workers one thread each (``threads_per_worker=1``, or
    ``dask-cuda``'s ``LocalCUDACluster``): the classifier moves its network to
    the device for each call. On CPU workers, torch's own threads and Dask's
    threads multiply; one thread per worker process and several processes is
    the safe layout. Dask's nanny starts such workers with
    ``OMP_NUM_THREADS=1``, so torch runs one intra-op thread per task, and
    the ONNX Runtime path of ``precision="auto"`` (``docs/speed.md``) takes
    its thread count from ``torch.get_num_threads()``: it never starts more
    threads than torch would. Each worker builds its ONNX Runtime session on
    its first partition.

    Examples
    --------
    >>> import pandas as pd, dask.dataframe as dd
    >>> from sktail import AutoTailClassifier
    >>> texts = ["深度学习模型", "神经网络训练", "水稻种植技术", "小麦病虫害"] * 5
    >>> labels = ["工学", "工学", "农学", "农学"] * 5
    >>> clf = AutoTailClassifier(epochs=20, validation_fraction=None, random_state=0).fit(texts, labels)
    >>> papers = dd.from_pandas(pd.DataFrame({"title": ["卷积神经网络", "水稻产量"] * 3}), npartitions=2)
    >>> predict_dask(clf, papers["title"]).compute().tolist()
    ['工学', '农学', '工学', '农学', '工学', '农学']
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    dask = _import_dask()
    if proba and not hasattr(estimator, "predict_proba"):
        raise AttributeError(f"{type(estimator).__name__} has no predict_proba; use proba=False.")
    if isinstance(texts, dask.bag.Bag):
        return texts.map_partitions(_score_list, _share(estimator), proba)
    if isinstance(texts, dask.dataframe.DataFrame):
        if len(texts.columns) != 1:
            raise ValueError(
                f"texts is a DataFrame with {len(texts.columns)} columns; pass the text column, "
                "e.g. predict_dask(clf, ddf['title'])."
            )
        texts = texts[texts.columns[0]]
    if not isinstance(texts, dask.dataframe.Series):
        raise TypeError(
            "texts must be a dask.dataframe.Series, a one-column dask.dataframe.DataFrame or a "
            f"dask.bag.Bag, got {type(texts).__name__}; for in-memory texts call estimator.predict."
        )
    meta = _score_series(texts._meta, estimator, proba)
    return texts.map_partitions(_score_series, _share(estimator), proba, meta=meta)
