"""Pickle-free model files: round trips, atomic writes, rejected files."""

import hashlib
import json
import os
import pickle
import re
import shutil
import stat
import sys
import zipfile

import numpy as np
import pytest
import torch

import sktail
from sktail import AutoTailClassifier, load
from sktail._persistence import FORMAT_VERSION, ModelFileError, atomic_write, save

TINY = {"encoder": "jieba-bag", "epochs": 2, "batch_size": 8, "validation_fraction": 0.2, "encoder_options": {"embedding_dim": 8}}


@pytest.fixture(scope="module")
def corpus():
    from sktail.datasets import make_long_tail_text

    return make_long_tail_text((12, 6, 4), n_keywords=2, noise=0.0, random_state=0)


@pytest.fixture(scope="module")
def bag_model(corpus):
    return AutoTailClassifier(**TINY, random_state=0).fit(*corpus)


@pytest.fixture
def model_file(bag_model, tmp_path):
    return bag_model.save(tmp_path / "model.sktail")


def _assert_same_model(restored, original, texts):
    np.testing.assert_array_equal(restored.predict_proba(texts), original.predict_proba(texts))
    np.testing.assert_array_equal(restored.predict(texts), original.predict(texts))
    assert restored.classes_.dtype == original.classes_.dtype
    assert restored.get_params() == original.get_params()
    for name in ("class_counts_", "prior_offsets_", "tail_classes_"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(original, name))
        assert getattr(restored, name).dtype == getattr(original, name).dtype
    for name in ("history_", "best_epoch_", "best_validation_score_", "imbalance_index_", "tail_gate_on_", "n_iter_"):
        assert getattr(restored, name) == getattr(original, name)
        assert type(getattr(restored, name)) is type(getattr(original, name))


def test_bag_model_round_trip_is_bit_identical(bag_model, model_file, corpus):
    restored = sktail.load(model_file)
    _assert_same_model(restored, bag_model, corpus[0] + ["未见过的文本", ""])
    assert restored.encoder_.vocabulary.tokens_ == bag_model.encoder_.vocabulary.tokens_


def test_integer_labels_keep_their_dtype(corpus, tmp_path):
    texts, labels = corpus
    names = sorted(set(labels))
    y = np.array([names.index(label) * 7 for label in labels], dtype=np.int32)
    clf = AutoTailClassifier(**{**TINY, "epochs": 1, "validation_fraction": None}, random_state=1).fit(texts, y)
    restored = load(save(clf, tmp_path / "int.sktail"))
    assert restored.classes_.dtype == np.int32
    _assert_same_model(restored, clf, texts)


def test_transformer_model_round_trip_without_the_source_directory(tiny_bert_dir, corpus, tmp_path):
    source = shutil.copytree(tiny_bert_dir, tmp_path / "bert")
    clf = AutoTailClassifier(
        encoder=str(source), epochs=1, batch_size=8, learning_rate=1e-3, validation_fraction=None,
        fgm_epsilon=0.1, encoder_options={"prune_vocabulary": True}, random_state=0,
    ).fit(*corpus)
    path = clf.save(tmp_path / "bert.sktail")
    shutil.rmtree(source)  # the file must be self-contained
    restored = load(path)
    assert restored.encoder_._kept_ids.tolist() == clf.encoder_._kept_ids.tolist()
    _assert_same_model(restored, clf, corpus[0] + ["完全没有见过的字"])
    members = zipfile.ZipFile(path).namelist()
    assert "encoder/config.json" in members and "network.safetensors" in members


def test_file_holds_only_data(model_file):
    with zipfile.ZipFile(model_file) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["format_version"] == FORMAT_VERSION
        for name in names:
            assert name.endswith((".json", ".safetensors"))
            if name != "manifest.json":
                assert hashlib.sha256(archive.read(name)).hexdigest() == manifest["files"][name]


def test_saving_twice_gives_identical_bytes(bag_model, tmp_path):
    a, b = bag_model.save(tmp_path / "a.sktail"), bag_model.save(tmp_path / "b.sktail")
    assert a.read_bytes() == b.read_bytes()


