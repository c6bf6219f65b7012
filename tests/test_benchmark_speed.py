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
    assert result["device"] == "cpu" and result["precision"] == "fp32" and "mfu" not in result
    rates = [
        *result["train_samples_per_s"].values(), *result["predict_texts_per_s"].values(),
        *result["step_s"].values(), result["fgm_over_plain"],
    ]
    assert all(math.isfinite(r) and r > 0 for r in rates)
    rounds = result["train_speedup_per_round"]
    assert len(rounds) == 2 and all(r > 0 for r in rounds)
    assert math.isclose(result["train_speedup_vs_trainer"], (rounds[0] + rounds[1]) / 2, rel_tol=1e-3)


def test_steady_rate_ignores_the_warm_up_step():
    speed = _load_script()
    # Two steps after the warm-up stamp, 4 s in all.
    assert speed.steady_rate([10.0, 12.0, 14.0], per_step=16) == 8.0
    assert math.isnan(speed.steady_rate([1.0], per_step=16))
