"""Inference: logits and pooled features of texts, in length-sorted batches.

Everything that runs a fitted network forward without training goes through
:func:`batched_inference`: prediction (:func:`predict_logits`), the
validation pass of training, and feature extraction for frozen encoders
(:func:`encode_features`, :func:`extract_features`, which reads and fills a
feature cache).

Each function takes the inference path as ``precision``, an
:class:`~sktail.devices.InferencePrecision` from
:func:`~sktail.devices.resolve_inference_precision`: torch in fp32 or under
autocast, or ONNX Runtime (``"onnx-fp32"``, ``"onnx-int8"``) for Hugging
Face encoders on the CPU. Fitting a frozen-feature model and predicting with
it resolve the same path, and the feature cache keys features on it, so a
model predicts from the features it was trained on.
"""

from __future__ import annotations

import numpy as np
import torch

from ._feature_cache import FeatureCache, network_fingerprint, resolve_cache_location, text_keys
from ._progress import notice
from .devices import InferencePrecision, autocast

__all__ = [
    "batched_inference",
    "calibration_texts",
    "encode_features",
    "extract_features",
    "inference_batch_size",
    "length_sorted_batches",
    "open_feature_cache",
    "predict_logits",
    "text_progress",
    "to_device",
]

#: A quiet fit or predict that encodes at least this many texts says so in one line.
NOTICE_TEXTS = 1000


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


