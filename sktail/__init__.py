"""sktail: class-balance-aware fine-tuning of text encoders on long-tailed label sets.

The main entry point is :class:`AutoTailClassifier`. Heavy dependencies
(torch, transformers, jieba) load only when it is first used.
"""

__version__ = "0.1.0"
__all__ = ["AutoTailClassifier", "__version__", "load"]


def __getattr__(name):
    if name == "AutoTailClassifier":
        from .classifier import AutoTailClassifier

        return AutoTailClassifier
    if name == "load":
        from ._persistence import load

        return load
    raise AttributeError(f"module 'sktail' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
