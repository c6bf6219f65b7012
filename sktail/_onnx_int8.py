"""The int8 recipe of :mod:`sktail._onnx`: smoothed feed-forward inputs, then dynamic int8.

Every linear layer of the exported encoder gets int8 weights per output channel and int8
activations per tensor at run time (ONNX Runtime's dynamic quantisation). Before the export,
the inputs of the two feed-forward layers of every block are smoothed (SmoothQuant): input
channel ``j`` is divided by ``s_j = max|x_j| ** alpha / max|w_j| ** (1 - alpha)`` and the
weights' column ``j`` multiplied by it, the same function in exact arithmetic, which moves
the activations' outlier channels into the weights.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

__all__ = ["SMOOTHING_ALPHA", "quantize", "quantized_nodes", "smoothed_copy"]

#: SmoothQuant migration strength of the feed-forward inputs (chosen on CSL dev titles).
SMOOTHING_ALPHA = 0.75


def quantized_nodes(model) -> list[str]:
    """Names of the MatMul nodes the int8 recipe quantises.

    Parameters
    ----------
    model : onnx.ModelProto
        The exported graph.

    Returns
    -------
    list of str
        MatMuls whose second input is a weight matrix (an initializer of rank
        2): every linear layer. The attention products (two activations) are
        left in fp32.
    """
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    return [node.name for node in model.graph.node
            if node.op_type == "MatMul" and len(node.input) == 2 and len(shapes.get(node.input[1], ())) == 2]


class _Smoothed(nn.Module):
    """``linear(x * inverse)``, the weights of ``linear`` already scaled by ``1 / inverse``."""

    def __init__(self, inverse: torch.Tensor, linear: nn.Linear):
        super().__init__()
        self.register_buffer("inverse", inverse)
        self.linear = linear

    def forward(self, x):
        return self.linear(x * self.inverse)


def _feed_forward_layers(network):
    """``(block, attribute name)`` of the two feed-forward linear layers of every encoder block."""
    blocks = network.model.encoder.layer
    return [(owner, "dense") for block in blocks for owner in (block.intermediate, block.output)]


def smoothed_copy(network, calibration, alpha: float = SMOOTHING_ALPHA):
    """A copy of ``network`` whose feed-forward inputs are smoothed for int8 (the same function in fp32).

    Parameters
    ----------
    network : EncoderNetwork
        A network :func:`supports` accepts; left unchanged (the copy shares its
        word-embedding table).
    calibration : list of dict
        Collated batches (``input_ids``, ``attention_mask``) whose activations
        give each input channel's maximum.
    alpha : float, default=SMOOTHING_ALPHA
        Migration strength: 0 leaves the activations as they are, 1 moves all
        of their range into the weights.

    Returns
    -------
    EncoderNetwork
        The smoothed copy, in eval mode.
    """
    table = network.input_embeddings()
    copy_ = copy.deepcopy(network, memo={id(table): table}).eval()
    layers = _feed_forward_layers(copy_)
    maxima = [None] * len(layers)

    def recorder(index):
        def hook(module, inputs, output):
            peak = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
            maxima[index] = peak if maxima[index] is None else torch.maximum(maxima[index], peak)
        return hook

    hooks = [getattr(owner, name).register_forward_hook(recorder(i)) for i, (owner, name) in enumerate(layers)]
    try:
        with torch.no_grad():
            for batch in calibration:
                copy_.forward_embeddings(nn.functional.embedding(batch["input_ids"], table),
                                         batch["attention_mask"])
    finally:
        for hook in hooks:
            hook.remove()
    with torch.no_grad():
        for (owner, name), peak in zip(layers, maxima):
            linear = getattr(owner, name)
            weight_peak = linear.weight.abs().amax(0).clamp(min=1e-5)
            scale = (peak.clamp(min=1e-5) ** alpha / weight_peak ** (1 - alpha)).clamp(min=1e-5)
            linear.weight.mul_(scale)
            setattr(owner, name, _Smoothed(1.0 / scale, linear))
    return copy_


def quantize(source: str, target: str) -> None:
    """Write the int8 graph of the ONNX file ``source`` to ``target`` (the nodes of :func:`quantized_nodes`).

    Parameters
    ----------
    source, target : str
        Paths of the fp32 and the int8 graphs.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = quantized_nodes(onnx.load(source))
    root = logging.getLogger()
    root.addFilter(_quiet_quantizer)  # it advises "pre-processing" through the root logger
    try:
        quantize_dynamic(
            source, target, per_channel=True, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
            nodes_to_quantize=nodes, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.removeFilter(_quiet_quantizer)


def _quiet_quantizer(record) -> bool:
    return "onnxruntime" not in record.pathname