# -- atomic writes -------------------------------------------------------------------
def test_crash_during_save_keeps_the_previous_file(bag_model, model_file, monkeypatch):
    before = model_file.read_bytes()
    calls = []

    def crash_on_second_member(self, *args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    original = zipfile.ZipFile.writestr
    monkeypatch.setattr(zipfile.ZipFile, "writestr", crash_on_second_member)
    with pytest.raises(OSError, match="disk full"):
        bag_model.save(model_file)
    assert model_file.read_bytes() == before
    assert os.listdir(model_file.parent) == [model_file.name]  # no temporary file left behind


def test_atomic_write_replaces_only_when_complete(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def fail(handle):
        handle.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, fail)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["file.bin"]
    atomic_write(target, lambda handle: handle.write(b"new"))
    assert target.read_bytes() == b"new"


# -- rejected files --------------------------------------------------------------------
def _rewrite(path, change, *, fix_checksums=False, compression=None):
    """Rewrite a model file through ``change(members) -> members``.

    ``fix_checksums`` recomputes the manifest's checksums and sizes;
    ``compression`` maps member names to a zip compression (default stored).
    """
    compression = compression or {}
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members = change(members)
    if fix_checksums:
        manifest = json.loads(members["manifest.json"])
        manifest["files"] = {n: hashlib.sha256(d).hexdigest() for n, d in members.items() if n != "manifest.json"}
        if "sizes" in manifest:
            manifest["sizes"] = {n: len(d) for n, d in members.items() if n != "manifest.json"}
        members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data, compress_type=compression.get(name, zipfile.ZIP_STORED))
    return path


def _edit_json(name, edit):
    def change(members):
        data = json.loads(members[name])
        edit(data)
        members[name] = json.dumps(data).encode()
        return members

    return change


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_file_is_rejected_and_never_executed(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.sktail"
    path.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(ModelFileError, match="not an sktail model file"):
        load(path)
    assert not marker.exists()


def test_pickle_inside_the_archive_is_never_executed(model_file, tmp_path):
    marker = tmp_path / "code-ran"

    def add(members):
        members["encoder/vocab.pkl"] = pickle.dumps(_Payload(str(marker)))
        return members

    _rewrite(model_file, add, fix_checksums=True)
    with pytest.raises(ModelFileError, match="unexpected member 'encoder/vocab.pkl'"):
        load(model_file)
    assert not marker.exists()


REJECTED = [
    ("truncated", lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not an sktail model file"),
    ("empty", lambda p: p.write_bytes(b""), "not an sktail model file"),
    ("json-file", lambda p: p.write_text('{"format": "sktail-model"}'), "not an sktail model file"),
    ("torch-file", lambda p: torch.save({"w": torch.zeros(2)}, p), "has no manifest.json"),
    (
        "flipped-weight-byte",
        lambda p: _rewrite(p, lambda m: {**m, "network.safetensors": m["network.safetensors"][:-1] + b"\x01"}),
        "checksum mismatch for network.safetensors",
    ),
    (
        "edited-config",
        lambda p: _rewrite(p, _edit_json("model.json", lambda d: d["params"].update(dropout=0.5))),
        "checksum mismatch for model.json",
    ),
    (
        "future-version",
        lambda p: _rewrite(p, _edit_json("manifest.json", lambda d: d.update(format_version=99))),
        "format version 99",
    ),
    (
        "foreign-format",
        lambda p: _rewrite(p, _edit_json("manifest.json", lambda d: d.update(format="other"))),
        "format is not 'sktail-model'",
    ),
    (
        "missing-member",
        lambda p: _rewrite(p, lambda m: {k: v for k, v in m.items() if k != "encoder/vocabulary.json"}),
        "do not match its manifest",
    ),
    (
        "path-traversal",
        lambda p: _rewrite(p, lambda m: {**m, "encoder/../../x.json": b"{}"}, fix_checksums=True),
        "unexpected member",
    ),
    (
        "unknown-parameter",
        lambda p: _rewrite(p, _edit_json("model.json", lambda d: d["params"].update(evil=1)), fix_checksums=True),
        r"parameters this sktail does not know: \['evil'\]",
    ),
    (
        "private-attribute",
        lambda p: _rewrite(p, _edit_json("model.json", lambda d: d["fitted"].update(__class__=1)), fix_checksums=True),
        "not a fitted attribute",
    ),
    (
        "unknown-encoder",
        lambda p: _rewrite(p, _edit_json("model.json", lambda d: d["encoder"].update(type="os.system")), fix_checksums=True),
        "unknown encoder type 'os.system'",
    ),
    (
        "weights-of-another-shape",
        lambda p: _rewrite(
            p, _edit_json("model.json", lambda d: d["encoder"]["config"].update(embedding_dim=9)), fix_checksums=True
        ),
        "inconsistent",
    ),
]


@pytest.mark.parametrize("damage, message", [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED])
def test_damaged_or_foreign_files_are_rejected(model_file, damage, message):
    damage(model_file)
    with pytest.raises(ModelFileError, match=message):
        load(model_file)


def test_flipped_bytes_are_detected_or_harmless(bag_model, model_file, corpus):
    data = model_file.read_bytes()
    expected = bag_model.predict_proba(corpus[0])
    rejected = 0
    for position in np.random.RandomState(0).choice(len(data), size=8, replace=False):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        model_file.write_bytes(bytes(damaged))
        try:
            restored = load(model_file)
        except ModelFileError:
            rejected += 1
            continue
        # Only bytes no reader uses (such as zip header timestamps) may be flipped unnoticed.
        np.testing.assert_array_equal(restored.predict_proba(corpus[0]), expected)
    assert rejected >= 6


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.sktail")


def test_load_is_exported_lazily():
    assert "load" in sktail.__all__ and sktail.load is load
    assert "sktail._persistence" in sys.modules


# -- destinations and permissions ----------------------------------------------------------
def _no_serialisation(monkeypatch):
    import sktail._persistence as persistence

    def fail(estimator):
        raise AssertionError("the model was serialised before the destination was checked")

    monkeypatch.setattr(persistence, "_members", fail)


def test_save_refuses_a_device_or_pipe_before_any_work(bag_model, tmp_path, monkeypatch):
    fifo = tmp_path / "null"
    os.mkfifo(fifo)  # stands in for /dev/null, /dev/full: not a regular file
    _no_serialisation(monkeypatch)
    with pytest.raises(ValueError, match="not a regular file"):
        bag_model.save(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(tmp_path) == ["null"]


@pytest.mark.parametrize("where, error", [("folder", IsADirectoryError), ("missing/m.sktail", FileNotFoundError)])
def test_save_refuses_a_folder_or_a_missing_folder_before_any_work(bag_model, tmp_path, monkeypatch, where, error):
    (tmp_path / "folder").mkdir()
    _no_serialisation(monkeypatch)
    with pytest.raises(error):
        save(bag_model, tmp_path / where)
    assert os.listdir(tmp_path) == ["folder"] and os.listdir(tmp_path / "folder") == []


def test_save_through_a_symlink_keeps_the_link(bag_model, model_file, corpus, tmp_path):
    link = tmp_path / "latest.sktail"
    link.symlink_to(model_file.name)
    model_file.write_bytes(b"old")
    bag_model.save(link)
    assert link.is_symlink() and os.readlink(link) == model_file.name
    _assert_same_model(load(link), bag_model, corpus[0])
    assert model_file.read_bytes() == link.read_bytes()


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600)])
def test_model_files_follow_the_umask_and_keep_an_existing_mode(bag_model, tmp_path, mask, expected):
    previous = os.umask(mask)
    try:
        new = bag_model.save(tmp_path / "new.sktail")
        existing = tmp_path / "existing.sktail"
        existing.write_bytes(b"")
        existing.chmod(0o644)
        bag_model.save(existing)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(new.stat().st_mode) == expected
    assert stat.S_IMODE(existing.stat().st_mode) == 0o644


