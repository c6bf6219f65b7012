"""Check data-parallel training on CUDA GPUs: nccl, bf16 autocast and FGM together.

One command, on a machine with one or more GPUs (no download; about a minute)::

    torchrun --standalone --nproc_per_node=1 benchmarks/ddp_gpu_check.py
    torchrun --standalone --nproc_per_node=4 benchmarks/ddp_gpu_check.py --size tiny

It writes a random-weight BERT (``--size base``: 768 wide, 12 layers;
``tiny``: 32 wide, 2 layers) to a temporary folder, then on every rank:

1. runs one accumulation window (three micro-batches, sample weights, FGM on,
   bf16 autocast) through the data-parallel trainer, each rank on its share,
   and through a one-process trainer on the whole global batches, and compares
   the gradients;
2. fits ``AutoTailClassifier(distributed=True, precision="bf16")`` on a
   synthetic long-tailed set and checks that the process group uses nccl, that
   the losses are finite and fall, and that every rank holds the same weights.

Rank 0 prints one JSON line (and writes it to ``--out`` when given); the exit
code is 0 when every check passed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from sktail import AutoTailClassifier  # noqa: E402
from sktail.datasets import make_long_tail_text  # noqa: E402
from sktail.encoders import HFEncoder, TextClassifierNetwork  # noqa: E402
from sktail.objective import AutoTailLoss, compute_tail_prior  # noqa: E402
from sktail.training import TrainingConfig  # noqa: E402
from sktail.training.process_group import init_distributed  # noqa: E402
from tests._ddp_worker import compare_gradients  # noqa: E402
from tests.conftest import write_tiny_bert  # noqa: E402

SIZES = {"tiny": {"hidden_size": 32, "num_layers": 2}, "base": {"hidden_size": 768, "num_layers": 12}}


def gradient_check(model_dir, texts, labels, context) -> dict:
    """Max relative gradient difference between the DDP shares and one process, in bf16."""
    classes, y = np.unique(labels, return_inverse=True)
    encoder = HFEncoder(str(model_dir))
    ids = encoder.fit_tokenize(texts, 64)
    counts = np.bincount(y)
    loss_fn = AutoTailLoss(compute_tail_prior(counts).offsets, counts)
    config = TrainingConfig(
        epochs=1, batch_size=16, learning_rate=1e-4, fgm_epsilon=0.3, grad_accumulation_steps=3,
        device=context.device, autocast_dtype=torch.bfloat16,
    )
    torch.manual_seed(0)
    network = TextClassifierNetwork(encoder.build_network(), len(classes), dropout=0.0)
    dtypes = set()
    network.head.register_forward_hook(lambda module, args, out: dtypes.add(out.dtype))
    weight = np.random.RandomState(0).uniform(0.2, 2.0, size=len(texts))
    micro_batches = [np.arange(0, 16), np.arange(16, 27), np.arange(27, 28)]
    result = compare_gradients(
        network, encoder, loss_fn, config, (ids, y, weight), micro_batches, context
    )
    worst = max(
        float((result["distributed"][n] - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
        for n, ref in result["reference"].items()
    )
    return {
        "max_relative_grad_diff": worst,
        "forward_passes": list(result["forward_passes"]),
        "autocast_dtypes": sorted(str(d) for d in dtypes),
    }


def same_weights_on_every_rank(network, context) -> bool:
    flat = torch.cat([p.detach().float().reshape(-1) for p in network.parameters()]).to(context.device)
    first = flat.clone()
    dist.broadcast(first, src=0)
    same = torch.tensor([int(torch.equal(first, flat))], device=context.device)
    dist.all_reduce(same, op=dist.ReduceOp.MIN)
    return bool(same.item())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="base")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="JSON file written by rank 0")
    parser.add_argument("--device", default="cuda", help="'cpu' runs the same checks with gloo")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("ddp_gpu_check needs CUDA GPUs (or --device cpu)", file=sys.stderr)
        return 2

    texts, labels = make_long_tail_text((240, 120, 60, 30, 20), noise=0.1, random_state=0)
    texts, labels, test_texts, test_labels = texts[:400], labels[:400], texts[400:], labels[400:]
    with tempfile.TemporaryDirectory() as tmp:
        # Every rank writes its own copy (same seed, same weights), so no shared disk is
        # needed; before the process group exists, as transformers saves on rank 0 only.
        model_dir = Path(tmp) / f"bert-{args.size}"
        write_tiny_bert(model_dir, **SIZES[args.size])
        context = init_distributed(True, torch.device(args.device))

        report = {"backend": context.backend, "world_size": context.world_size, "size": args.size,
                  "device": torch.cuda.get_device_name(context.device) if context.device.type == "cuda" else "cpu"}
        report.update(gradient_check(model_dir, texts, labels, context))

        clf = AutoTailClassifier(
            encoder=str(model_dir), epochs=args.epochs, batch_size=32, learning_rate=1e-4,
            max_length=64, precision="bf16", fgm_epsilon=0.3, device=args.device, distributed=True,
            random_state=0, verbose=1,
        )
        start = time.perf_counter()
        clf.fit(texts, labels)  # returns with the network back on the CPU: no pending GPU work
        report["fit_seconds"] = round(time.perf_counter() - start, 2)
        losses = [h["train_loss"] for h in clf.history_]
        report.update(
            train_losses=[round(v, 4) for v in losses],
            val_accuracy=[round(h["val_accuracy"], 4) for h in clf.history_],
            test_accuracy=float(clf.score(test_texts, test_labels)),
            fitted_world_size=clf.world_size_,
            same_weights_on_every_rank=same_weights_on_every_rank(clf.network_, context),
        )

    checks = {
        "backend": ("nccl" if context.device.type == "cuda" else "gloo") in report["backend"],
        "bf16_autocast": report["autocast_dtypes"] == ["torch.bfloat16"],
        "fgm_passes": report["forward_passes"][0] == report["forward_passes"][1] == 6,
        "gradients_match": report["max_relative_grad_diff"] < 2e-2,
        "finite_losses": bool(np.all(np.isfinite(losses))),
        "loss_falls": losses[-1] < losses[0],
        "world_size": report["fitted_world_size"] == context.world_size,
        "same_weights": report["same_weights_on_every_rank"],
    }
    report["checks"] = checks
    report["passed"] = all(checks.values())
    if context.is_main_process:
        line = json.dumps(report)
        print(line, flush=True)
        if args.out is not None:
            args.out.write_text(line + "\n")
    dist.destroy_process_group()
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
