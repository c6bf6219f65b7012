"""ONNX Runtime inference of Hugging Face encoders on the CPU (``pip install "sktail[fast]"``).

A leaf module: ``onnxruntime`` and ``onnx`` are imported only when a session
is built. The encoder network is exported (and quantised) once per set of
weights, recipe and runtime version, and the graph is kept in the cache folder
(``$SKTAIL_HOME/onnx/<SHA-256 of those>.onnx``, about 90 MB for e5-small,
checked against its recorded SHA-256 when it is read; ``sktail cache --clear``
removes it), so later processes load it in a second instead of exporting it
again. The session is kept in memory next to the network (in a weak
dictionary: it goes when the network goes, and is rebuilt when a weight
changes). The word-embedding lookup stays in torch: for multilingual models
the table is most of the weights (e5-small: 96M of 118M parameters), a gather
costs nothing, and leaving it out makes the exported graph five times smaller
and its export and quantisation that much quicker.

Two recipes (``docs/speed.md`` has the measurements behind them):

* ``"onnx-fp32"``: the exported graph as is; ONNX Runtime fuses LayerNorm,
  GELU and bias additions when it loads the graph.
* ``"onnx-int8"`` (:mod:`sktail._onnx_int8`): dynamic int8 quantisation (activations per tensor at run
  time, weights per output channel) of every linear layer, after the inputs
  of the two feed-forward layers of each block are smoothed (SmoothQuant): input
  channel ``j`` is divided by ``s_j = max|x_j| ** 0.75 / max|w_j| ** 0.25`` and the
  weights' column ``j`` multiplied by it, which moves the activation outliers of
  those layers into the weights, whose int8 scales are per output channel. The
  maxima come from a fixed calibration set of generated Chinese titles
  (:func:`sktail.inference.calibration_texts`, tokenized by the caller), so the graph depends on
  the weights only. Unsmoothed, quantising the feed-forward layers dropped the
  minimum cosine to the fp32 features of 1,000 CSL titles to 0.989, below the
  0.995 sktail requires; the attention products stay in fp32.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
import weakref

import numpy as np
import torch
from torch import nn

from ._onnx_int8 import quantize, smoothed_copy

__all__ = ["RECIPE_VERSION", "available", "cache_tag", "encoder_forward", "graph_key", "supports"]

#: Bumped whenever the export or the quantisation recipe changes what is computed.
RECIPE_VERSION = 2
#: ``model_type`` values whose export is tested (``tests/test_inference.py``).
MODEL_TYPES = frozenset({"bert", "xlm-roberta"})
_OPSET = 17
_LOCK = threading.Lock()
_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
logger = logging.getLogger("sktail")


def available() -> bool:
    """Whether ``onnxruntime`` and ``onnx`` can be imported.

    Returns
    -------
    bool
    """
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def _encoder_of(network):
    """The encoder network of a classifier network, or ``network`` itself."""
    return getattr(network, "encoder", network) if hasattr(network, "head") else network


def supports(network) -> bool:
    """Whether ``network`` (an encoder network or a classifier network) can run in ONNX Runtime.

    Parameters
    ----------
    network : torch.nn.Module

    Returns
    -------
    bool
        True for networks with a ``forward_embeddings`` method and a
        transformers config whose ``model_type`` is in :data:`MODEL_TYPES`.
    """
    encoder = _encoder_of(network)
    config = getattr(getattr(encoder, "model", None), "config", None)
    return callable(getattr(encoder, "forward_embeddings", None)) and getattr(config, "model_type", None) in MODEL_TYPES


def cache_tag(name: str, *, vnni: bool) -> str:
    """Feature-cache tag of an ONNX path: recipe, runtime version and int8 instruction set.

    Parameters
    ----------
    name : {"onnx-fp32", "onnx-int8"}
        The recipe.
    vnni : bool
        Whether the CPU has int8 dot-product instructions (the int8 kernels
        round differently without them).

    Returns
    -------
    str
    """
    version = "missing"
    if available():
        import onnxruntime

        version = onnxruntime.__version__
    vnni = bool(vnni) if name == "onnx-int8" else None
    return f"{name};recipe={RECIPE_VERSION};onnxruntime={version};vnni={vnni}"


class _Core(nn.Module):
    """What is exported: word embeddings and attention mask in, pooled features out."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, inputs_embeds, attention_mask):
        return self.network.forward_embeddings(inputs_embeds, attention_mask)


