"""Hugging Face encoders: loading, pooling, pruning, FGM, batching order, persistence, memory."""

import gc
import io
import json
import pickle
import shutil
import weakref

import numpy as np
import pytest
import torch

import sktail._fit_plan
from sktail import AutoTailClassifier
from sktail.datasets import make_long_tail_text
from sktail.encoders import _hf
from sktail.encoders._hf import HFEncoder, resolve_model_path
from sktail.training import Trainer

from ..conftest import _char_vocab

TEXTS, LABELS = make_long_tail_text((40, 20, 10, 5, 3), n_keywords=2, noise=0.0, random_state=0)
FAST_HF = {
    "epochs": 2, "batch_size": 8, "learning_rate": 1e-3, "validation_fraction": None,
    "fgm_epsilon": 0.3, "random_state": 0,
}


@pytest.fixture(scope="module", params=["bert", "xlmr"])
def model_dir(request, tiny_bert_dir, tiny_xlmr_dir):
    """Each tiny architecture: BERT (padding id 0) and XLM-R (padding id 1)."""
    return {"bert": tiny_bert_dir, "xlmr": tiny_xlmr_dir}[request.param]


@pytest.fixture(scope="module")
def fitted(model_dir, tmp_path_factory):
    """A classifier fitted from a copy of the model directory, which is then deleted."""
    copy = tmp_path_factory.mktemp("model") / "encoder"
    shutil.copytree(model_dir, copy)
    clf = AutoTailClassifier(encoder=str(copy), **FAST_HF).fit(TEXTS, LABELS)
    shutil.rmtree(copy)
    return clf


# -- loading -------------------------------------------------------------------
def test_presets():
    assert resolve_model_path("macbert-base") == ("hfl/chinese-macbert-base", False)
    assert resolve_model_path("roberta-wwm-ext") == ("hfl/chinese-roberta-wwm-ext", True)


def test_e5_small_uses_the_rebuilt_folder(tiny_xlmr_dir, monkeypatch):
    import sktail.encoders._e5 as e5

    calls = []
    monkeypatch.setattr(e5, "build_e5_small", lambda *a, **k: calls.append(1) or tiny_xlmr_dir)
    encoder = HFEncoder("e5-small")
    assert calls and encoder._path == str(tiny_xlmr_dir) and not encoder._bert_classes


@pytest.mark.parametrize("name", ["hfl/chinese-macbert-base", "macbert-base", "roberta-wwm-ext"])
def test_offline_hub_id_explains_local_directory(name):
    with pytest.raises(OSError, match="pass a local directory") as info:
        HFEncoder(name)
    assert "--local-dir" in str(info.value)


def test_missing_directory_is_named():
    clf = AutoTailClassifier(encoder="./no/such/encoder", validation_fraction=None)
    with pytest.raises(OSError, match="directory './no/such/encoder' does not exist"):
        clf.fit(TEXTS[:10], LABELS[:10])


def test_directory_without_tokenizer_files(tiny_bert_dir, tmp_path):
    # transformers 5 would quietly build a 5-token tokenizer here.
    bare = tmp_path / "bare"
    shutil.copytree(tiny_bert_dir, bare)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        (bare / name).unlink()
    with pytest.raises(OSError, match="no tokenizer vocabulary"):
        HFEncoder(str(bare))


def test_tiny_tokenizers_know_their_characters(model_dir):
    # Guards the fixtures: an all-unknown tokenizer would make every test here vacuous.
    tokenizer = HFEncoder(str(model_dir))._tokenizer
    ids = tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids and len(ids) >= len(TEXTS[0])


def test_no_pooler_and_fp32_weights(model_dir, tmp_path):
    from transformers import AutoModel

    # A half-precision checkpoint still gives fp32 master weights.
    half = tmp_path / "half"
    shutil.copytree(model_dir, half)
    AutoModel.from_pretrained(model_dir).half().save_pretrained(half)
    network = HFEncoder(str(half)).build_network()
    assert network.model.pooler is None
    assert not [k for k in network.state_dict() if "pooler" in k]
    assert {p.dtype for p in network.parameters()} == {torch.float32}


