"""Inference paths: torch and ONNX Runtime give the same outputs, in the input order, through every caller."""

import numpy as np
import pytest
import torch

from sktail import AutoTailClassifier, _onnx, _onnx_int8, devices, inference
from sktail.devices import InferencePrecision
from sktail.encoders._base import TextClassifierNetwork
from sktail.encoders._hf import HFEncoder

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

CPU = torch.device("cpu")
TEXTS = ["深度学习模型", "水稻", "神经网络训练方法研究", "小麦病虫害防治技术与应用", "图", "经济学视角下的农业"]
FAST_BERT = {"epochs": 1, "batch_size": 8, "validation_fraction": None, "max_length": 32}


def _cos(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def tiny_encoder(tiny_bert_dir):
    encoder = HFEncoder(str(tiny_bert_dir))
    return encoder, encoder.build_network().eval()


@pytest.fixture
def int8_on_this_cpu(monkeypatch):
    """An AVX2 CPU without native bf16, whatever this CPU is."""
    monkeypatch.setattr(devices, "_cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(devices, "_cpu_flags", lambda: frozenset({"avx2"}))


def _features(encoder, network, texts, name, batch_size=4):
    ids = encoder.tokenize(texts, 32)
    return inference.encode_features(network, encoder, ids, batch_size=batch_size, device=CPU,
                                     precision=InferencePrecision(name))


@pytest.mark.parametrize("name", ["onnx-fp32", "onnx-int8"])
def test_onnx_features_match_torch_in_shape_and_order(tiny_encoder, name):
    encoder, network = tiny_encoder
    reference = _features(encoder, network, TEXTS, "fp32", batch_size=64)
    got = _features(encoder, network, TEXTS, name, batch_size=4)  # several length-sorted batches
    assert got.shape == (len(TEXTS), network.hidden_size) and got.dtype == np.float32
    if name == "onnx-fp32":
        np.testing.assert_allclose(got, reference, atol=1e-4, rtol=1e-4)
    else:
        assert _cos(got, reference).min() > 0.99
    # Each row is the text's own feature: scoring a permutation permutes the rows.
    order = np.random.RandomState(0).permutation(len(TEXTS))
    permuted = _features(encoder, network, [TEXTS[i] for i in order], name)
    np.testing.assert_allclose(permuted, got[order], atol=1e-5)


def test_onnx_matches_torch_for_xlm_roberta_padding(tiny_xlmr_dir):
    encoder = HFEncoder(str(tiny_xlmr_dir))
    network = encoder.build_network().eval()
    reference = _features(encoder, network, TEXTS, "fp32")
    np.testing.assert_allclose(_features(encoder, network, TEXTS, "onnx-fp32"), reference, atol=1e-4, rtol=1e-4)


def test_predict_logits_runs_the_head_after_the_onnx_encoder(tiny_encoder):
    encoder, network = tiny_encoder
    torch.manual_seed(0)
    classifier = TextClassifierNetwork(network, n_classes=3).eval()
    ids = encoder.tokenize(TEXTS, 32)
    reference = inference.predict_logits(classifier, encoder, ids, batch_size=4, device=CPU)
    got = inference.predict_logits(classifier, encoder, ids, batch_size=4, device=CPU,
                                   precision=InferencePrecision("onnx-fp32"))
    assert got.shape == (len(TEXTS), 3)
    np.testing.assert_allclose(got, reference, atol=1e-4, rtol=1e-4)


def test_no_texts_give_an_empty_array(tiny_encoder):
    encoder, network = tiny_encoder
    got = inference.encode_features(network, encoder, [], batch_size=4, device=CPU,
                                    precision=InferencePrecision("onnx-int8"))
    assert got.shape == (0, network.hidden_size)


def test_session_is_reused_then_rebuilt_when_a_weight_changes(tiny_bert_dir):
    encoder = HFEncoder(str(tiny_bert_dir))
    network = encoder.build_network().eval()
    first = _onnx.session(network, "onnx-fp32", 1)
    assert _onnx.session(network, "onnx-fp32", 1) is first
    before = _features(encoder, network, TEXTS, "onnx-fp32")
    with torch.no_grad():
        network.model.encoder.layer[0].output.dense.weight.mul_(0.5)
    assert _onnx.session(network, "onnx-fp32", 1) is not first
    after = _features(encoder, network, TEXTS, "onnx-fp32")
    np.testing.assert_allclose(after, _features(encoder, network, TEXTS, "fp32"), atol=1e-4, rtol=1e-4)
    assert not np.allclose(before, after)


def test_session_threads_follow_torch(tiny_bert_dir, monkeypatch):
    # A Dask worker with one thread (or any caller) limits torch, and so the runtime.
    encoder = HFEncoder(str(tiny_bert_dir))
    network = encoder.build_network().eval()
    built = []
    original = _onnx._build

    def spy(network, name, threads, calibration):
        built.append(threads)
        return original(network, name, threads, calibration)

    monkeypatch.setattr(_onnx, "_build", spy)
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            _features(encoder, network, TEXTS, "onnx-fp32")
            session = _onnx.session(network, "onnx-fp32", threads)
            assert int(session.get_session_options().intra_op_num_threads) == threads
    finally:
        torch.set_num_threads(previous)
    assert built == [1, 2]


def test_int8_recipe_quantises_every_linear_layer(tiny_encoder, tmp_path):
    import onnx

    _, network = tiny_encoder
    path = str(tmp_path / "encoder.onnx")
    _onnx._export(network, path)
    model = onnx.load(path)
    names = _onnx_int8.quantized_nodes(model)
    layers = len(network.model.encoder.layer)
    assert len(names) == 6 * layers  # query, key, value, attention output, the two feed-forward layers
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul"]
    assert len(matmuls) - len(names) == 2 * layers  # the attention products stay in fp32


def test_smoothing_keeps_the_function_and_the_original(tiny_encoder):
    encoder, network = tiny_encoder
    before = {k: v.clone() for k, v in network.state_dict().items()}
    calibration = inference._calibration(encoder)
    smoothed = _onnx_int8.smoothed_copy(network, calibration)
    assert all(isinstance(getattr(owner, name), _onnx_int8._Smoothed)
               for owner, name in _onnx_int8._feed_forward_layers(smoothed))
    assert not any(isinstance(getattr(owner, name), _onnx_int8._Smoothed)
                   for owner, name in _onnx_int8._feed_forward_layers(network))
    for key, value in network.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert smoothed.input_embeddings() is network.input_embeddings()  # shared, not copied
    batch = encoder.collate(encoder.tokenize(TEXTS, 32))
    embeds = torch.nn.functional.embedding(batch["input_ids"], network.input_embeddings())
    with torch.no_grad():
        torch.testing.assert_close(smoothed.forward_embeddings(embeds, batch["attention_mask"]),
                                   network.forward_embeddings(embeds, batch["attention_mask"]),
                                   rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="calibration"):
        _onnx.session(network, "onnx-int8", 1)
    assert inference.calibration_texts() == inference.calibration_texts()  # fixed, not sampled


def test_onnx_paths_refuse_networks_they_cannot_run():
    from sktail.encoders._bag import BagEncoder

    encoder = BagEncoder()
    ids = encoder.fit_tokenize(TEXTS, 16)
    with pytest.raises(ValueError, match="Hugging Face encoder"):
        inference.encode_features(encoder.build_network(), encoder, ids, batch_size=4, device=CPU,
                                  precision=InferencePrecision("onnx-int8"))


def test_feature_cache_namespaces_differ_by_path(tiny_encoder, tmp_path):
    _, network = tiny_encoder
    spaces = {name: inference.open_feature_cache(tmp_path, network, precision=InferencePrecision(name)).namespace
              for name in ("fp32", "onnx-fp32", "onnx-int8")}
    assert len(set(spaces.values())) == 3
    # The default torch path keeps the namespace it always had.
    assert inference.open_feature_cache(tmp_path, network).namespace == spaces["fp32"]


def _spy_paths(monkeypatch):
    seen = []
    original = inference._forward

    def spy(module, precision, device, encoder=None):
        if _onnx.supports(module):  # the encoder, not the head trained on cached features
            seen.append(precision.name)
        return original(module, precision, device, encoder)

    monkeypatch.setattr(inference, "_forward", spy)
    return seen


def test_frozen_fit_and_predict_take_the_same_path(tiny_bert_dir, long_tail_corpus, int8_on_this_cpu,
                                                    monkeypatch, tmp_path):
    texts, labels = long_tail_corpus
    seen = _spy_paths(monkeypatch)
    clf = AutoTailClassifier(encoder=str(tiny_bert_dir), train_encoder="none", feature_cache=tmp_path,
                             precision="int8", random_state=0, **FAST_BERT).fit(texts, labels)
    assert seen == ["onnx-int8"]  # the features the head trains on
    proba = clf.predict_proba(texts)
    assert seen == ["onnx-int8"]  # predict read them from the fit's cache, on the same path
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    clf.predict_proba([t + "新" for t in texts[:3]])
    assert seen == ["onnx-int8", "onnx-int8"]  # new texts are encoded on that path too
    namespaces = [p.name for p in tmp_path.iterdir()]
    expected = inference.open_feature_cache(tmp_path, clf.network_.encoder,
                                            precision=InferencePrecision("onnx-int8")).namespace
    assert namespaces == [expected]


def test_auto_predicts_in_fp32_without_native_bf16(tiny_bert_dir, long_tail_corpus, int8_on_this_cpu,
                                                   monkeypatch):
    # int8 is faster but not exact, so "auto" never picks it.
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(encoder=str(tiny_bert_dir), random_state=0, **FAST_BERT).fit(texts[:20], labels[:20])
    seen = _spy_paths(monkeypatch)
    clf.predict_proba(texts)
    assert seen == ["fp32"]


def test_explicit_fp32_predicts_with_torch(tiny_bert_dir, long_tail_corpus, int8_on_this_cpu, monkeypatch):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(encoder=str(tiny_bert_dir), precision="fp32", train_encoder="none", random_state=0,
                             **FAST_BERT)
    clf.fit(texts[:20], labels[:20])
    seen = _spy_paths(monkeypatch)
    fp32 = clf.predict_proba(texts)
    clf.set_params(precision="int8")
    fast = clf.predict_proba(texts)
    assert seen == ["fp32", "onnx-int8"]
    # (A random tiny BERT says nothing about int8 fidelity: benchmarks/cpu_inference.py measures it on e5.)
    assert fast.shape == fp32.shape and np.isfinite(fast).all()


def test_int8_without_onnxruntime_is_refused_before_training(tiny_bert_dir, long_tail_corpus, int8_on_this_cpu,
                                                              monkeypatch):
    texts, labels = long_tail_corpus
    monkeypatch.setattr(_onnx, "available", lambda: False)
    clf = AutoTailClassifier(encoder=str(tiny_bert_dir), train_encoder="none", precision="int8", random_state=0,
                             **FAST_BERT)
    with pytest.raises(ImportError, match=r"sktail\[fast\]"):
        clf.fit(texts, labels)
    assert not hasattr(clf, "network_")


def test_auto_is_torch_fp32_on_a_cpu(tiny_bert_dir, long_tail_corpus, monkeypatch):
    texts, labels = long_tail_corpus
    monkeypatch.setattr(devices, "_cpu_capability", lambda: "DEFAULT")
    monkeypatch.setattr(devices, "_cpu_flags", lambda: frozenset())
    seen = _spy_paths(monkeypatch)
    clf = AutoTailClassifier(encoder=str(tiny_bert_dir), train_encoder="none", random_state=0, **FAST_BERT)
    clf.fit(texts, labels).predict(texts)
    assert seen == ["fp32", "fp32"]


def test_progress_bar_counts_texts(tiny_encoder, capsys):
    pytest.importorskip("tqdm")
    encoder, network = tiny_encoder
    ids = encoder.tokenize(TEXTS, 32)
    inference.encode_features(network, encoder, ids, batch_size=4, device=CPU, progress=True,
                              precision=InferencePrecision("onnx-int8"))
    err = capsys.readouterr().err
    assert "features:" in err and "text/s" in err
    inference.encode_features(network, encoder, ids, batch_size=4, device=CPU)
    assert capsys.readouterr().err == ""


def test_onnx_graph_is_stored_once_and_reloaded(tiny_bert_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SKTAIL_HOME", str(tmp_path))
    encoder = HFEncoder(str(tiny_bert_dir))
    network = encoder.build_network().eval()
    first = _features(encoder, network, TEXTS, "onnx-int8")
    stored = sorted(p.name for p in (tmp_path / "onnx").iterdir())
    calibration = inference._calibration(encoder)
    key = _onnx.graph_key(network, "onnx-int8", calibration)
    assert stored == [f"{key}.json", f"{key}.onnx"]

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(_onnx, "_export", no_export)
    again = encoder.build_network().eval()  # same weights, another process's network
    assert _onnx.graph_key(again, "onnx-int8", calibration) == key
    np.testing.assert_array_equal(_features(encoder, again, TEXTS, "onnx-int8"), first)
    assert _onnx.graph_key(again, "onnx-fp32") != key  # the recipe is part of the key
    assert _onnx.graph_key(again, "onnx-int8", calibration[:1]) != key  # and the calibration


def test_an_altered_stored_graph_is_exported_again(tiny_bert_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SKTAIL_HOME", str(tmp_path))
    encoder = HFEncoder(str(tiny_bert_dir))
    reference = _features(encoder, encoder.build_network().eval(), TEXTS, "onnx-fp32")
    (graph,) = (tmp_path / "onnx").glob("*.onnx")
    graph.write_bytes(graph.read_bytes()[:-10] + b"0123456789")
    with caplog.at_level("WARNING", logger="sktail"):
        rebuilt = _features(encoder, encoder.build_network().eval(), TEXTS, "onnx-fp32")
    assert "does not match its record" in caplog.text
    np.testing.assert_array_equal(rebuilt, reference)


def test_an_unwritable_cache_folder_still_gives_a_session(tiny_bert_dir, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SKTAIL_HOME", str(blocker))
    encoder = HFEncoder(str(tiny_bert_dir))
    network = encoder.build_network().eval()
    with caplog.at_level("WARNING", logger="sktail"):
        features = _features(encoder, network, TEXTS, "onnx-fp32")
    assert "not cached" in caplog.text
    np.testing.assert_allclose(features, _features(encoder, network, TEXTS, "fp32"), atol=1e-4, rtol=1e-4)


def test_calibration_texts_are_tokenized_only_to_build_the_int8_session(tiny_bert_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("SKTAIL_HOME", str(tmp_path))
    encoder = HFEncoder(str(tiny_bert_dir))
    network = encoder.build_network().eval()  # no session yet
    calls = []
    original = inference._calibration
    monkeypatch.setattr(inference, "_calibration", lambda enc: calls.append(1) or original(enc))
    first = _features(encoder, network, TEXTS, "onnx-int8")
    np.testing.assert_array_equal(_features(encoder, network, TEXTS, "onnx-int8"), first)
    assert calls == [1]
