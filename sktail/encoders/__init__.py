"""Encoders: the built-in jieba bag-of-embeddings and Hugging Face transformers.

Each encoder is a :class:`TextEncoder` (tokenizer + network factory, picklable)
that builds an :class:`EncoderNetwork`; :class:`TextClassifierNetwork` adds the
dropout and linear head. ``transformers`` and ``jieba`` load only when used.
"""

from ._bag import BagEncoder, BagNetwork
from ._base import EncoderNetwork, TextClassifierNetwork, TextEncoder
from ._hf import PRESETS, HFEncoder, HFNetwork

__all__ = [
    "PRESETS",
    "BagEncoder",
    "BagNetwork",
    "EncoderNetwork",
    "HFEncoder",
    "HFNetwork",
    "TextClassifierNetwork",
    "TextEncoder",
]