# -- loading limits: declared sizes, bounded reads, shapes checked before allocation -------------
def _inflating(path, name, extra_bytes):
    """Rewrite ``path`` so that member ``name`` inflates to ``extra_bytes`` more (spaces after its JSON)."""
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            if member != name:
                archive.writestr(member, data)
                continue
            info = zipfile.ZipInfo(member)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as handle:
                handle.write(data)
                for _ in range(extra_bytes >> 20):
                    handle.write(b" " * (1 << 20))
    return path


def _peak_python_memory(call):
    import tracemalloc

    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_decompression_bomb_is_refused_from_its_declared_size(model_file):
    import time

    _inflating(model_file, "model.json", 80 << 20)  # 80 MB of spaces: over the 64 MB limit
    assert model_file.stat().st_size < 1 << 20
    started = time.perf_counter()
    errors = []

    def attempt():
        with pytest.raises(ModelFileError, match="model.json declares 8\\d+ bytes, over the limit of 67108864"):
            load(model_file)
        errors.append(time.perf_counter() - started)

    assert _peak_python_memory(attempt) < 4 << 20
    assert errors[0] < 2


def test_a_member_is_never_read_past_its_declared_size(model_file):
    _inflating(model_file, "model.json", 48 << 20)  # under the limit, but unlike the manifest's size
    with pytest.raises(ModelFileError, match="checksum mismatch for model.json: its zip header declares"):
        load(model_file)
    # Make the central directory lie: it declares the manifest's size for a stream that
    # inflates to 48 MB more. Reading stops at the declared size.
    with zipfile.ZipFile(model_file) as archive:
        declared = json.loads(archive.read("manifest.json"))["sizes"]["model.json"]
    data = bytearray(model_file.read_bytes())
    entry = next(i for i in _all(data, b"PK\x01\x02") if data[i + 46:i + 56] == b"model.json")
    data[entry + 24:entry + 28] = declared.to_bytes(4, "little")
    model_file.write_bytes(bytes(data))
    with zipfile.ZipFile(model_file) as archive:
        assert archive.getinfo("model.json").file_size == declared
    errors = []

    def attempt():
        with pytest.raises(ModelFileError, match="corrupted|checksum mismatch") as error:
            load(model_file)
        errors.append(error)

    assert _peak_python_memory(attempt) < 8 << 20 and errors  # never the 48 MB


