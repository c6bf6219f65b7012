"""Encoders: the built-in jieba bag-of-embeddings and Hugging Face transformers.

Each encoder is a :class:`TextEncoder` (tokenizer + network factory, picklable)
that builds an :class:`EncoderNetwork`; :class:`TextClassifierNetwork` adds the
dropout and linear head. ``transformers`` and ``jieba`` load only when used.
A family is one file with a subclass of each, made known to ``encoder=`` and
to model files by :func:`register` (see :mod:`sktail.encoders._registry`).
"""

from ._bag import BagEncoder, BagNetwork
from ._base import EncoderNetwork, TextClassifierNetwork, TextEncoder
from ._hf import PRESETS, HFEncoder, HFNetwork
from ._hybrid import HybridEncoder
from ._registry import EncoderFamily, make_encoder, register

__all__ = [
    "PRESETS",
    "BagEncoder",
    "BagNetwork",
    "EncoderFamily",
    "EncoderNetwork",
    "HFEncoder",
    "HFNetwork",
    "HybridEncoder",
    "TextClassifierNetwork",
    "TextEncoder",
    "make_encoder",
    "register",
]
