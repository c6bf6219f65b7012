"""Issue 28: every bad parameter, cache and folder gets a clear answer, and a failed fit changes nothing."""

import errno
import math
import os
import time
import warnings

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from sktail import AutoTailClassifier
from sktail import _feature_cache as feature_cache_module
from sktail._atomic import atomic_write_text, remove_stale_temporaries
from sktail._feature_cache import FeatureCache, text_keys
from sktail.adversarial import FGM
from sktail.encoders import _hf_loading
from sktail.encoders._registry import make_encoder
from sktail.inference import extract_features
from sktail.training.checkpoint import Checkpointer

from ._helpers import tiny_setup

BAG = {"encoder": "jieba-bag", "epochs": 1, "batch_size": 16, "validation_fraction": None, "random_state": 0,
       "encoder_options": {"embedding_dim": 8}}


# -- parameters ----------------------------------------------------------------------------------
def test_a_huge_fgm_epsilon_is_named_before_training(long_tail_corpus):
    with pytest.raises(InvalidParameterError, match=r"'fgm_epsilon' parameter .* range \[0.0, 10000.0\]. Got 1e\+300"):
        AutoTailClassifier(**BAG, fgm_epsilon=1e300).fit(*long_tail_corpus)
    with pytest.raises(ValueError, match=r"fgm_epsilon=1e\+300 is outside \[0, 10000\]: the FGM perturbation"):
        FGM(torch.nn.Parameter(torch.zeros(3, 2)), 1e300)


def test_a_huge_embedding_dim_is_refused_before_any_allocation(long_tail_corpus):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"encoder option embedding_dim=1000000000 is over the limit of 65536"):
        AutoTailClassifier(**{**BAG, "encoder_options": {"embedding_dim": 10**9}}).fit(*long_tail_corpus)
    assert time.perf_counter() - start < 2


def test_the_embedding_table_size_is_bounded(monkeypatch):
    from sktail.encoders import _bag

    encoder = _bag.BagEncoder(embedding_dim=64, min_count=1)
    encoder.fit_tokenize(["深度学习模型", "水稻种植技术"], 64)
    monkeypatch.setattr(_bag, "MAX_TABLE_BYTES", 1024)
    with pytest.raises(ValueError, match=r"embedding table would take .* lower encoder option embedding_dim"):
        encoder.build_network()


def test_nested_encoder_options_in_set_params_and_grid_search(long_tail_corpus):
    options = {"embedding_dim": 4, "min_count": 1}
    clf = AutoTailClassifier(**{**BAG, "encoder_options": options})
    assert clf.set_params(encoder_options__embedding_dim=8) is clf
    assert clf.encoder_options == {"embedding_dim": 8, "min_count": 1}
    assert options == {"embedding_dim": 4, "min_count": 1}  # the caller's dict is not changed
    assert AutoTailClassifier().set_params(encoder_options__embedding_dim=6).encoder_options == {"embedding_dim": 6}
    assert clf.set_params(encoder_options={"min_count": 3}, encoder_options__embedding_dim=5).encoder_options == {
        "min_count": 3, "embedding_dim": 5}
    with pytest.raises(ValueError, match="encoder options are one level deep"):
        clf.set_params(encoder_options__a__b=1)
    texts, labels = long_tail_corpus
    search = GridSearchCV(AutoTailClassifier(**BAG), {"encoder_options__embedding_dim": [4, 6]}, cv=2)
    search.fit(texts, labels)
    assert search.best_estimator_.encoder_.embedding_dim in (4, 6)


