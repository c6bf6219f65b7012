"""Inference: logits and pooled features of texts, in length-sorted batches.

Everything that runs a fitted network forward without training goes through
:func:`batched_inference`: prediction (:func:`predict_logits`), the
validation pass of training, and feature extraction for frozen encoders
(:func:`encode_features`, :func:`extract_features`, which reads and fills a
feature cache).
"""

from __future__ import annotations

import numpy as np
import torch

from ._feature_cache import FeatureCache, network_fingerprint, resolve_cache_location, text_keys
from ._progress import progress_bar
from .devices import autocast

__all__ = [
    "batched_inference",
    "encode_features",
    "extract_features",
    "length_sorted_batches",
    "open_feature_cache",
    "predict_logits",
    "to_device",
]


def length_sorted_batches(lengths, batch_size: int):
    """Split rows into batches sorted by length, longest first (for inference).

    Parameters
    ----------
    lengths : array-like of int
        Length of each text in ids.
    batch_size : int
        Rows per batch.

    Returns
    -------
    list of ndarray
        Row indices of each batch.
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def to_device(batch: dict, device: torch.device) -> dict:
    """Move every tensor of a collated batch to ``device`` (asynchronously where possible).

    Parameters
    ----------
    batch : dict of str to Tensor
        A collated batch.
    device : torch.device
        Target device.

    Returns
    -------
    dict of str to Tensor
        The same keys, each tensor on ``device``.
    """
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def predict_logits(network, encoder, ids, *, batch_size: int, device, autocast_dtype=None, progress=False):
    """Raw logits of every text, computed in length-sorted batches.

    Parameters
    ----------
    network : TextClassifierNetwork
        The classifier network, already on ``device``.
    encoder : TextEncoder
        Pads the batches.
    ids : list of ndarray
        Token ids of each text.
    batch_size : int
        Texts per forward pass.
    device : torch.device
        Where to run.
    autocast_dtype : torch.dtype, default=None
        Mixed precision for the forward pass.
    progress : bool, default=False
        Show a progress bar over the batches (see :func:`progress_bar`).

    Returns
    -------
    ndarray of float32, shape (n_texts, n_classes)
        Logits in the input order.
    """
    return batched_inference(
        network, encoder, ids, width=network.head.out_features, batch_size=batch_size,
        device=device, autocast_dtype=autocast_dtype, progress=progress,
    )


def batched_inference(module, encoder, ids, *, width: int, batch_size: int, device,
                      autocast_dtype=None, progress: bool = False) -> np.ndarray:
    """Run ``module`` over texts in eval mode and length-sorted batches.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a padded batch to a ``(batch, width)`` tensor; already on ``device``.
    encoder : TextEncoder
        Pads the batches.
    ids : list of ndarray
        Token ids of each text.
    width : int
        Number of output columns.
    batch_size : int
        Texts per forward pass.
    device : torch.device
        Where to run.
    autocast_dtype : torch.dtype, default=None
        Mixed precision for the forward pass.
    progress : bool, default=False
        Show a progress bar over the batches (see :func:`progress_bar`).

    Returns
    -------
    ndarray of float32, shape (n_texts, width)
        Outputs in the input order.
    """
    out = np.empty((len(ids), width), dtype=np.float32)
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            batches = length_sorted_batches([len(a) for a in ids], batch_size)
            for rows in progress_bar(batches, enabled=progress, desc="predict", leave=False):
                batch = to_device(encoder.collate([ids[i] for i in rows]), device)
                with autocast(device, autocast_dtype):
                    result = module(batch)
                out[rows] = result.float().cpu().numpy()
    finally:
        module.train(was_training)
    return out


def open_feature_cache(feature_cache, encoder_network, autocast_dtype=None):
    """The cache namespace of ``encoder_network`` in the ``feature_cache`` location.

    Parameters
    ----------
    feature_cache : None, str, os.PathLike or joblib.Memory
        The classifier's ``feature_cache`` parameter.
    encoder_network : EncoderNetwork
        The frozen encoder whose features are cached.
    autocast_dtype : torch.dtype, default=None
        Precision the features are computed in (part of the namespace).

    Returns
    -------
    FeatureCache or None
        None when caching is off.
    """
    location = resolve_cache_location(feature_cache)
    if location is None:
        return None
    return FeatureCache(location, network_fingerprint(encoder_network, f"autocast={autocast_dtype}"))


def encode_features(encoder_network, text_encoder, ids, *, batch_size: int, device, autocast_dtype=None) -> np.ndarray:
    """Pooled features of texts, in inference mode and length-sorted batches.

    Parameters
    ----------
    encoder_network : EncoderNetwork
        The encoder, already on ``device``.
    text_encoder : TextEncoder
        Pads the batches.
    ids : list of ndarray
        Token ids of each text.
    batch_size : int
        Texts per forward pass.
    device : torch.device
        Where to run.
    autocast_dtype : torch.dtype, default=None
        Mixed precision of the forward pass.

    Returns
    -------
    ndarray of float32, shape (n_texts, hidden_size)
        Features in the input order.
    """
    return batched_inference(
        encoder_network, text_encoder, ids, width=encoder_network.hidden_size, batch_size=batch_size,
        device=device, autocast_dtype=autocast_dtype,
    )


def extract_features(encoder_network, text_encoder, ids, *, batch_size: int, device, autocast_dtype=None, cache=None):
    """Compute the features of texts, read from ``cache`` where present, else computed and stored.

    Each distinct missing text is encoded once (see :func:`encode_features`).

    Parameters
    ----------
    encoder_network : EncoderNetwork
        The encoder, already on ``device``.
    text_encoder : TextEncoder
        Pads the batches.
    ids : list of ndarray
        Token ids of each text.
    batch_size : int
        Texts per forward pass.
    device : torch.device
        Where to run.
    autocast_dtype : torch.dtype, default=None
        Mixed precision of the forward pass.
    cache : FeatureCache, default=None
        Where to look up and store features; None computes all of them.

    Returns
    -------
    features : ndarray of float32, shape (n_texts, hidden_size)
        Features in the input order.
    n_encoded : int
        Number of distinct texts that were run through the encoder.
    """
    if cache is None:
        features = encode_features(
            encoder_network, text_encoder, ids, batch_size=batch_size, device=device, autocast_dtype=autocast_dtype
        )
        return features, len(ids)
    keys = text_keys(ids)
    features, found = cache.lookup(keys)
    if features is None:
        features = np.zeros((len(ids), encoder_network.hidden_size), dtype=np.float32)
    missing = np.flatnonzero(~found)
    if len(missing):
        _, first = np.unique(keys[missing], return_index=True)
        todo = missing[np.sort(first)]
        fresh = encode_features(
            encoder_network, text_encoder, [ids[i] for i in todo], batch_size=batch_size,
            device=device, autocast_dtype=autocast_dtype,
        )
        cache.store(keys[todo], fresh)
        position = {key: row for row, key in enumerate(keys[todo].tolist())}
        for row in missing:
            features[row] = fresh[position[keys[row]]]
        return features, len(todo)
    return features, 0