def test_unbuilt_encoder_pickles(model_dir):
    encoder = HFEncoder(str(model_dir))
    restored = pickle.loads(pickle.dumps(encoder))
    assert restored.tokenize(TEXTS[:3], 32)[0].tolist() == encoder.tokenize(TEXTS[:3], 32)[0].tolist()


def test_bert_classes_override_the_files(tiny_bert_dir, tmp_path, monkeypatch):
    from transformers import BertModel, BertTokenizerFast

    # A BERT checkpoint whose config claims RoBERTa (as people load roberta-wwm-ext).
    odd = tmp_path / "roberta-wwm"
    shutil.copytree(tiny_bert_dir, odd)
    config = json.loads((odd / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps({**config, "model_type": "roberta"}))
    monkeypatch.setitem(_hf.PRESETS, "roberta-wwm-ext", (str(odd), True))
    encoder = HFEncoder("roberta-wwm-ext")
    assert isinstance(encoder._tokenizer, BertTokenizerFast)
    network = encoder.build_network()
    assert type(network.model) is BertModel
    restored = pickle.loads(pickle.dumps(encoder))
    assert type(restored.build_network(pretrained=False).model) is BertModel


# -- FGM -----------------------------------------------------------------------
def test_fgm_perturbs_the_input_word_embeddings(model_dir):
    from sktail.encoders._base import TextClassifierNetwork
    from sktail.objective import AutoTailLoss
    from sktail.training import TrainingConfig

    encoder = HFEncoder(str(model_dir))
    torch.manual_seed(0)
    network = TextClassifierNetwork(encoder.build_network(), 5)
    words = network.encoder.model.get_input_embeddings()
    assert network.encoder.input_embeddings() is words.weight
    seen = []
    words.register_forward_hook(lambda module, args, out: seen.append(out.detach().clone()))
    loss = AutoTailLoss(np.zeros(5), np.ones(5))
    config = TrainingConfig(epochs=1, batch_size=4, learning_rate=1e-3, fgm_epsilon=0.3)
    trainer = Trainer(network, encoder, loss, config, np.random.RandomState(0))
    before = words.weight.detach().clone()
    batch = encoder.collate(encoder.tokenize(TEXTS[:4], 32))
    trainer.train_step(batch, torch.tensor([0, 1, 2, 3]), None)
    assert trainer.forward_passes == 2
    assert not torch.equal(seen[0], seen[1])  # the second pass saw E + r
    assert torch.equal(words.weight, before)  # restored before the optimizer step


# -- fit / predict / pickle ------------------------------------------------------
def test_fit_predict(fitted):
    proba = fitted.predict_proba(TEXTS)
    assert proba.shape == (len(TEXTS), 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert all(p.device.type == "cpu" for p in fitted.network_.parameters())
    assert fitted.score(TEXTS, LABELS) > 0.3


def test_predictions_come_back_in_input_order(fitted):
    # Lengths from 1 to ~60 tokens, so length-sorted batches reorder the rows.
    rng = np.random.RandomState(0)
    texts = [TEXTS[i] * (1 + i % 4) for i in rng.permutation(len(TEXTS))[:24]]
    texts[5] = texts[5][:1]
    batched = fitted.predict_proba(texts)
    one_by_one = np.vstack([fitted.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    perm = rng.permutation(len(texts))
    np.testing.assert_allclose(fitted.predict_proba([texts[i] for i in perm]), batched[perm], atol=1e-5)


def test_pickle_needs_no_model_directory(fitted):
    # ``fitted`` was trained from a directory that no longer exists.
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(TEXTS[:9]), fitted.predict_proba(TEXTS[:9]))
    assert type(restored.encoder_._tokenizer) is type(fitted.encoder_._tokenizer)


def test_cuda_tagged_weights_load_on_cpu(fitted, monkeypatch):
    # Write the weights as a CUDA machine would: every storage tagged "cuda:0".
    import torch.serialization

    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    state = fitted.__getstate__()
    blob = pickle.dumps(fitted)
    monkeypatch.undo()
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(io.BytesIO(state["_network_weights"]), weights_only=True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restored = pickle.loads(blob)
    assert {p.device.type for p in restored.network_.parameters()} == {"cpu"}
    np.testing.assert_array_equal(restored.predict_proba(TEXTS[:9]), fitted.predict_proba(TEXTS[:9]))


# -- vocabulary pruning -----------------------------------------------------------
def _pooled(encoder, network, ids):
    with torch.inference_mode():
        return network.eval()(encoder.collate(ids)).numpy()


def test_pruning_keeps_seen_token_outputs(model_dir):
    train = TEXTS[:30]
    full = HFEncoder(str(model_dir))
    pruned = HFEncoder(str(model_dir), prune_vocabulary=True)
    pruned_ids = pruned.fit_tokenize(train, 64)
    full_net, pruned_net = full.build_network(), pruned.build_network()
    rows = pruned_net.input_embeddings().shape[0]
    assert rows == len(pruned._kept_ids) < full_net.input_embeddings().shape[0]
    assert pruned.pad_id() == full.pad_id()
    np.testing.assert_allclose(
        _pooled(pruned, pruned_net, pruned_ids[:8]),
        _pooled(full, full_net, full.tokenize(train[:8], 64)), atol=1e-6,
    )
    # A token never seen in training becomes the unknown token.
    unseen = next(c for c in _char_vocab()[5:] if c not in "".join(train) and c.isalpha())
    text = [train[0][:3] + unseen + train[0][3:]]
    full_ids = full.tokenize(text, 64)[0]
    full_ids[full_ids == full._tokenizer.convert_tokens_to_ids(unseen)] = full._tokenizer.unk_token_id
    assert (full_ids == full._tokenizer.unk_token_id).any()
    np.testing.assert_allclose(
        _pooled(pruned, pruned_net, pruned.tokenize(text, 64)),
        _pooled(full, full_net, [full_ids]), atol=1e-6,
    )


def test_pruned_classifier_round_trips(tiny_xlmr_dir):
    clf = AutoTailClassifier(
        encoder=str(tiny_xlmr_dir), encoder_options={"prune_vocabulary": True}, **{**FAST_HF, "epochs": 1},
    ).fit(TEXTS, LABELS)
    assert clf.network_.encoder.input_embeddings().shape[0] == len(clf.encoder_._kept_ids)
    assert "vocabulary rows kept" in clf.encoder_.describe()
    restored = pickle.loads(pickle.dumps(clf))
    probe = TEXTS[:5] + ["从未见过的字符ＸＹＺ"]
    np.testing.assert_array_equal(restored.predict_proba(probe), clf.predict_proba(probe))


# -- memory ------------------------------------------------------------------------
def _live_tensors():
    gc.collect()
    return sum(issubclass(type(o), torch.Tensor) for o in gc.get_objects())


def test_repeated_fits_release_training_state(tiny_bert_dir, monkeypatch):
    trainers = []

    class Recording(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append((weakref.ref(self), weakref.ref(self.optimizer)))

    monkeypatch.setattr(sktail._fit_plan, "Trainer", Recording)
    clf = AutoTailClassifier(encoder=str(tiny_bert_dir), **{**FAST_HF, "epochs": 1})
    counts = []
    for _ in range(3):
        clf.fit(TEXTS, LABELS)
        counts.append(_live_tensors())
        assert all(t() is None and o() is None for t, o in trainers)
    assert counts[2] <= counts[1]
    assert all(p.device.type == "cpu" for p in clf.network_.parameters())


@pytest.mark.gpu
def test_cuda_memory_does_not_grow_across_fits(tiny_bert_dir):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    clf = AutoTailClassifier(encoder=str(tiny_bert_dir), device="cuda", **{**FAST_HF, "epochs": 1})
    allocated = []
    for _ in range(3):
        clf.fit(TEXTS, LABELS).predict_proba(TEXTS[:8])
        allocated.append(torch.cuda.memory_allocated())
    # Library workspaces (cuBLAS) may stay allocated; what must not happen is
    # growth from one fit to the next, or weights left on the device.
    assert max(allocated[1:]) <= allocated[0] < 256 * 2**20
    assert all(p.device.type == "cpu" for p in clf.network_.parameters())
    kept = clf.set_params(keep_on_device=True).fit(TEXTS, LABELS)
    assert {p.device.type for p in kept.network_.parameters()} == {"cuda"}
    restored = pickle.loads(pickle.dumps(kept))
    np.testing.assert_allclose(restored.predict_proba(TEXTS[:8]), kept.predict_proba(TEXTS[:8]), atol=1e-5)
