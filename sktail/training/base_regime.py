"""The regime contract: what the loop asks a way of training (see :mod:`sktail.training.regimes`)."""

from __future__ import annotations

import contextlib

from torch import nn

from ..encoders._base import TextClassifierNetwork

__all__ = ["Regime", "needs_pretrained"]


class Regime:
    """What trains and what FGM perturbs; the base trains every layer.

    Subclasses override the hooks the loop calls: :meth:`setup` before the
    optimizer is built, :meth:`after_optimizer`, :meth:`prepare` on the data,
    :meth:`adversarial` per batch, :meth:`context` around the epochs and
    :meth:`finish` at the end (also after a failure).

    Attributes
    ----------
    name : str
        The ``train_encoder`` value this regime implements.
    defaults : dict
        ``"auto"`` values that replace the encoder's own.
    distributed : bool
        Whether the regime runs under data-parallel training.

    See Also
    --------
    AllLayers : Every parameter trains.
    TopLayers : The top ``k`` transformer layers and the head train.
    CachedFeatures : The head trains on features computed once.
    regime_for : The regime of a ``train_encoder`` value.

    Examples
    --------
    >>> from sktail.training import Regime
    >>> regime = Regime()
    >>> regime.name, regime.distributed
    ('all', True)
    >>> regime.collator("the encoder")  # batches are collated by the encoder itself
    'the encoder'
    """

    name = "all"
    defaults: dict = {}
    distributed = True

    def check(self, encoder) -> None:
        """Raise ``ValueError`` when ``encoder`` cannot be trained this way.

        Parameters
        ----------
        encoder : TextEncoder
            The unfitted encoder of this fit.
        """

    def setup(self, network: TextClassifierNetwork) -> nn.Module:
        """Return the module the loop trains, before its optimizer is built.

        Parameters
        ----------
        network : TextClassifierNetwork
            The classifier network.

        Returns
        -------
        torch.nn.Module
            Here ``network`` itself, every parameter trainable.
        """
        return network

    def after_optimizer(self, network: nn.Module, fgm_enabled: bool) -> None:
        """Adjust parameters once the optimizer holds the trainable ones.

        Parameters
        ----------
        network : torch.nn.Module
            The module returned by :meth:`setup`.
        fgm_enabled : bool
            Whether FGM is on.
        """

    def prepare(self, trainer, train, validation):
        """Return the training and validation data the loop iterates over.

        Parameters
        ----------
        trainer : Trainer
            The loop (for its device, precision and verbosity).
        train : tuple (ids, y, w)
            Token ids, class indices, sample weights.
        validation : tuple (ids, y) or None
            Held-out rows.

        Returns
        -------
        train, validation
            In the form :meth:`collator` batches.
        """
        return train, validation

    def collator(self, encoder):
        """Return the object whose ``collate(rows)`` builds a batch from training rows.

        Parameters
        ----------
        encoder : TextEncoder
            The fitted encoder.

        Returns
        -------
        object
            Here ``encoder`` itself (it pads token ids into a batch).
        """
        return encoder

    def adversarial(self, network: nn.Module, batch: dict):
        """Return the batch to forward and FGM's explicit target for it.

        Parameters
        ----------
        network : torch.nn.Module
            The trained module.
        batch : dict of str to Tensor
            A collated batch on the device.

        Returns
        -------
        batch : dict of str to Tensor
            The batch to forward: here ``batch`` itself.
        target : Tensor
            The tensor FGM perturbs: here the word-embedding matrix ``E``.
        """
        return batch, network.encoder.input_embeddings()

    def context(self, device):
        """Return the context entered around the epochs (a no-op here).

        Parameters
        ----------
        device : torch.device
            The training device.

        Returns
        -------
        contextlib.AbstractContextManager
            A :func:`contextlib.nullcontext`.
        """
        return contextlib.nullcontext()

    def finish(self, network: nn.Module) -> None:
        """Leave the classifier network in its plain form after training.

        Parameters
        ----------
        network : torch.nn.Module
            The module returned by :meth:`setup`.
        """


def needs_pretrained(train_encoder, encoder) -> None:
    """Raise ``ValueError`` unless ``encoder`` declares pretrained weights.

    Parameters
    ----------
    train_encoder : str or int
        The value being checked (for the message).
    encoder : TextEncoder
        The unfitted encoder.
    """
    if not getattr(encoder, "pretrained", False):
        raise ValueError(
            f"train_encoder={train_encoder!r} needs a pretrained transformer encoder; the "
            f"{type(encoder).__name__} encoder starts from random embeddings learnt in fit and has no "
            "layers, so it is always trained whole. Use train_encoder='all' with it, or a "
            "transformer encoder such as encoder='e5-small'."
        )
