"""benchmarks/speed.py runs end to end on a tiny model and writes its numbers."""

import importlib.util
import json
import math
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "speed.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("sktail_benchmark_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_speed_script_tiny_cpu(tmp_path):
    out = tmp_path / "speed.json"
    speed = _load_script()
    result = speed.main([
        "--device", "cpu", "--config", "tiny", "--steps", "3", "--predict-texts", "48",
        "--data", "synthetic", "--repeats", "2", "--out", str(out),
    ])
    assert json.loads(out.read_text(encoding="utf-8")) == result
    assert result["device"] == "cpu" and result["precision"] == "fp32" and result["shape"] == "titles"
    rates = [
        *result["train_samples_per_s"].values(), *result["predict_texts_per_s"].values(),
        *result["step_s"].values(), *result["train_tokens_per_s"].values(), result["fgm_over_plain"],
    ]
    assert all(math.isfinite(r) and r > 0 for r in rates)
    rounds = result["train_speedup_per_round"]
    assert len(rounds) == 2 and all(r > 0 for r in rounds)
    assert math.isclose(result["train_speedup_vs_trainer"], (rounds[0] + rounds[1]) / 2, rel_tol=1e-3)
    # A CPU has no entry in the peak table: no MFU.
    assert result["peak_flops"] is None and set(result["mfu"]) == {"sktail_fit", "hf_trainer", "plain_step", "fgm_step"}
    assert all(v is None for v in result["mfu"].values())
    assert 0 < result["params_non_embedding"] < result["params"]


def test_random_shape_has_exact_lengths_and_mfu(tmp_path):
    speed = _load_script()
    model_dir = tmp_path / "model"
    result = speed.main([
        "--device", "cpu", "--config", "tiny", "--shape", "random", "--seq-len", "24", "--batch-size", "4",
        "--steps", "2", "--predict-texts", "8", "--data", "synthetic", "--repeats", "1",
        "--peak-flops", "1e12", "--model-dir", str(model_dir), "--out", str(tmp_path / "speed.json"),
    ])
    assert (model_dir / "config.json").exists()  # written once, kept for the next call
    assert result["mean_tokens"] == 24 and result["seq_len"] == 24
    n = result["params_non_embedding"]
    assert math.isclose(result["mfu"]["sktail_fit"], 6 * n * result["train_tokens_per_s"]["sktail"] / 1e12, rel_tol=1e-2)
    assert math.isclose(result["mfu"]["fgm_step"],
                        12 * n * result["step_tokens"] / result["step_s"]["fgm"] / 1e12, rel_tol=1e-2)


def test_random_texts_are_one_token_per_character(tmp_path, tiny_bert_dir):
    speed = _load_script()
    texts, labels = speed.random_texts(tiny_bert_dir, 5, 20, seed=0)
    assert speed.token_lengths(tiny_bert_dir, texts, 128).tolist() == [20] * 5 and len(set(labels)) <= 13


def test_peak_table():
    speed = _load_script()
    assert speed.peak_flops("NVIDIA H200") == (989e12, "H200 SXM")
    assert speed.peak_flops("NVIDIA H100 80GB HBM3") == (989e12, "H100 SXM")
    assert speed.peak_flops("NVIDIA H100 PCIe") == (756e12, "H100 PCIe")
    assert speed.peak_flops("NVIDIA A100-SXM4-80GB") == (312e12, "A100")
    assert speed.peak_flops("NVIDIA L4") == (121e12, "L4")
    assert speed.peak_flops("NVIDIA L40S") == (None, "unknown")


def test_steady_rate_ignores_the_warm_up_step():
    speed = _load_script()
    # Two steps after the warm-up stamp, 4 s in all.
    assert speed.steady_rate([10.0, 12.0, 14.0], per_step=16) == 8.0
    assert math.isnan(speed.steady_rate([1.0], per_step=16))
