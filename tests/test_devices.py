"""Device and precision resolution: training keeps its rules, inference picks the fastest faithful path."""

import pytest
import torch

from sktail import devices
from sktail.devices import InferencePrecision, resolve_inference_precision, resolve_precision

CPU = torch.device("cpu")


def _cpu(monkeypatch, *, capability="AVX2", flags=()):
    """Pretend the CPU has ``capability`` (torch's vector width) and these cpuinfo flags."""
    monkeypatch.setattr(devices, "_cpu_capability", lambda: capability)
    monkeypatch.setattr(devices, "_cpu_flags", lambda: frozenset(flags))


@pytest.fixture
def exportable(monkeypatch):
    """An encoder network the ONNX path accepts, with ONNX Runtime 'installed'."""
    from sktail import _onnx

    monkeypatch.setattr(_onnx, "available", lambda: True)
    monkeypatch.setattr(_onnx, "supports", lambda network: True)
    return object()


def test_training_precision_is_unchanged():
    assert resolve_precision("auto", CPU) == (None, False)
    assert resolve_precision("fp32", CPU) == (None, False)
    assert resolve_precision("bf16", CPU) == (torch.bfloat16, False)
    assert resolve_precision("fp16", CPU) == (torch.float16, False)
    assert resolve_precision("int8", CPU) == (None, False)  # an inference path: training stays fp32
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp8", CPU)


@pytest.mark.parametrize("name", ["fp32", "bf16", "fp16"])
def test_explicit_inference_precision_is_used_as_given(name, monkeypatch, exportable):
    _cpu(monkeypatch, flags={"avx512_bf16"})
    assert resolve_inference_precision(name, CPU, exportable) == InferencePrecision(name)


def test_auto_is_exact_on_cpus_without_native_bf16(monkeypatch, exportable):
    _cpu(monkeypatch, capability="AVX2", flags={"avx2", "fma"})
    assert resolve_inference_precision("auto", CPU, exportable).name == "fp32"


def test_int8_is_onnx_runtime_when_asked_for(monkeypatch, exportable):
    _cpu(monkeypatch, capability="AVX2", flags={"avx2", "fma"})
    chosen = resolve_inference_precision("int8", CPU, exportable)
    assert chosen.name == "onnx-int8" and chosen.runtime == "onnxruntime" and chosen.autocast_dtype is None
    assert resolve_precision("int8", CPU) == (None, False)  # training stays fp32


def test_int8_names_what_it_lacks(monkeypatch):
    from sktail import _onnx
    from sktail.encoders._bag import BagEncoder

    encoder = BagEncoder()
    encoder.fit_tokenize(["深度学习", "水稻"], 16)
    monkeypatch.setattr(_onnx, "available", lambda: True)
    with pytest.raises(ValueError, match="needs a Hugging Face encoder network"):
        resolve_inference_precision("int8", CPU, encoder.build_network())
    with pytest.raises(ValueError, match="needs a Hugging Face encoder network"):
        resolve_inference_precision("int8", CPU, None)
    with pytest.raises(ValueError, match="CPU only"):
        resolve_inference_precision("int8", torch.device("cuda"), object())
    monkeypatch.setattr(_onnx, "available", lambda: False)
    with pytest.raises(ImportError, match=r"sktail\[fast\]"):
        resolve_inference_precision("int8", CPU, object())


def test_auto_falls_back_to_fp32_without_avx2(monkeypatch, exportable):
    _cpu(monkeypatch, capability="DEFAULT")
    assert resolve_inference_precision("auto", CPU, exportable).name == "fp32"


def test_auto_on_other_devices_is_fp32(monkeypatch, exportable):
    _cpu(monkeypatch, capability="AVX2")
    assert resolve_inference_precision("auto", torch.device("meta"), exportable).name == "fp32"


def test_auto_on_cuda_follows_training(monkeypatch, exportable):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_inference_precision("auto", torch.device("cuda"), exportable).name == "fp16"


def test_unknown_precisions_are_refused():
    with pytest.raises(ValueError, match="precision"):
        resolve_inference_precision("int8", CPU)
    with pytest.raises(ValueError, match="inference precision"):
        InferencePrecision("int4")


def test_cache_tags_tell_the_paths_apart():
    tags = {InferencePrecision(name).cache_tag for name in devices.INFERENCE_PATHS}
    assert len(tags) == len(devices.INFERENCE_PATHS)
    # The torch paths keep the tags of earlier releases, so existing caches stay valid.
    assert InferencePrecision("fp32").cache_tag == "autocast=None"


def test_cpu_features_reports_the_instruction_sets(monkeypatch):
    _cpu(monkeypatch, capability="AVX512", flags={"avx512_vnni", "avx512_bf16"})
    assert devices.cpu_features() == {"capability": "AVX512", "native_bf16": True, "int8": True, "vnni": True}
    _cpu(monkeypatch, capability="DEFAULT")
    assert devices.cpu_features() == {"capability": "DEFAULT", "native_bf16": False, "int8": False, "vnni": False}
