"""The encoder registry: ``encoder=`` names -> encoder families -> classes.

A family is one :class:`~sktail.encoders.TextEncoder` subclass in one file of
this package, registered here by one line. The classifier builds encoders
through :func:`make_encoder`, model files name a family by its registered id
(:func:`family_of`) and rebuild it with :func:`get_family`, and the training
regimes ask the encoder's declared capabilities (``pretrained``, its network's
``layer_stack()``), so no other module knows the concrete classes.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
from dataclasses import dataclass, field

__all__ = [
    "EncoderFamily", "family_of", "get_family", "make_encoder", "register", "registered_families",
    "registered_names",
]


@dataclass(frozen=True)
class EncoderFamily:
    """Describe one family of encoders: its id, its class and the names that select it.

    Attributes
    ----------
    id : str
        The name model files store (never change it once files exist).
    encoder_class : type or str
        The :class:`~sktail.encoders.TextEncoder` subclass, or its import path
        ``"module:Class"`` (imported on first use, so ``import sktail`` stays light).
    names : tuple of str
        ``encoder=`` values that select the family.
    accepts_any_name : bool
        Whether any other ``encoder=`` string (a model id, a folder) goes to
        this family. At most one family does.

    See Also
    --------
    register : Add a family.
    make_encoder : Build the encoder for an ``encoder=`` value.

    Examples
    --------
    >>> from sktail.encoders import BagEncoder, EncoderFamily
    >>> family = EncoderFamily("jieba-bag", "sktail.encoders._bag:BagEncoder", names=("jieba-bag",))
    >>> family.resolve() is BagEncoder
    True
    """

    id: str
    encoder_class: type | str
    names: tuple = field(default_factory=tuple)
    accepts_any_name: bool = False

    def resolve(self) -> type:
        """Return the encoder class, imported if given by path.

        Returns
        -------
        type
            The :class:`~sktail.encoders.TextEncoder` subclass.
        """
        if isinstance(self.encoder_class, str):
            module, _, name = self.encoder_class.partition(":")
            return getattr(importlib.import_module(module), name)
        return self.encoder_class


_FAMILIES: dict[str, EncoderFamily] = {}
#: Registered names that are downloaded from the Hugging Face hub (``_hf_loading.PRESETS``).
_HUB_PRESETS = ("macbert-base", "roberta-wwm-ext")


def register(family: EncoderFamily) -> EncoderFamily:
    """Add (or replace) a family.

    Parameters
    ----------
    family : EncoderFamily
        The family; one with the same ``id`` is replaced.

    Returns
    -------
    EncoderFamily
        ``family``.

    Raises
    ------
    ValueError
        If one of its names belongs to another family, or a second family
        would accept any name.
    """
    for other in _FAMILIES.values():
        if other.id == family.id:
            continue
        taken = set(other.names) & set(family.names)
        if taken:
            raise ValueError(f"encoder names {sorted(taken)} already belong to the family {other.id!r}.")
        if other.accepts_any_name and family.accepts_any_name:
            raise ValueError(f"the family {other.id!r} already accepts any encoder name.")
    _FAMILIES[family.id] = family
    return family


def registered_names() -> list:
    """Every ``encoder=`` name of every family, sorted.

    Returns
    -------
    list of str
    """
    return sorted(name for family in _FAMILIES.values() for name in family.names)


def registered_families() -> list:
    """The ids of every registered family, sorted.

    Returns
    -------
    list of str
    """
    return sorted(_FAMILIES)


def get_family(family_id: str) -> EncoderFamily:
    """The family stored under ``family_id`` (as model files name it).

    Parameters
    ----------
    family_id : str

    Returns
    -------
    EncoderFamily

    Raises
    ------
    KeyError
        If no family has that id.
    """
    try:
        return _FAMILIES[family_id]
    except KeyError:
        raise KeyError(f"unknown encoder family {family_id!r} (known: {sorted(_FAMILIES)})") from None


def family_of(encoder) -> EncoderFamily:
    """The family whose class ``encoder`` is an instance of (exact class).

    Parameters
    ----------
    encoder : TextEncoder

    Returns
    -------
    EncoderFamily

    Raises
    ------
    TypeError
        If its class is not registered.
    """
    for family in _FAMILIES.values():
        if type(encoder) is family.resolve():
            return family
    raise TypeError(
        f"the encoder {type(encoder).__name__} belongs to no registered family "
        f"(known: {sorted(_FAMILIES)}); register it with sktail.encoders.register."
    )


def _family_for_name(name: str) -> EncoderFamily:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0")
    for family in _FAMILIES.values():
        if name in family.names:
            if name in _HUB_PRESETS and not offline:
                _check_hub(name, family)
            return family
    expanded = os.path.expanduser(name)
    if os.path.isfile(expanded):
        raise ValueError(
            f"encoder={name!r} is a file; a local encoder is a folder holding config.json, the "
            "weights and the tokenizer files. To load a saved sktail model use sktail.load(path)."
        )
    close = difflib.get_close_matches(name, registered_names(), n=3, cutoff=0.75)
    if close and not os.path.isdir(expanded):
        raise ValueError(
            f"unknown encoder {name!r}; did you mean {' or '.join(repr(c) for c in close)}? "
            f"Built-in names: {registered_names()}; any other value is a Hugging Face model id "
            "or a local folder."
        )
    fallback = [family for family in _FAMILIES.values() if family.accepts_any_name]
    if not fallback:
        raise ValueError(f"unknown encoder {name!r}; known: {registered_names()}.")
    looks_like_path = name.startswith((".", "~", os.sep))
    if offline and not looks_like_path and not os.path.isdir(expanded):
        raise ValueError(
            f"encoder={name!r} is neither a built-in name ({registered_names()}) nor an existing "
            "folder, and HF_HUB_OFFLINE is set, so it cannot be downloaded. Encoders that work "
            f"offline: {offline_names()}; or pass a local "
            "folder holding config.json, the weights and the tokenizer files."
        )
    if not offline and not looks_like_path and not os.path.isdir(expanded):
        _check_hub(name, fallback[0])
    return fallback[0]


def offline_names() -> list:
    """The registered ``encoder=`` names that need no download.

    Returns
    -------
    list of str
        Every registered name but the Hugging Face hub presets.
    """
    return [name for name in registered_names() if name not in _HUB_PRESETS]


def _check_hub(name: str, family: EncoderFamily) -> None:
    """Refuse at once a hub model that is neither cached nor reachable (instead of ~25 s of retries)."""
    if family.id != "huggingface":
        return
    from ._hf_loading import PRESETS, cached_snapshot, hub_reachable

    hub_id = PRESETS[name][0] if name in PRESETS else name
    if cached_snapshot(hub_id) is not None or hub_reachable():
        return
    raise ValueError(
        f"encoder={name!r} is not a built-in offline encoder, not a folder here and not in the local "
        f"Hugging Face cache, and the hub ({os.environ.get('HF_ENDPOINT', 'https://huggingface.co')}) "
        f"cannot be reached. Encoders that work offline: {offline_names()}; or pass a local folder "
        "holding config.json, the weights and the tokenizer files (made where the hub is reachable "
        f"with `hf download {hub_id} --local-dir DIR`)."
    )


def make_encoder(name: str, options: dict | None = None):
    """Build the unfitted encoder for an ``encoder=`` value.

    Parameters
    ----------
    name : str
        A registered name, or (for the family that accepts any name) a Hugging
        Face model id or a local folder.
    options : dict, default=None
        The classifier's ``encoder_options``.

    Returns
    -------
    TextEncoder
        The family's ``from_name(name, **options)``.

    Raises
    ------
    ValueError
        For an unknown name (with close matches), a file instead of a folder,
        a model id while offline, or options the encoder does not take (with
        the valid ones and close matches).
    """
    family = _family_for_name(name)
    cls = family.resolve()
    options = dict(options or {})
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "name")]
    unknown = [key for key in options if key not in accepted]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
            if close:
                hints.append(f"{key!r} (did you mean {close[0]!r}?)")
        raise ValueError(
            f"encoder_options {sorted(unknown)} are not valid for encoder={name!r}; "
            + "".join(hint + "; " for hint in hints) + f"valid options: {accepted}."
        )
    try:
        return cls.from_name(name, **options)
    except TypeError as error:
        raise ValueError(f"encoder_options {sorted(options)} are not valid for encoder={name!r}: {error}") from error


# -- the families: one line each -------------------------------------------------------------
register(EncoderFamily("jieba-bag", "sktail.encoders._bag:BagEncoder", names=("jieba-bag",)))
register(EncoderFamily("huggingface", "sktail.encoders._hf:HFEncoder",
                       names=("e5-small", "macbert-base", "roberta-wwm-ext"), accepts_any_name=True))
register(EncoderFamily("tfidf-e5", "sktail.encoders._hybrid:HybridEncoder", names=("tfidf-e5",)))
