"""The on-disk feature cache: keys, namespaces, atomic blocks, concurrent writers."""

import threading

import joblib
import numpy as np
import pytest
import torch

from sktail._feature_cache import (
    FeatureCache,
    network_fingerprint,
    resolve_cache_location,
    text_keys,
)


def _ids(*rows):
    return [np.asarray(r, dtype=np.int64) for r in rows]


def test_text_keys_follow_the_ids():
    keys = text_keys(_ids([2, 7, 3], [2, 7, 3], [2, 7, 4], [2, 7]))
    assert keys.dtype == np.dtype("S16")
    assert keys[0] == keys[1]
    assert len(set(keys.tolist())) == 3
    # int32 and int64 ids of the same tokens are the same text.
    assert text_keys([np.array([2, 7, 3], dtype=np.int32)])[0] == keys[0]


def test_store_then_lookup_round_trip(tmp_path):
    cache = FeatureCache(tmp_path, "ns")
    keys = text_keys(_ids([1], [2], [3], [4]))
    features = np.arange(16, dtype=np.float32).reshape(4, 4)
    empty, found = cache.lookup(keys)
    assert empty is None and not found.any()
    cache.store(keys[[2, 0]], features[[2, 0]])
    found_features, found = cache.lookup(keys)
    assert found.tolist() == [True, False, True, False]
    np.testing.assert_array_equal(found_features[found], features[[0, 2]])
    # A second block completes the set; requested duplicates share a row.
    cache.store(keys[[1, 3]], features[[1, 3]])
    wanted = keys[[3, 3, 0, 1, 2]]
    found_features, found = cache.lookup(wanted)
    assert found.all()
    np.testing.assert_array_equal(found_features, features[[3, 3, 0, 1, 2]])


def test_block_names_are_content_addressed(tmp_path):
    cache = FeatureCache(tmp_path, "ns")
    keys = text_keys(_ids([1], [2], [3]))
    features = np.ones((3, 2), dtype=np.float32)
    first = cache.store(keys, features)
    second = cache.store(keys[::-1], features[::-1])
    assert first == second
    assert sorted(p.name for p in cache.directory.iterdir()) == [first.name]


def test_namespaces_are_separate(tmp_path):
    keys = text_keys(_ids([1, 2]))
    FeatureCache(tmp_path, "a").store(keys, np.ones((1, 3), dtype=np.float32))
    features, found = FeatureCache(tmp_path, "b").lookup(keys)
    assert features is None and not found.any()


def test_unreadable_and_temporary_files_are_ignored(tmp_path):
    cache = FeatureCache(tmp_path, "ns")
    keys = text_keys(_ids([1], [2]))
    cache.store(keys[:1], np.ones((1, 2), dtype=np.float32))
    (cache.directory / "broken.npz").write_bytes(b"not a zip file")
    (cache.directory / ".partial.npz.123.tmp").write_bytes(b"half written")
    with pytest.warns(RuntimeWarning, match="unreadable feature-cache file"):
        features, found = cache.lookup(keys)
    assert found.tolist() == [True, False]


def test_concurrent_writers_leave_a_valid_cache(tmp_path):
    keys = text_keys(_ids(*[[i, i + 1] for i in range(200)]))
    features = np.random.RandomState(0).randn(200, 8).astype(np.float32)
    errors = []

    def write(rows):
        try:
            for _ in range(5):
                FeatureCache(tmp_path, "ns").store(keys[rows], features[rows])
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    slices = [slice(0, 150), slice(50, 200), slice(0, 150), slice(0, 200)]
    threads = [threading.Thread(target=write, args=(s,)) for s in slices]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    cache = FeatureCache(tmp_path, "ns")
    assert not [p for p in cache.directory.iterdir() if p.name.startswith(".")]
    assert len(list(cache.directory.iterdir())) == 3
    got, found = cache.lookup(keys)
    assert found.all()
    np.testing.assert_array_equal(got, features)


def test_fingerprint_sees_every_weight_and_the_extra_settings():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    base = network_fingerprint(net)
    assert network_fingerprint(net) == base
    assert network_fingerprint(net, "autocast=torch.bfloat16") != base
    with torch.no_grad():
        net[1].bias[2] = torch.nextafter(net[1].bias[2], torch.tensor(1.0))
    assert network_fingerprint(net) != base
    other = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4, eps=1e-12))
    other.load_state_dict(net.state_dict())
    assert network_fingerprint(other) != network_fingerprint(net)


def test_resolve_cache_location(tmp_path):
    assert resolve_cache_location(None) is None
    assert resolve_cache_location(str(tmp_path)) == tmp_path
    assert resolve_cache_location(tmp_path) == tmp_path
    assert resolve_cache_location(joblib.Memory(tmp_path, verbose=0)) == tmp_path
    assert resolve_cache_location(joblib.Memory(None)) is None
    with pytest.raises(TypeError, match="feature_cache must be"):
        resolve_cache_location(3)