def _all(data, needle):
    start = data.find(needle)
    while start >= 0:
        yield start
        start = data.find(needle, start + 1)


@pytest.mark.parametrize(
    "limit, value, message",
    [
        ("MAX_MEMBERS", 3, "has 4 members; a model file has at most 3"),
        ("MAX_MANIFEST_BYTES", 100, "manifest.json declares"),
        ("MAX_MODEL_JSON_BYTES", 1000, "model.json declares .* over the limit of 1000"),
        ("MAX_ENCODER_FILE_BYTES", 100, "encoder/vocabulary.json declares .* over the limit of 100"),
        ("MAX_DATA_BYTES", 2000, "declare .* bytes in all, over the limit of 2000"),
        ("MAX_WEIGHTS_BYTES", 1000, "network.safetensors declares .* over the limit of 1000"),
        ("MAX_SAFETENSORS_HEADER_BYTES", 10, "declares a .*-byte header \\(limit 10"),
    ],
)
def test_every_loading_limit_is_enforced(model_file, monkeypatch, limit, value, message):
    import sktail._persistence as persistence

    monkeypatch.setattr(persistence, limit, value)
    with pytest.raises(ModelFileError, match=message):
        load(model_file)


def test_compressed_weights_are_refused(model_file):
    _rewrite(model_file, lambda m: m, compression={"network.safetensors": zipfile.ZIP_DEFLATED})
    with pytest.raises(ModelFileError, match="network.safetensors is compressed"):
        load(model_file)


def _never_build_the_real_network(monkeypatch):
    def fail(self, state_dict):
        raise AssertionError("the network was built before its shapes were checked")

    monkeypatch.setattr(AutoTailClassifier, "_network_from_state_dict", fail)


def _safetensors_with_header(data, change):
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    change(header)
    raw = json.dumps(header).encode()
    raw += b" " * (-(8 + len(raw)) % 8)
    return len(raw).to_bytes(8, "little") + raw + data[8 + size:]


