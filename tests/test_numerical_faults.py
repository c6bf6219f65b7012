"""Non-finite losses, gradients and weights: a clear error or the best epoch, never NaN weights."""

import math

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from sktail import AutoTailClassifier
from sktail.objective import AutoTailLoss
from sktail.training import NonFiniteError, Trainer

SETTINGS = {"encoder": "jieba-bag", "epochs": 3, "batch_size": 8, "encoder_options": {"embedding_dim": 8}, "random_state": 0}


@pytest.fixture(scope="module")
def corpus():
    from sktail.datasets import make_long_tail_text

    return make_long_tail_text((12, 8, 4), n_keywords=2, noise=0.0, random_state=0)


def _finite(clf):
    return all(bool(torch.isfinite(p).all()) for p in clf.network_.parameters())


def _after_calls(monkeypatch, cls, name, n, fault):
    """Patch ``cls.name`` so that from the ``n``-th call on, ``fault(self, result)`` replaces the result."""
    original = getattr(cls, name)
    calls = []

    def patched(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls.append(1)
        return fault(self, result) if len(calls) >= n else result

    monkeypatch.setattr(cls, name, patched)


def _nan_loss(self, loss):
    return loss * math.nan


def _inf_gradient(self, loss_value):
    self.network.head.weight.grad.fill_(math.inf)
    return loss_value


def _inf_weights(self, _):
    with torch.no_grad():
        self.network.head.bias.fill_(math.inf)


# 3 optimizer steps per epoch (24 rows, or 19 after the hold-out, in batches of 8); with FGM
# the loss runs twice per step. Each fault starts at a call in epoch 1, or in epoch 3 after
# two good epochs; weights are corrupted at the epoch's last step, so that only the
# end-of-epoch weight check can catch them.
FAULTS = [
    ("nan-loss", AutoTailLoss, "forward", _nan_loss, (1, 13), "training loss became nan"),
    ("inf-gradient", Trainer, "train_step", _inf_gradient, (1, 7), "gradient norm became inf"),
    ("inf-weights", Trainer, "optimizer_step", _inf_weights, (3, 9), "weights head.bias became non-finite"),
]
CASES = {"argnames": "cls, name, fault, calls, message", "argvalues": [f[1:] for f in FAULTS], "ids": [f[0] for f in FAULTS]}


@pytest.mark.parametrize(**CASES)
def test_fault_in_the_first_epoch_raises_and_keeps_the_previous_fit(corpus, monkeypatch, cls, name, fault, calls, message):
    clf = AutoTailClassifier(**{**SETTINGS, "epochs": 1}, validation_fraction=None).fit(*corpus)
    network, proba = clf.network_, clf.predict_proba(corpus[0])
    _after_calls(monkeypatch, cls, name, calls[0], fault)
    clf.set_params(epochs=SETTINGS["epochs"])
    with pytest.raises(NonFiniteError, match=f"Training stopped at epoch 1: the {message}"):
        clf.fit(*corpus)
    assert clf.network_ is network and clf.n_iter_ == 1
    np.testing.assert_array_equal(clf.predict_proba(corpus[0]), proba)


@pytest.mark.parametrize(**CASES)
def test_fault_after_good_epochs_restores_the_best_and_warns(corpus, monkeypatch, cls, name, fault, calls, message):
    _after_calls(monkeypatch, cls, name, calls[1], fault)
    with pytest.warns(RuntimeWarning, match=f"Training stopped at epoch 3: the {message}.*restoring the best epoch"):
        clf = AutoTailClassifier(**SETTINGS, validation_fraction=0.2).fit(*corpus)
    assert len(clf.history_) == 2 and clf.best_epoch_ in (1, 2)
    assert _finite(clf)
    assert np.all(np.isfinite(clf.predict_proba(corpus[0])))


@pytest.mark.parametrize("learning_rate", [1e6, 1e38])
def test_huge_learning_rate_never_returns_non_finite_weights(corpus, learning_rate):
    clf = AutoTailClassifier(**{**SETTINGS, "epochs": 2}, learning_rate=learning_rate, validation_fraction=None)
    try:
        clf.fit(*corpus)
    except NonFiniteError as error:
        assert "Lower learning_rate" in str(error)
    else:
        assert _finite(clf)


def test_a_fit_never_ends_with_non_finite_outputs():
    from sktail.datasets import make_long_tail_text

    # Two optimizer steps with a huge learning rate (the first is the warm-up's
    # zero step): the losses they saw and the weights they left (about 1e30) are
    # finite, but the logits overflow. The kept network is checked on the training rows.
    texts, labels = make_long_tail_text((80, 60, 40, 20), n_keywords=2, noise=0.1, random_state=0)
    clf = AutoTailClassifier(encoder="jieba-bag", epochs=1, batch_size=128, learning_rate=1e30, validation_fraction=None, random_state=0)
    with pytest.raises(NonFiniteError, match="non-finite outputs on its own training data"):
        clf.fit(texts, labels)
    with pytest.raises(NotFittedError):
        clf.predict(texts[:2])
