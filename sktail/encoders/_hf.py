"""Hugging Face transformer encoders ([CLS] pooling), loaded lazily.

This is a leaf module: ``transformers`` is imported only when an encoder of
this family is built, so ``import sktail`` stays light.
"""

from __future__ import annotations

import inspect
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._base import TextEncoder, pad_ids
from ._hf_loading import (
    PRESETS,
    _load_error,
    _no_init_weights,
    _quiet_transformers,
    resolve_model_path,
)
from ._hf_network import HFNetwork

__all__ = ["PRESETS", "HFEncoder", "HFNetwork", "resolve_model_path"]

class HFEncoder(TextEncoder):
    """Any Hugging Face encoder model, with its fast tokenizer.

    Parameters
    ----------
    name : str
        A preset, a local directory or a hub id, see :func:`resolve_model_path`.
    prune_vocabulary : bool, default=False
        Keep only the embedding rows of tokens seen in the training texts (plus
        special tokens and every id up to the padding id, so the padding id and
        RoBERTa-style position ids are unchanged). Unseen tokens then map to
        the unknown token. Seen tokens keep their exact embeddings, so
        predictions on texts made of seen tokens do not change; a 250k-row
        multilingual vocabulary shrinks to a few thousand rows, which makes
        optimizer steps on the CPU much cheaper.

    See Also
    --------
    HFNetwork : The network it builds.
    BagEncoder : The built-in offline encoder.
    make_encoder : Build an encoder from an ``encoder=`` value.

    Examples
    --------
    A tiny random-weight BERT in a local folder (presets and hub ids download
    the model instead):

    >>> import tempfile
    >>> from pathlib import Path
    >>> from transformers import BertConfig, BertModel, BertTokenizerFast
    >>> from sktail.encoders import HFEncoder
    >>> folder = tempfile.TemporaryDirectory()
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "深", "度", "学", "习"]
    >>> _ = Path(folder.name, "vocab.txt").write_text("\\n".join(vocab) + "\\n", encoding="utf-8")
    >>> _ = BertTokenizerFast.from_pretrained(folder.name).save_pretrained(folder.name)
    >>> config = BertConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1,
    ...                     num_attention_heads=2, intermediate_size=16)
    >>> BertModel(config).save_pretrained(folder.name)
    >>> encoder = HFEncoder(folder.name)
    >>> ids = encoder.fit_tokenize(["深度学习", "学习"], max_length=16)
    >>> [a.tolist() for a in ids]
    [[2, 5, 6, 7, 8, 3], [2, 7, 8, 3]]
    >>> encoder.build_network()(encoder.collate(ids)).shape
    torch.Size([2, 8])
    >>> folder.cleanup()
    """

    defaults = {"max_length": 128, "epochs": 2, "batch_size": 16, "learning_rate": 2e-5}
    pretrained = True

    @classmethod
    def from_name(cls, name, **options):
        """Create the encoder for a preset, a local folder or a hub id.

        Parameters
        ----------
        name : str
            The ``encoder=`` value.
        **options
            The classifier's ``encoder_options`` (``prune_vocabulary``).

        Returns
        -------
        HFEncoder
            ``HFEncoder(name, **options)``.
        """
        return cls(name, **options)

    def __init__(self, name: str, prune_vocabulary: bool = False):
        self.name = name
        self.prune_vocabulary = bool(prune_vocabulary)
        self._path, self._bert_classes = resolve_model_path(name)
        self._tokenizer = self._load_tokenizer(self._path)
        self._config = None
        self._kept_ids = None
        self._id_map = None

    # -- loading ---------------------------------------------------------------
    def _load_tokenizer(self, path, *, check_config=True):
        # BERT-class checkpoints get BertTokenizerFast (their files may name
        # another class); everything else, and the files sktail saved when
        # pickling (they record the class), goes through AutoTokenizer.
        from transformers import AutoTokenizer, BertTokenizerFast

        cls = BertTokenizerFast if self._bert_classes else AutoTokenizer
        try:
            with _quiet_transformers():
                # The config first: transformers 5 quietly builds an empty
                # tokenizer when a concrete class finds no files.
                if check_config:
                    self._load_config(path)
                tokenizer = cls.from_pretrained(path)
        except (OSError, ValueError) as error:
            raise _load_error(self.name, path, error) from error
        if len(tokenizer) <= len(set(tokenizer.all_special_ids)):
            raise _load_error(
                self.name, path, OSError("no tokenizer vocabulary was found (tokenizer.json or vocab.txt missing or empty)")
            )
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(
                f"The encoder {self.name!r} has no fast tokenizer (tokenizer.json); "
                "sktail needs one to tokenize quickly."
            )
        return tokenizer

    def _model_class(self, config):
        if self._bert_classes:
            from transformers import BertModel

            return BertModel
        from transformers.models.auto.modeling_auto import MODEL_MAPPING

        try:
            return MODEL_MAPPING[type(config)]
        except KeyError as error:
            raise ValueError(
                f"The encoder {self.name!r} has model_type {config.model_type!r}, which has "
                "no base model class in transformers."
            ) from error

    @staticmethod
    def _model_kwargs(model_cls):
        # [CLS] pooling: the tanh pooler of BERT-like models is never built.
        if "add_pooling_layer" in inspect.signature(model_cls.__init__).parameters:
            return {"add_pooling_layer": False}
        return {}

    def _load_config(self, path):
        from transformers import AutoConfig, BertConfig

        return (BertConfig if self._bert_classes else AutoConfig).from_pretrained(path)

    def build_network(self, *, pretrained=True):
        """Load the pretrained weights, or build from the stored config only.

        Parameters
        ----------
        pretrained : bool, default=True
            False builds the architecture from the stored config without
            initialising it (the caller loads a state dict next).

        Returns
        -------
        HFNetwork
            The model in float32 (its embeddings shrunk to the kept rows when
            ``prune_vocabulary`` was fitted).
        """
        if not pretrained:
            model_cls = self._model_class(self._config)
            with _quiet_transformers(), _no_init_weights():
                model = model_cls(self._config, **self._model_kwargs(model_cls))
            return HFNetwork(model.float())
        try:
            with _quiet_transformers():
                config = self._load_config(self._path)
                model_cls = self._model_class(config)
                model, info = model_cls.from_pretrained(
                    self._path, config=config, dtype=torch.float32, output_loading_info=True,
                    **self._model_kwargs(model_cls),
                )
        except (OSError, ValueError) as error:
            raise _load_error(self.name, self._path, error) from error
        missing = [k for k in info.get("missing_keys", ()) if "pooler" not in k]
        if missing:
            warnings.warn(
                f"The encoder {self.name!r} lacks {len(missing)} weights, which start from random "
                f"values: {sorted(missing)[:5]}", UserWarning, stacklevel=3,
            )
        if self._kept_ids is not None:
            self._shrink_embeddings(model)
        self._config = model.config
        return HFNetwork(model)

    def _shrink_embeddings(self, model):
        old = model.get_input_embeddings()
        kept = torch.as_tensor(self._kept_ids)
        new = nn.Embedding(len(kept), old.embedding_dim, padding_idx=old.padding_idx)
        with torch.no_grad():
            new.weight.copy_(old.weight[kept])
        model.set_input_embeddings(new)
        model.config.vocab_size = len(kept)

    # -- tokenisation ----------------------------------------------------------
    def _raw_ids(self, texts, max_length):
        encoded = self._tokenizer(
            list(texts), truncation=True, max_length=max_length, add_special_tokens=True,
            return_attention_mask=False, return_token_type_ids=False,
        )
        return [np.asarray(ids, dtype=np.int64) for ids in encoded["input_ids"]]

    def fit_tokenize(self, texts, max_length):
        """Tokenize the training texts; with ``prune_vocabulary`` learn the kept rows.

        Parameters
        ----------
        texts : list of str
            Training texts.
        max_length : int
            Maximum ids per text, special tokens included.

        Returns
        -------
        list of ndarray of int64
            One id array per text (ids of the pruned vocabulary with
            ``prune_vocabulary``).
        """
        ids = self._raw_ids(texts, max_length)
        if self.prune_vocabulary:
            self._fit_pruning(ids)
            ids = [self._id_map[a] for a in ids]
        return ids

    def _fit_pruning(self, ids):
        tok = self._tokenizer
        if tok.unk_token_id is None or tok.pad_token_id is None:
            raise ValueError(
                f"prune_vocabulary needs a tokenizer with unknown and padding tokens; "
                f"{self.name!r} lacks one."
            )
        special = [i for i in tok.all_special_ids if i is not None]
        # Every id up to the padding id is kept, so the kept ids, sorted, leave
        # the ids 0..pad (padding included) where they were: the embedding's
        # padding_idx and RoBERTa's position ids (counted from pad + 1) hold.
        keep = np.concatenate([*ids, np.asarray(special, dtype=np.int64), np.arange(tok.pad_token_id + 1)])
        self._set_kept_ids(np.unique(keep))

    def _set_kept_ids(self, kept_ids):
        """Keep these (sorted) embedding rows; every other token maps to the unknown token."""
        tok = self._tokenizer
        self._kept_ids = kept_ids
        new_unk = int(np.searchsorted(kept_ids, tok.unk_token_id))
        id_map = np.full(max(len(tok), int(kept_ids[-1]) + 1), new_unk, dtype=np.int64)
        id_map[kept_ids] = np.arange(len(kept_ids))
        self._id_map = id_map

    def tokenize(self, texts, max_length):
        """Token ids with special tokens, truncated to ``max_length``.

        Parameters
        ----------
        texts : list of str
            Texts.
        max_length : int
            Maximum ids per text, special tokens included.

        Returns
        -------
        list of ndarray of int64
            Ids of the pruned vocabulary when ``prune_vocabulary`` was fitted.
        """
        ids = self._raw_ids(texts, max_length)
        if self._id_map is not None:
            ids = [self._id_map[a] for a in ids]
        return ids

    def pad_id(self):
        """Return the tokenizer's padding id (unchanged by pruning).

        Returns
        -------
        int
            The padding id; 0 for a tokenizer without one.
        """
        pad = self._tokenizer.pad_token_id
        return 0 if pad is None else int(pad)

    def collate(self, ids):
        """Pad a batch dynamically, to its longest text.

        Parameters
        ----------
        ids : list of ndarray
            One id array per text.

        Returns
        -------
        dict of str to Tensor
            ``input_ids`` (right-padded with :meth:`pad_id`) and
            ``attention_mask``, int64 of shape ``(n_texts, longest)``.
        """
        input_ids, attention_mask = pad_ids(ids, self.pad_id())
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def describe(self):
        """Describe the encoder: its name and, when pruned, the number of kept rows.

        Returns
        -------
        str
            E.g. ``"e5-small, 4210 vocabulary rows kept"``.
        """
        kept = "" if self._kept_ids is None else f", {len(self._kept_ids)} vocabulary rows kept"
        return f"{self.name}{kept}"

    # -- pickling: tokenizer files and config travel as bytes -------------------
    def _files(self) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            self._tokenizer.save_pretrained(tmp)
            if self._config is not None:
                self._config.save_pretrained(tmp)
            return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}

    def __getstate__(self):
        files = self._files()
        state = {k: v for k, v in self.__dict__.items() if k not in ("_tokenizer", "_config")}
        state["_files"] = files
        state["_has_config"] = self._config is not None
        return state

    def __setstate__(self, state):
        files = state.pop("_files")
        has_config = state.pop("_has_config")
        self.__dict__.update(state)
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                Path(tmp, name).write_bytes(data)
            self._tokenizer = self._load_tokenizer(tmp, check_config=has_config)
            self._config = self._load_config(tmp) if has_config else None

    # -- saving without pickle: JSON settings plus the tokenizer and config files -----
    def to_config(self):
        """Serialise the settings (name, pruning ids) and the tokenizer files plus ``config.json``.

        The files are serialised once, on the first call, and the same bytes
        are returned from then on; an encoder rebuilt by :meth:`from_config`
        returns the bytes it was rebuilt from. Re-serialising a reloaded
        tokenizer would add keys to ``tokenizer_config.json``, so without this
        a load-then-save would not give the same model file.

        Returns
        -------
        config : dict
            ``name``, ``prune_vocabulary``, ``force_bert`` and ``kept_ids``.
        files : dict of str to bytes
            The tokenizer files and ``config.json``.

        Raises
        ------
        ValueError
            If the network has not been built yet (no configuration).
        """
        if self._config is None:
            raise ValueError(f"encoder {self.name!r} has no network configuration yet; fit it first.")
        config = {
            "name": self.name, "prune_vocabulary": self.prune_vocabulary,
            "force_bert": bool(self._bert_classes),
            "kept_ids": None if self._kept_ids is None else self._kept_ids.tolist(),
        }
        files = self.__dict__.get("_saved_files")
        if files is None:
            files = self._saved_files = dict(sorted(self._files().items()))
        return config, dict(files)

    @classmethod
    def from_config(cls, config, files):
        """Rebuild the fitted encoder from :meth:`to_config` output, offline."""
        if "config.json" not in files:
            raise ValueError("the saved encoder has no config.json.")
        encoder = cls.__new__(cls)
        encoder.name = str(config["name"])
        encoder.prune_vocabulary = bool(config["prune_vocabulary"])
        encoder._path, encoder._bert_classes = encoder.name, bool(config["force_bert"])
        encoder._kept_ids = encoder._id_map = None
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                Path(tmp, name).write_bytes(data)
            encoder._tokenizer = encoder._load_tokenizer(tmp)
            encoder._config = encoder._load_config(tmp)
        encoder._saved_files = {name: bytes(data) for name, data in files.items()}  # saved as read
        kept = config.get("kept_ids")
        if kept is not None:
            kept = np.asarray(kept, dtype=np.int64)
            if (kept.ndim != 1 or kept.size == 0 or kept.min() < 0 or np.any(np.diff(kept) <= 0)
                    or kept.max() >= len(encoder._tokenizer)):
                raise ValueError("the saved pruning ids do not fit the saved tokenizer.")
            encoder._set_kept_ids(kept)
        return encoder