def _weights_key(network) -> tuple:
    """Changes whenever a tensor of ``network`` is replaced or changed in place."""
    return tuple(
        (name, t.data_ptr(), t._version, str(t.dtype), tuple(t.shape)) for name, t in network.state_dict().items()
    )


def _export(network, path: str) -> None:
    embeds = torch.zeros(2, 3, network.hidden_size)
    mask = torch.ones(2, 3, dtype=torch.int64)
    was_training = network.training
    network.eval()
    try:
        # The tracer warns about Python branches on shapes in transformers' mask code; they
        # do not depend on the batch shape (the tests compare several shapes with torch).
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Core(network), (embeds, mask), path, input_names=["inputs_embeds", "attention_mask"],
                output_names=["pooled"], opset_version=_OPSET, dynamo=False,
                dynamic_axes={"inputs_embeds": {0: "batch", 1: "length"},
                              "attention_mask": {0: "batch", 1: "length"}, "pooled": {0: "batch"}},
            )
    finally:
        network.train(was_training)


def graph_key(network, name: str, calibration=None) -> str:
    """SHA-256 naming the exported graph: recipe, versions, and every weight's name, shape and bytes.

    Parameters
    ----------
    network : EncoderNetwork
        The network to export.
    name : {"onnx-fp32", "onnx-int8"}
        The recipe.
    calibration : list of dict, default=None
        The int8 recipe's calibration batches (their token ids enter the key).

    Returns
    -------
    str
        Hex digest; equal keys mean the same graph.
    """
    digest = hashlib.sha256(f"{cache_tag(name, vnni=False)};torch={torch.__version__};opset={_OPSET}".encode())
    batches = (calibration or []) if name == "onnx-int8" else []
    for batch in batches:
        for key in ("input_ids", "attention_mask"):
            digest.update(batch[key].to(torch.int64).contiguous().numpy().tobytes())
    for key, tensor in sorted(network.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{key};{tensor.dtype};{tuple(tensor.shape)};".encode())
        digest.update(flat.view(torch.uint8).numpy() if flat.numel() else b"")
    return digest.hexdigest()


def _file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stored_graph(network, name: str, calibration) -> str | None:
    """Path of the cached graph of ``network``, exporting and storing it first when needed.

    None when the cache folder cannot be written: the caller then builds the
    graph in a temporary folder.
    """
    from ._atomic import atomic_write, atomic_write_text
    from ._home import get_sktail_home

    try:
        folder = get_sktail_home() / "onnx"
        folder.mkdir(exist_ok=True)
    except OSError as error:
        logger.warning("ONNX graphs are not cached (%s); each process exports its own", error)
        return None
    key = graph_key(network, name, calibration)
    graph, record = folder / f"{key}.onnx", folder / f"{key}.json"
    if graph.is_file() and record.is_file():
        try:
            if json.loads(record.read_text(encoding="utf-8")).get("sha256") == _file_sha256(graph):
                return str(graph)
        except (OSError, ValueError):
            pass
        logger.warning("the cached ONNX graph %s does not match its record; exporting it again", graph)
    with tempfile.TemporaryDirectory(prefix="sktail-onnx-") as tmp:
        built = _export_graph(network, name, tmp, calibration)
        try:
            with open(built, "rb") as source:
                atomic_write(graph, lambda target: shutil.copyfileobj(source, target, 1 << 20))
            atomic_write_text(record, json.dumps({"sha256": _file_sha256(graph), "recipe": name}))
        except OSError as error:
            logger.warning("could not store the ONNX graph in %s (%s)", folder, error)
            return None
    return str(graph)


def _export_graph(network, name: str, folder: str, calibration) -> str:
    """Export (and for ``"onnx-int8"`` smooth and quantise) ``network`` into ``folder``; the graph's path."""
    path = os.path.join(folder, "encoder.onnx")
    _export(smoothed_copy(network, calibration) if name == "onnx-int8" else network, path)
    if name == "onnx-int8":
        quantized = os.path.join(folder, "encoder-int8.onnx")
        quantize(path, quantized)
        path = quantized
    return path


def _build(network, name: str, threads: int, calibration):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    path = _stored_graph(network, name, calibration)
    if path is not None:
        return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    with tempfile.TemporaryDirectory(prefix="sktail-onnx-") as tmp:
        path = _export_graph(network, name, tmp, calibration)
        return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def session(network, name: str, threads: int, calibration=None):
    """The ONNX Runtime session computing ``network``'s pooled features (built once, then reused).

    Parameters
    ----------
    network : EncoderNetwork
        A network :func:`supports` accepts, on the CPU.
    name : {"onnx-fp32", "onnx-int8"}
        The recipe.
    threads : int
        Intra-op threads of the session.
    calibration : list of dict or callable, default=None
        Collated batches calibrating the smoothing of ``"onnx-int8"`` (required
        there, see :func:`smoothed_copy`), or a function returning them, called
        only when the session has to be built.

    Returns
    -------
    onnxruntime.InferenceSession
    """
    if name == "onnx-int8" and calibration is None:
        raise ValueError("the onnx-int8 recipe needs calibration batches")
    key = (name, threads, _weights_key(network))
    with _LOCK:
        cached = _SESSIONS.get(network, {})
        if key not in cached:
            if callable(calibration):
                calibration = calibration()
            if name == "onnx-int8" and not calibration:
                raise ValueError("the onnx-int8 recipe needs calibration batches")
            # A weight changed or another recipe is asked for: drop what the old weights built.
            cached = {k: v for k, v in cached.items() if k[2] == key[2]}
            cached[key] = _build(network, name, threads, calibration)
            _SESSIONS[network] = cached
        return cached[key]


def encoder_forward(network, name: str, threads: int | None = None, calibration=None):
    """A function of a collated batch returning the pooled features, run by ONNX Runtime.

    Must be called outside :func:`torch.inference_mode` (the export traces the
    network); the returned function may be called inside it.

    Parameters
    ----------
    network : EncoderNetwork
        A network :func:`supports` accepts, on the CPU.
    name : {"onnx-fp32", "onnx-int8"}
        The recipe.
    threads : int, default=None
        Intra-op threads; None follows ``torch.get_num_threads()``, so a Dask
        worker (or any caller) that limits torch's threads limits these too.
    calibration : list of dict or callable, default=None
        Collated batches calibrating ``"onnx-int8"``, or a function returning
        them (see :func:`session`).

    Returns
    -------
    callable
        ``forward(batch) -> Tensor of shape (batch, hidden_size)``.
    """
    if not available():
        raise ImportError(f'precision {name!r} needs ONNX Runtime: pip install "sktail[fast]"')
    threads = torch.get_num_threads() if threads is None else int(threads)
    runner = session(network, name, max(1, threads), calibration)
    table = network.input_embeddings()

    def forward(batch):
        embeds = nn.functional.embedding(batch["input_ids"], table).float()
        mask = batch["attention_mask"].to(torch.int64)
        (pooled,) = runner.run(["pooled"], {"inputs_embeds": embeds.numpy(), "attention_mask": mask.numpy()})
        return torch.from_numpy(np.ascontiguousarray(pooled))

    return forward
