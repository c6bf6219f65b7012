"""Training regimes: which parameters train, where batches come from, what FGM perturbs.

One loop (:class:`~sktail.training.Trainer`) runs every regime:

* :class:`AllLayers` (``train_encoder="all"``): the whole network trains; FGM
  perturbs the encoder's word-embedding matrix ``E``.
* :class:`TopLayers` (``train_encoder=k``): the top ``k`` transformer layers
  and the head train, the embeddings and lower layers are frozen. FGM still
  perturbs the frozen ``E``: it keeps ``requires_grad`` so ``g = dL/dE`` is
  computed, but it is left out of the optimizer and of clipping, so its values
  never change.
* :class:`~sktail.training.cached_features.CachedFeatures`
  (``train_encoder="none"``): only the dropout + head train, on pooled
  features computed once (see :mod:`sktail.training.cached_features`).

The network that is kept, predicted with and pickled is the plain encoder +
dropout + head in every regime.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from torch import nn

from ..encoders._base import TextClassifierNetwork
from .base_regime import Regime, needs_pretrained
from .cached_features import CachedFeatures

__all__ = ["AllLayers", "CachedFeatures", "Regime", "TopLayers", "freeze_lower_layers", "regime_for",
           "transformer_layers"]



class AllLayers(Regime):
    """Train every parameter (``train_encoder="all"``, the paper's fine-tuning).

    The :class:`Regime` defaults unchanged: the whole network trains and FGM
    perturbs the encoder's word-embedding matrix.

    See Also
    --------
    TopLayers : The top ``k`` transformer layers and the head train.
    CachedFeatures : The head trains on features computed once.
    regime_for : The regime of a ``train_encoder`` value.

    Examples
    --------
    >>> from sktail.encoders import BagEncoder
    >>> from sktail.training import AllLayers, regime_for
    >>> isinstance(regime_for("all", BagEncoder()), AllLayers)
    True
    """


def transformer_layers(encoder_network: nn.Module) -> nn.ModuleList:
    """The stack of transformer layers of an encoder network.

    Parameters
    ----------
    encoder_network : EncoderNetwork
        A network whose ``layer_stack()`` returns its layers (the Hugging Face
        network finds them at ``model.encoder.layer``: BERT, RoBERTa, XLM-R,
        ELECTRA and relatives).

    Returns
    -------
    torch.nn.ModuleList
        Layers from the bottom (next to the embeddings) to the top.

    Raises
    ------
    ValueError
        If the network has no such stack.
    """
    stack = getattr(encoder_network, "layer_stack", None)
    layers = stack() if callable(stack) else None
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        model = getattr(encoder_network, "model", None)
        kind = type(model if model is not None else encoder_network).__name__
        raise ValueError(
            f"train_encoder=<int> needs a BERT-like model with its layers at model.encoder.layer; "
            f"{kind} has none. Use train_encoder='all' or 'none' with this encoder."
        )
    return layers


def freeze_lower_layers(network: TextClassifierNetwork, n_layers: int) -> None:
    """Freeze the embeddings and all but the top ``n_layers`` transformer layers.

    Parameters
    ----------
    network : TextClassifierNetwork
        The classifier network, changed in place; the dropout and head stay
        trainable.
    n_layers : int
        Number of top layers to train (1 to the number of layers).

    Raises
    ------
    ValueError
        If ``n_layers`` exceeds the number of layers, or the encoder has no
        layer stack (see :func:`transformer_layers`).
    """
    layers = transformer_layers(network.encoder)
    if not isinstance(n_layers, Integral) or not 1 <= n_layers <= len(layers):
        raise ValueError(
            f"train_encoder={n_layers!r} must be between 1 and the encoder's {len(layers)} layers."
        )
    for parameter in network.encoder.parameters():
        parameter.requires_grad_(False)
    for layer in layers[len(layers) - n_layers :]:
        for parameter in layer.parameters():
            parameter.requires_grad_(True)


class TopLayers(Regime):
    """The top ``n_layers`` transformer layers and the head train (``train_encoder=k``).

    Parameters
    ----------
    n_layers : int
        Number of top layers to train.

    See Also
    --------
    AllLayers : Every parameter trains.
    freeze_lower_layers : The freezing itself.
    regime_for : The regime of a ``train_encoder`` value.

    Notes
    -----
    FGM still perturbs the frozen word embeddings: they keep
    ``requires_grad`` so that ``dL/dE`` is computed, but are left out of the
    optimizer, so their values never change. The regime runs in one process
    only.

    Examples
    --------
    >>> from sktail.encoders import BagEncoder
    >>> from sktail.training import TopLayers
    >>> regime = TopLayers(2)
    >>> regime.name, regime.distributed
    (2, False)
    >>> regime.check(BagEncoder())  # a bag of embeddings has no layers
    Traceback (most recent call last):
    ...
    ValueError: train_encoder=2 needs a pretrained transformer encoder; ...
    """

    distributed = False

    def __init__(self, n_layers: int):
        self.n_layers = n_layers
        self.name = n_layers

    def check(self, encoder):
        """Raise ``ValueError`` unless ``encoder`` is a pretrained transformer (only those have layers to freeze).

        Parameters
        ----------
        encoder : TextEncoder
            The unfitted encoder of this fit.
        """
        needs_pretrained(self.n_layers, encoder)

    def setup(self, network):
        """Freeze all but the top layers (the optimizer then skips them).

        Parameters
        ----------
        network : TextClassifierNetwork
            The classifier network, changed in place.

        Returns
        -------
        TextClassifierNetwork
            ``network``, with only its top ``n_layers`` layers and head trainable.
        """
        freeze_lower_layers(network, self.n_layers)
        return network

    def after_optimizer(self, network, fgm_enabled):
        """Give the frozen word embeddings ``requires_grad`` back when FGM needs ``dL/dE``.

        Parameters
        ----------
        network : TextClassifierNetwork
            The module returned by :meth:`setup`.
        fgm_enabled : bool
            Whether FGM is on; nothing changes otherwise.
        """
        if fgm_enabled:
            network.encoder.input_embeddings().requires_grad_(True)

    def finish(self, network):
        """Make every parameter trainable again; the frozen ones are bit-identical to the pretrained.

        Parameters
        ----------
        network : TextClassifierNetwork
            The trained network, changed in place.
        """
        for parameter in network.parameters():
            parameter.requires_grad_(True)


def regime_for(train_encoder, encoder, *, feature_cache=None, distributed: bool = False) -> Regime:
    """Return the regime of a ``train_encoder`` value, checked against the encoder.

    Parameters
    ----------
    train_encoder : {"all", "none"} or int
        The classifier's parameter.
    encoder : TextEncoder
        The unfitted encoder of this fit.
    feature_cache : None, str, os.PathLike or joblib.Memory, default=None
        Used by ``"none"``.
    distributed : bool, default=False
        Whether the fit is one rank of a distributed job.

    Returns
    -------
    Regime
        The encoder's own regime when its ``make_regime`` returns one; else
        :class:`AllLayers` for ``"all"``, :class:`CachedFeatures` for
        ``"none"`` and :class:`TopLayers` for an int.

    Raises
    ------
    ValueError
        For a bool; for a regime that does not run data-parallel; or when the
        encoder cannot be trained that way (see :meth:`Regime.check`).
    """
    if isinstance(train_encoder, (bool, np.bool_)):
        raise ValueError(f"train_encoder must be 'all', 'none' or a positive int, got {train_encoder!r}.")
    custom = encoder.make_regime(train_encoder, feature_cache)
    if custom is not None:
        if distributed and not custom.distributed:
            raise ValueError(f"the {type(encoder).__name__} encoder trains in one process; use distributed=False.")
        return custom
    if isinstance(train_encoder, str):
        if train_encoder not in ("all", "none"):
            raise ValueError(f"train_encoder must be 'all', 'none' or a positive int, got {train_encoder!r}.")
        regime = AllLayers() if train_encoder == "all" else CachedFeatures(feature_cache)
    else:
        regime = TopLayers(train_encoder)
    if distributed and not regime.distributed:
        raise ValueError(
            f"train_encoder={train_encoder!r} trains in one process; distributed training supports "
            "only train_encoder='all'."
        )
    regime.check(encoder)
    return regime
