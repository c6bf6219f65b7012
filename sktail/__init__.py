"""sktail: class-balance-aware fine-tuning of text encoders on long-tailed label sets.

The main entry point is :class:`AutoTailClassifier`. Heavy dependencies
(torch, transformers, jieba) load only when it is first used.
"""

from ._version import __version__

__all__ = ["AutoTailClassifier", "ModelFileError", "__version__", "load"]


def __getattr__(name):
    if name == "AutoTailClassifier":
        from .classifier import AutoTailClassifier

        return AutoTailClassifier
    if name == "load":
        from .classifier import load

        return load
    if name == "ModelFileError":
        from ._persistence import ModelFileError

        return ModelFileError
    raise AttributeError(f"module 'sktail' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