def test_an_unknown_encoder_fails_at_once_when_the_hub_cannot_be_reached(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(_hf_loading, "hub_reachable", lambda: False)
    start = time.perf_counter()
    for name in ("someone/no-such-model", "macbert-base"):
        with pytest.raises(ValueError, match=r"cannot be reached. Encoders that work offline: \['e5-small', 'jieba-bag', 'tfidf-e5'\]"):
            make_encoder(name)
    assert time.perf_counter() - start < 1


def test_built_in_names_and_local_folders_never_probe_the_hub(monkeypatch, tiny_bert_dir):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def probe():
        raise AssertionError("the hub was probed")

    monkeypatch.setattr(_hf_loading, "hub_reachable", probe)
    assert type(make_encoder("jieba-bag")).__name__ == "BagEncoder"
    assert make_encoder(str(tiny_bert_dir))._path == str(tiny_bert_dir)


# -- the feature cache ------------------------------------------------------------------------------
def _ids(n):
    return [np.array([2, 3 + i, 4], dtype=np.int64) for i in range(n)]


def _cache_with_block(tmp_path, features):
    cache = FeatureCache(tmp_path, "ns")
    keys = text_keys(_ids(len(features)))
    cache.store(keys, features)
    return cache, keys


@pytest.mark.parametrize("bad, problem", [
    (np.ones((3, 5), dtype=np.float32), "features 5 wide where the encoder gives 4"),
    (np.full((3, 4), np.nan, dtype=np.float32), "NaN or infinite features"),
])
def test_a_block_of_the_wrong_width_or_with_nan_is_skipped_with_a_warning(tmp_path, bad, problem):
    cache, keys = _cache_with_block(tmp_path, bad)
    with pytest.warns(RuntimeWarning, match=rf"Ignoring malformed feature-cache file .*: {problem}"):
        features, found = FeatureCache(tmp_path, "ns", width=4).lookup(keys)
    assert features is None and not found.any()


def test_a_fifo_named_like_a_block_is_skipped(tmp_path):
    cache, keys = _cache_with_block(tmp_path, np.ones((3, 4), dtype=np.float32))
    os.mkfifo(cache.directory / ("f" * 32 + ".npz"))
    with pytest.warns(RuntimeWarning, match="not a regular file"):
        features, found = cache.lookup(keys, width=4)
    assert found.all() and features.shape == (3, 4)


def _encode_through(cache):
    encoder, ids, network = tiny_setup()
    features, encoded = extract_features(network.encoder, encoder, ids, batch_size=4, device=torch.device("cpu"),
                                         cache=cache)
    assert encoded == len(set(map(bytes, ids))) or encoded == len(ids)
    assert features.shape == (len(ids), network.encoder.hidden_size) and np.isfinite(features).all()


@pytest.mark.parametrize("kind", ["file", "dangling-link", "inside-a-file"])
def test_a_file_or_dangling_link_as_feature_cache_warns_before_encoding(tmp_path, kind):
    where = tmp_path / "cache"
    if kind == "file":
        where.write_text("x")
    elif kind == "dangling-link":
        where.symlink_to(tmp_path / "gone")
    else:
        where.write_text("x")
        where = where / "sub"
    with pytest.warns(RuntimeWarning, match=r"feature_cache=.* is (a file|a dangling symbolic link|not a folder).*computed without it"):
        cache = FeatureCache(where, "ns")
    assert not cache.readable and not cache.writable
    _encode_through(cache)  # no FileExistsError / NotADirectoryError after the encoding


def test_a_read_only_feature_cache_is_read_but_not_written(tmp_path, monkeypatch):
    cache, keys = _cache_with_block(tmp_path, np.ones((3, 4), dtype=np.float32))
    monkeypatch.setattr(feature_cache_module, "_read_only", lambda folder: True)
    with pytest.warns(RuntimeWarning, match="cannot be written .* not stored"):
        read_only = FeatureCache(tmp_path, "ns", width=4)
    assert read_only.lookup(keys)[1].all()
    assert read_only.store(text_keys(_ids(5))[3:], np.ones((2, 4))) is None
    assert len(list(read_only.directory.iterdir())) == 1


def test_a_failing_cache_write_warns_and_the_work_goes_on(tmp_path, monkeypatch):
    def erofs(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(feature_cache_module, "atomic_write", erofs)
    cache = FeatureCache(tmp_path, "ns")
    with pytest.warns(RuntimeWarning, match="Could not write the feature cache .*Read-only file system.*continuing"):
        _encode_through(cache)
    assert not cache.writable


def test_feature_cache_with_the_bag_encoder_warns(long_tail_corpus, tmp_path):
    with pytest.warns(UserWarning, match="feature_cache is ignored with encoder='jieba-bag'"):
        AutoTailClassifier(**BAG, feature_cache=tmp_path).fit(*long_tail_corpus)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AutoTailClassifier(**BAG).fit(*long_tail_corpus)


# -- checkpoints, temporaries ------------------------------------------------------------------------
def test_a_regular_file_as_checkpoint_dir_is_named(long_tail_corpus, tmp_path):
    where = tmp_path / "ckpt"
    where.write_text("not a folder")
    with pytest.raises(ValueError, match=r"checkpoint_dir=.*ckpt' is a file, not a folder"):
        AutoTailClassifier(**BAG, checkpoint_dir=where).fit(*long_tail_corpus)
    with pytest.raises(ValueError, match=r"lies inside .*ckpt, which is a file"):
        Checkpointer(where / "sub", "0" * 24)


def test_only_abandoned_temporaries_of_the_same_target_are_removed(tmp_path):
    import subprocess
    import sys

    from sktail._atomic import _HOST

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "m.sktail"
    names = {
        "dead": f".m.sktail.{_HOST}-{dead.pid}.abcdefgh.tmp",
        "alive": f".m.sktail.{_HOST}-{os.getppid()}.abcdefgh.tmp",
        "legacy-old": ".m.sktail.abcd_fgh.tmp",
        "legacy-new": ".m.sktail.zzzzzzzz.tmp",
        "other-target": f".m.sktail.x.{_HOST}-{dead.pid}.abcdefgh.tmp",
    }
    for name in names.values():
        (tmp_path / name).write_text("partial")
    old = time.time() - 2 * 24 * 3600
    os.utime(tmp_path / names["legacy-old"], (old, old))
    removed = remove_stale_temporaries(target)
    assert sorted(p.name for p in removed) == sorted([names["dead"], names["legacy-old"]])
    atomic_write_text(target, "done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["m.sktail", names["alive"], names["legacy-new"], names["other-target"]])


# -- a failed fit keeps the previous fitted state ------------------------------------------------
@pytest.mark.parametrize("case", ["none-text", "one-class", "bad-weight"])
def test_a_fit_failing_on_data_keeps_the_previous_model(long_tail_corpus, case):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(**BAG).fit(texts, labels)
    network, classes, proba = clf.network_, clf.classes_, clf.predict_proba(texts[:4])
    bad = {
        "none-text": ([None, *texts[1:]], labels, None),
        "one-class": (texts, ["only"] * len(texts), None),
        "bad-weight": (texts, labels, [math.nan] * len(texts)),
    }[case]
    with pytest.raises((TypeError, ValueError)):
        clf.fit(bad[0], bad[1], sample_weight=bad[2])
    assert clf.network_ is network and clf.classes_ is classes
    np.testing.assert_array_equal(clf.predict_proba(texts[:4]), proba)
