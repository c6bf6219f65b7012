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


# -- benchmarks/gpu_run.py: the Python parts of benchmarks/gpu_run.sh, in tiny form -------
def _write_split(folder):
    from sktail.datasets import make_long_tail_text

    folder.mkdir(parents=True)
    for name, counts, seed in (("train", (60, 30, 15, 8, 5), 0), ("dev", (10,) * 5, 1)):
        texts, labels = make_long_tail_text(counts, noise=0.05, random_state=seed)
        (folder / f"{name}.tsv").write_text("".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)), encoding="utf-8")


def _speed_record(shape, batch_size, speedup, fgm_over_plain, mfu):
    return {
        "device_name": "NVIDIA H200", "shape": shape, "batch_size": batch_size, "seq_len": 128,
        "train_speedup_vs_trainer": speedup, "train_speedup_per_round": [speedup] * 3,
        "train_samples_per_s": {"sktail": 300.0, "hf_trainer": 300.0 / speedup},
        "mfu": {"sktail_fit": mfu, "hf_trainer": mfu, "plain_step": mfu, "fgm_step": mfu},
        "peak_flops_source": "H200 SXM", "fgm_over_plain": fgm_over_plain,
        "step_s": {"plain": 0.04, "fgm": 0.04 * fgm_over_plain},
        "predict_speedup_vs_pipeline": 3.0, "predict_texts_per_s": {"sktail": 300.0, "hf_pipeline": 100.0},
    }


def test_gpu_run_parts_tiny_cpu(tmp_path, tiny_bert_dir, monkeypatch):
    from benchmarks import gpu_run

    data = tmp_path / "data"
    _write_split(data / "csl-title")
    monkeypatch.setenv("SKTAIL_DATA", str(data))
    run = tmp_path / "run"
    common = ["--device", "cpu", "--data", str(data)]
    paper = gpu_run.main(["paper", "--model-dir", str(tiny_bert_dir), *common, "--epochs", "1",
                          "--out", str(run / "paper.json")])
    assert set(paper["runs"]) == {"baseline", "full"} and "in_progress" not in paper
    for name, record in paper["runs"].items():
        assert record["fit_s"] > 0 and record["steps"] == 7 and record["paper_fit_s"] == gpu_run.PAPER_FIT_S[name]
        assert record["params"]["batch_size"] == 16 and record["params"]["learning_rate"] == 2e-5

    memory = gpu_run.main(["memory", "--model-dir", str(tiny_bert_dir), "--device", "cpu", "--fits", "2",
                           "--rows", "40", "--out", str(run / "memory.json")])
    assert len(memory["fits"]) == 2 and memory["fits"][0]["allocated_mib"] is None and memory["on_cpu_after_fit"]

    summary = gpu_run.main(["e5", "--encoder", str(tiny_bert_dir), *common, "--seeds", "13", "--epochs", "1",
                            "--out", str(run / "e5")])
    assert set(summary) == {"baseline", "full"} and summary["full"]["mcnemar"]["seeds"] == [13]
    skipped = gpu_run.main(["e5", "--encoder", str(tmp_path / "missing-model"), *common, "--out", str(tmp_path / "e5")])
    assert skipped is None and "not available" in json.loads((tmp_path / "e5" / "e5.json").read_text())["skipped"]

    (run / "speed-titles.json").write_text(json.dumps(_speed_record("titles", 16, 1.5, 2.0, 0.01)))
    (run / "speed-random-b64.json").write_text(json.dumps(_speed_record("random", 64, 1.1, 1.8, 0.4)))
    text = gpu_run.main(["table", str(run), "--summary-dir", str(tmp_path / "out")])
    assert (tmp_path / "out" / "summary.md").read_text(encoding="utf-8") == text
    lines = text.splitlines()

    def row(start):
        return next(line for line in lines if line.startswith(start))

    assert row("| training samples/s in fit vs HF Trainer (titles").endswith("| ≥ 1.3× | yes |")
    assert row("| FGM step / plain step (titles").endswith("| **no** |")
    assert row("| MFU (random 128 tokens, batch 64").endswith("| ≥ 35% | yes |")
    assert row("| paper configuration fit, full").count("paper 680 s") == 1
    assert f"| {tiny_bert_dir.name} baseline (seeds 13; 1 at once)" in text
    assert set(json.loads((tmp_path / "out" / "summary.json").read_text())) >= {"paper", "memory", "e5"}
