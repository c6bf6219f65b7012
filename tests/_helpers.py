"""Tiny networks and trainers for the unit tests of the training machinery."""

from __future__ import annotations

import numpy as np
import torch

from sktail.encoders._bag import BagEncoder
from sktail.encoders._base import TextClassifierNetwork
from sktail.objective import AutoTailLoss, compute_tail_prior
from sktail.training import Trainer, TrainingConfig

TEXTS = [
    "深度学习模型", "神经网络训练方法", "水稻种植技术", "小麦病虫害防治研究",
    "刑法修正案", "民法典解释", "卷积网络", "玉米产量", "宪法学", "强化学习与控制",
]
LABELS = np.array([0, 0, 1, 1, 2, 2, 0, 1, 2, 0])


def tiny_setup(texts=TEXTS, labels=LABELS, *, embedding_dim=6, max_length=64, seed=0):
    """A fitted bag encoder, the token ids and a dropout-free classifier network."""
    encoder = BagEncoder(embedding_dim=embedding_dim, token_dropout=0.0)
    ids = encoder.fit_tokenize(list(texts), max_length)
    torch.manual_seed(seed)
    network = TextClassifierNetwork(encoder.build_network(), int(np.max(labels)) + 1, dropout=0.0)
    return encoder, ids, network


def tiny_loss(labels=LABELS):
    """AutoTailLoss with the tail prior of ``labels``."""
    counts = np.bincount(labels)
    return AutoTailLoss(compute_tail_prior(counts, tail_gate=True).offsets, counts)


def tiny_trainer(network, encoder, loss_fn=None, *, seed=0, **config):
    """A CPU :class:`Trainer` with a constant learning-rate schedule."""
    settings = {"epochs": 1, "batch_size": 4, "learning_rate": 0.05}
    settings.update(config)
    trainer = Trainer(network, encoder, loss_fn or tiny_loss(), TrainingConfig(**settings),
                      np.random.RandomState(seed))
    trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lambda step: 1.0)
    return trainer


def batch_of(encoder, ids, labels, rows):
    """Collated inputs, targets and no weights for ``rows``."""
    rows = list(rows)
    return (
        encoder.collate([ids[i] for i in rows]),
        torch.as_tensor(np.asarray(labels)[rows], dtype=torch.long),
        None,
    )


def grads(network):
    """Copies of the gradients of every parameter, by name."""
    return {
        name: None if p.grad is None else p.grad.detach().clone()
        for name, p in network.named_parameters()
    }