BAG_TAMPERED = [
    ("embedding-dim", _edit_json("model.json", lambda d: d["encoder"]["config"].update(embedding_dim=65536)),
     r"encoder.bag.weight is float32 \[\d+, 8\] in the weights but the configuration builds float32 \[\d+, 65536\]"),
    ("vocabulary", lambda m: {**m, "encoder/vocabulary.json": json.dumps(
        json.loads(m["encoder/vocabulary.json"]) + [f"t{i}" for i in range(100_000)]).encode()},
     r"encoder.bag.weight is float32 \[\d+, 8\] in the weights but the configuration builds float32 \[100\d+, 8\]"),
    ("classes", _edit_json("model.json", lambda d: d["fitted"]["classes_"]["__ndarray__"].extend(
        f"\uffff{i:04d}" for i in range(1000))), r"class_counts_ must be 1003 non-negative ints, one per class"),
    ("header-shape", lambda m: {**m, "network.safetensors": _safetensors_with_header(
        m["network.safetensors"], lambda h: h["head.bias"].update(shape=[1, 3]))},
     r"head.bias is float32 \[1, 3\] in the weights but the configuration builds float32 \[3\]"),
    ("header-offsets", lambda m: {**m, "network.safetensors": _safetensors_with_header(
        m["network.safetensors"], lambda h: h["head.bias"].update(data_offsets=[0, 1 << 40]))},
     r"does not fit its data range"),
    ("header-extra-tensor", lambda m: {**m, "network.safetensors": _safetensors_with_header(
        m["network.safetensors"], lambda h: h.update(extra={"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}))},
     r"hold tensors it does not build \['extra'\]"),
]


@pytest.mark.parametrize("change, message", [c[1:] for c in BAG_TAMPERED], ids=[c[0] for c in BAG_TAMPERED])
def test_shapes_are_checked_against_the_weights_before_allocating(model_file, monkeypatch, change, message):
    _rewrite(model_file, change, fix_checksums=True)
    _never_build_the_real_network(monkeypatch)
    with pytest.raises(ModelFileError, match=message):
        load(model_file)


@pytest.fixture(scope="module")
def bert_model(tiny_bert_dir, corpus):
    return AutoTailClassifier(
        encoder=str(tiny_bert_dir), epochs=1, batch_size=8, learning_rate=1e-3, validation_fraction=None,
        random_state=0,
    ).fit(*corpus)


@pytest.fixture
def bert_file(bert_model, tmp_path):
    return bert_model.save(tmp_path / "bert.sktail")


HF_TAMPERED = [
    ("hidden-size", {"hidden_size": 503160, "intermediate_size": 503160}, r"word_embeddings.weight is float32 \[\d+, 32\]"),
    ("vocab-size", {"vocab_size": 50_000_000}, r"word_embeddings.weight is float32 \[\d+, 32\] .* \[50000000, 32\]"),
    ("positions", {"max_position_embeddings": 40_000_000}, r"position_embeddings.weight is float32 \[128, 32\]"),
    ("intermediate", {"intermediate_size": 1 << 24}, r"intermediate.dense.weight is float32 \[64, 32\]"),
    ("layers", {"num_hidden_layers": 1_000_000}, r"builds far more (modules|parameters) than the weights hold"),
    ("fewer-layers", {"num_hidden_layers": 1}, r"the weights hold tensors it does not build \['encoder.model.encoder.layer.1"),
    ("heads", {"num_attention_heads": 7}, r"inconsistent"),
]


@pytest.mark.parametrize("config, message", [c[1:] for c in HF_TAMPERED], ids=[c[0] for c in HF_TAMPERED])
def test_hugging_face_config_is_checked_against_the_weights(bert_file, monkeypatch, config, message):
    import time

    _rewrite(bert_file, _edit_json("encoder/config.json", lambda d: d.update(config)), fix_checksums=True)
    _never_build_the_real_network(monkeypatch)
    started = time.perf_counter()
    with pytest.raises(ModelFileError, match=message):
        load(bert_file)
    assert time.perf_counter() - started < 10


def test_a_hugging_face_bomb_is_refused(bert_file):
    _inflating(bert_file, "encoder/tokenizer.json", 80 << 20)
    with pytest.raises(ModelFileError, match="encoder/tokenizer.json declares .* over the limit"):
        load(bert_file)


@pytest.mark.parametrize("model", ["bag_model", "bert_model"])
def test_the_meta_network_matches_the_real_one(request, model):
    from sktail._persistence import _expected_tensors

    clf = request.getfixturevalue(model)
    real = clf.network_.state_dict()
    expected = _expected_tensors(clf, len(real))
    assert expected == {name: (tuple(t.shape), t.dtype) for name, t in real.items()}


def test_joblib_and_pickle_files_are_named_as_such(bag_model, tmp_path):
    import joblib

    for path, dump in [(tmp_path / "m.joblib", joblib.dump), (tmp_path / "m.pkl", None)]:
        if dump is None:
            path.write_bytes(pickle.dumps(bag_model))
        else:
            dump(bag_model, path)
        with pytest.raises(ModelFileError, match="looks like a pickle/joblib file. Load it with joblib.load"):
            load(path)


@pytest.mark.parametrize("prune", [False, True])
def test_hugging_face_model_files_are_byte_stable(tiny_bert_dir, corpus, tmp_path, prune):
    clf = AutoTailClassifier(
        encoder=str(tiny_bert_dir), epochs=1, batch_size=8, validation_fraction=None, random_state=0,
        encoder_options={"prune_vocabulary": prune},
    ).fit(*corpus)
    first = clf.save(tmp_path / "first.sktail").read_bytes()
    assert clf.save(tmp_path / "again.sktail").read_bytes() == first
    restored = load(tmp_path / "first.sktail")
    assert restored.save(tmp_path / "second.sktail").read_bytes() == first
    assert load(tmp_path / "second.sktail").save(tmp_path / "third.sktail").read_bytes() == first
    assert pickle.loads(pickle.dumps(restored)).save(tmp_path / "pickled.sktail").read_bytes() == first


# -- issue 28: every field and every weight of a model file is checked at load -----------------
def _weights_with(value):
    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    def change(members):
        tensors = st_load(members["network.safetensors"])
        tensors["head.weight"] = tensors["head.weight"].clone()
        tensors["head.weight"][0, 0] = value
        members["network.safetensors"] = st_save(tensors, metadata={"format": "pt"})
        return members

    return change


@pytest.mark.parametrize("value, shown", [(float("nan"), "NaN"), (3e38, "3e+38"), (-float("inf"), "-inf")])
def test_non_finite_or_huge_weights_are_refused_at_load(model_file, value, shown):
    _rewrite(model_file, _weights_with(value), fix_checksums=True)  # valid checksums
    with pytest.raises(ModelFileError, match=rf"the weight head.weight holds {re.escape(shown)}; stored weights must be finite"):
        load(model_file)


def _set_fitted(name, value):
    return _edit_json("model.json", lambda d: d["fitted"].__setitem__(name, value))


def _classes(edit):
    return _edit_json("model.json", lambda d: d["fitted"]["classes_"].__setitem__(
        "__ndarray__", edit(d["fitted"]["classes_"]["__ndarray__"])))


FITTED_TAMPERED = [
    ("max-length-str", _set_fitted("max_length_", "x"), r"max_length_ is 'x'; it must be an int >= 1"),
    ("max-length-negative", _set_fitted("max_length_", -5), r"max_length_ is -5; it must be an int >= 1"),
    ("max-length-bool", _set_fitted("max_length_", True), r"max_length_ is True"),
    ("batch-size-missing", _edit_json("model.json", lambda d: d["fitted"].pop("batch_size_")), r"lacks .*batch_size_"),
    ("learning-rate-nan", _set_fitted("learning_rate_", float("nan")), r"learning_rate_ is nan"),
    ("gate-str", _set_fitted("tail_gate_on_", "yes"), r"tail_gate_on_ is 'yes'; it must be a bool"),
    ("duplicate-classes", _classes(lambda c: [c[0], *c[:-1]]), r"classes_ holds duplicate labels"),
    ("unsorted-classes", _classes(lambda c: c[::-1]), r"classes_ is not sorted"),
    ("counts-negative", _edit_json("model.json", lambda d: d["fitted"]["class_counts_"]["__ndarray__"].__setitem__(0, -1)),
     r"class_counts_ must be \d+ non-negative ints"),
    ("tail-unknown", _edit_json("model.json", lambda d: d["fitted"]["tail_classes_"].__setitem__(
        "__ndarray__", ["not a class"])), r"tail_classes_ must be distinct labels of classes_"),
    ("bad-parameter", _edit_json("model.json", lambda d: d["params"].__setitem__("batch_size", -3)),
     r"invalid parameter: The 'batch_size' parameter"),
]


@pytest.mark.parametrize("change, message", [c[1:] for c in FITTED_TAMPERED], ids=[c[0] for c in FITTED_TAMPERED])
def test_every_fitted_attribute_is_validated_at_load(model_file, change, message):
    _rewrite(model_file, change, fix_checksums=True)
    with pytest.raises(ModelFileError, match=message):
        load(model_file)


def test_load_refuses_a_fifo_at_once(tmp_path):
    import threading
    import time

    fifo = tmp_path / "model.sktail"
    os.mkfifo(fifo)

    def unblock():  # were load to open the FIFO, this writer would end the wait
        time.sleep(3)
        with open(fifo, "wb"):
            pass

    threading.Thread(target=unblock, daemon=True).start()
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"is a FIFO \(named pipe\), not a regular file"):
        load(fifo)
    assert time.perf_counter() - start < 2


def test_a_save_killed_with_sigkill_leaves_no_temporary_after_the_next_save(bag_model, tmp_path):
    import signal
    import subprocess
    import time

    target = tmp_path / "model.sktail"
    script = (
        "import sys, time\nfrom sktail._atomic import atomic_write\n"
        "def write(handle):\n    handle.write(b'partial'); handle.flush(); time.sleep(60)\n"
        f"atomic_write({str(target)!r}, write)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob(".model.sktail.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert len(list(tmp_path.glob(".model.sktail.*.tmp"))) == 1  # what kill -9 leaves
    save(bag_model, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.sktail"]
    load(target)