def predict_logits(network, encoder, ids, *, batch_size: int, device, autocast_dtype=None, progress=False,
                   precision=None):
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
        Mixed precision for the forward pass (when ``precision`` is None).
    progress : bool, default=False
        Show a progress bar with texts/s (see :func:`text_progress`).
    precision : InferencePrecision, default=None
        The inference path; None runs torch under ``autocast_dtype``. The
        ONNX paths run the encoder in ONNX Runtime and the head in torch.

    Returns
    -------
    ndarray of float32, shape (n_texts, n_classes)
        Logits in the input order.
    """
    return batched_inference(
        network, encoder, ids, width=network.head.out_features, batch_size=batch_size,
        device=device, autocast_dtype=autocast_dtype, progress=progress, precision=precision,
    )


def text_progress(total: int, *, enabled: bool, desc: str = "encode"):
    """A :mod:`tqdm` bar counting texts (its rate reads texts/s), or None.

    Parameters
    ----------
    total : int
        Texts to process.
    enabled : bool
        Show a bar (``verbose >= 1``).
    desc : str, default="encode"
        Label of the bar.

    Returns
    -------
    tqdm.tqdm or None
        None when not enabled or :mod:`tqdm` is not installed
        (``pip install "sktail[progress]"``). The bar goes to stderr.
    """
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="text", leave=False, dynamic_ncols=True)


def _as_precision(precision, autocast_dtype) -> InferencePrecision:
    if precision is not None:
        return precision
    return InferencePrecision({torch.bfloat16: "bf16", torch.float16: "fp16"}.get(autocast_dtype, "fp32"))


def inference_batch_size(batch_size: int) -> int:
    """Return the texts per forward pass at inference: twice the training batch, within [64, 128].

    Length-sorted batches of this size keep the padding small: with a few
    batches of 512 the last one pads every text to the longest title.

    Parameters
    ----------
    batch_size : int
        The training batch size.

    Returns
    -------
    int
        ``min(128, max(64, 2 * batch_size))``.
    """
    return min(128, max(64, 2 * int(batch_size)))


def calibration_texts() -> list:
    """The texts whose activations calibrate the int8 recipe (``sktail._onnx.smoothed_copy``).

    256 generated Chinese titles (:func:`sktail.datasets.make_long_tail_text`,
    four classes of 64, ``random_state=0``): fixed, so that an encoder's int8
    graph depends on its weights only, and fit and predict share it.

    Returns
    -------
    list of str
        The same 256 texts at every call.
    """
    from .datasets import make_long_tail_text

    return list(make_long_tail_text((64, 64, 64, 64), random_state=0)[0])


def _calibration(encoder, max_length: int = 128, batch_size: int = 64) -> list:
    ids = encoder.tokenize(calibration_texts(), max_length)
    return [encoder.collate(ids[i : i + batch_size]) for i in range(0, len(ids), batch_size)]


def _forward(module, precision: InferencePrecision, device, encoder=None):
    """The function mapping a collated batch to ``module(batch)`` on this path.

    Built outside inference mode: the ONNX paths export the encoder on first use
    (``encoder`` tokenizes the int8 recipe's calibration texts).
    """
    if precision.runtime == "torch":
        def forward(batch):
            with autocast(device, precision.autocast_dtype):
                return module(batch)

        return forward
    from ._onnx import MODEL_TYPES, encoder_forward, supports
    from .encoders._base import TextClassifierNetwork

    if device.type != "cpu":
        raise ValueError(f"precision {precision.name!r} runs on the CPU only, not on {device}.")
    if not supports(module):
        raise ValueError(f"precision {precision.name!r} needs a Hugging Face encoder network of a type "
                         f"in {sorted(MODEL_TYPES)}; got {type(module).__name__}.")
    # Tokenized only if the int8 session has to be built (not on every call).
    calibration = (lambda: _calibration(encoder)) if precision.name == "onnx-int8" else None
    if isinstance(module, TextClassifierNetwork):
        features = encoder_forward(module.encoder, precision.name, calibration=calibration)
        return lambda batch: module.head(module.dropout(features(batch)))
    return encoder_forward(module, precision.name, calibration=calibration)


def batched_inference(module, encoder, ids, *, width: int, batch_size: int, device,
                      autocast_dtype=None, progress: bool = False, precision=None,
                      desc: str = "predict") -> np.ndarray:
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
        Mixed precision for the forward pass (when ``precision`` is None).
    progress : bool, default=False
        Show a progress bar with texts/s (see :func:`text_progress`).
    precision : InferencePrecision, default=None
        The inference path, see :func:`~sktail.devices.resolve_inference_precision`;
        None runs torch under ``autocast_dtype``.
    desc : str, default="predict"
        Label of the progress bar.

    Returns
    -------
    ndarray of float32, shape (n_texts, width)
        Outputs in the input order.
    """
    out = np.empty((len(ids), width), dtype=np.float32)
    if len(ids) == 0:
        return out
    precision = _as_precision(precision, autocast_dtype)
    was_training = module.training
    module.eval()
    bar = None
    try:
        forward = _forward(module, precision, device, encoder)
        bar = text_progress(len(ids), enabled=progress, desc=desc)
        with torch.inference_mode():
            for rows in length_sorted_batches([len(a) for a in ids], batch_size):
                batch = to_device(encoder.collate([ids[i] for i in rows]), device)
                out[rows] = forward(batch).float().cpu().numpy()
                if bar is not None:
                    bar.update(len(rows))
    finally:
        if bar is not None:
            bar.close()
        module.train(was_training)
    return out


def open_feature_cache(feature_cache, encoder_network, autocast_dtype=None, precision=None):
    """The cache namespace of ``encoder_network`` in the ``feature_cache`` location.

    Parameters
    ----------
    feature_cache : None, str, os.PathLike or joblib.Memory
        The classifier's ``feature_cache`` parameter.
    encoder_network : EncoderNetwork
        The frozen encoder whose features are cached.
    autocast_dtype : torch.dtype, default=None
        Precision the features are computed in (when ``precision`` is None).
    precision : InferencePrecision, default=None
        The inference path the features are computed on; its
        :attr:`~sktail.devices.InferencePrecision.cache_tag` is part of the
        namespace, so features of different paths never mix.

    Returns
    -------
    FeatureCache or None
        None when caching is off.
    """
    location = resolve_cache_location(feature_cache)
    if location is None:
        return None
    tag = _as_precision(precision, autocast_dtype).cache_tag
    return FeatureCache(location, network_fingerprint(encoder_network, tag))


def encode_features(encoder_network, text_encoder, ids, *, batch_size: int, device, autocast_dtype=None,
                    precision=None, progress: bool = False, desc: str = "features") -> np.ndarray:
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
        Mixed precision of the forward pass (when ``precision`` is None).
    precision : InferencePrecision, default=None
        The inference path (see :func:`batched_inference`).
    progress : bool, default=False
        Show a progress bar with texts/s.
    desc : str, default="features"
        Label of the progress bar.

    Returns
    -------
    ndarray of float32, shape (n_texts, hidden_size)
        Features in the input order.
    """
    return batched_inference(
        encoder_network, text_encoder, ids, width=encoder_network.hidden_size, batch_size=batch_size,
        device=device, autocast_dtype=autocast_dtype, precision=precision, progress=progress, desc=desc,
    )


def _encode_and_tell(encoder_network, text_encoder, ids, options, cached: bool) -> np.ndarray:
    """:func:`encode_features`, announced in one line when quiet and long (see :data:`NOTICE_TEXTS`)."""
    if not options["progress"] and len(ids) >= NOTICE_TEXTS:
        keep = ("the feature cache keeps them" if cached
                else "feature_cache=DIR would keep them for later fits and predictions")
        notice(f"computing the frozen encoder's features of {len(ids)} texts, which can take minutes "
               f"on a CPU; {keep}; verbose=1 shows progress")
    return encode_features(encoder_network, text_encoder, ids, **options)


def extract_features(encoder_network, text_encoder, ids, *, batch_size: int, device, autocast_dtype=None, cache=None,
                     precision=None, progress: bool = False, desc: str = "features"):
    """Compute the features of texts, read from ``cache`` where present, else computed and stored.

    Each distinct missing text is encoded once (see :func:`encode_features`).
    When quiet (``progress=False``), encoding :data:`NOTICE_TEXTS` texts or
    more is announced in one line on stderr (:func:`sktail._progress.notice`).

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
        Mixed precision of the forward pass (when ``precision`` is None).
    cache : FeatureCache, default=None
        Where to look up and store features; None computes all of them. Open
        it with :func:`open_feature_cache` for the same ``precision``.
    precision : InferencePrecision, default=None
        The inference path (see :func:`batched_inference`).
    progress : bool, default=False
        Show a progress bar with texts/s.
    desc : str, default="features"
        Label of the progress bar.

    Returns
    -------
    features : ndarray of float32, shape (n_texts, hidden_size)
        Features in the input order.
    n_encoded : int
        Number of distinct texts that were run through the encoder.
    """
    options = {"batch_size": batch_size, "device": device, "autocast_dtype": autocast_dtype,
               "precision": precision, "progress": progress, "desc": desc}
    if cache is None:
        return _encode_and_tell(encoder_network, text_encoder, ids, options, False), len(ids)
    keys = text_keys(ids)
    features, found = cache.lookup(keys, width=encoder_network.hidden_size)
    if features is None:
        features = np.zeros((len(ids), encoder_network.hidden_size), dtype=np.float32)
    missing = np.flatnonzero(~found)
    if len(missing):
        _, first = np.unique(keys[missing], return_index=True)
        todo = missing[np.sort(first)]
        fresh = _encode_and_tell(encoder_network, text_encoder, [ids[i] for i in todo], options, True)
        cache.store(keys[todo], fresh)
        position = {key: row for row, key in enumerate(keys[todo].tolist())}
        for row in missing:
            features[row] = fresh[position[keys[row]]]
        return features, len(todo)
    return features, 0
