"""Hugging Face transformer encoders ([CLS] pooling), loaded lazily.

This is a leaf module: ``transformers`` is imported only when an encoder of
this family is built, so ``import sktail`` stays light.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._base import EncoderNetwork, TextEncoder, pad_ids

__all__ = ["PRESETS", "HFEncoder", "HFNetwork", "resolve_model_path"]

#: Short names accepted by ``encoder=``: (hub id, load with BERT classes).
PRESETS = {
    "macbert-base": ("hfl/chinese-macbert-base", False),
    "roberta-wwm-ext": ("hfl/chinese-roberta-wwm-ext", True),
}
_NO_POOLER_TYPES = {"bert", "roberta", "xlm-roberta", "camembert", "ernie", "nezha", "megatron-bert"}


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
    force_bert : bool
        Whether the checkpoint must be loaded with BERT classes.
    """
    if name == "e5-small":
        from ._e5 import build_e5_small

        return str(build_e5_small()), True
    if name in PRESETS:
        return PRESETS[name]
    return name, False


def _load_error(name: str, path: str, error: Exception) -> OSError:
    return OSError(
        f"Could not load the encoder {name!r} (from {path!r}): {error}\n"
        "Pass a local directory holding config.json, the weights and the tokenizer files, "
        "e.g. one made where the Hugging Face hub is reachable with "
        f"`huggingface-cli download {path} --local-dir DIR`, then encoder='DIR'."
    )


class HFNetwork(EncoderNetwork):
    """A transformer whose pooled output is the final hidden state of the first token.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        The base model (no task head).
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.hidden_size = int(model.config.hidden_size)

    def forward(self, batch):
        """[CLS] vector of each text."""
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return out.last_hidden_state[:, 0]

    def input_embeddings(self):
        """The transformer's input word-embedding matrix."""
        return self.model.get_input_embeddings().weight


class HFEncoder(TextEncoder):
    """Any Hugging Face encoder model, with its fast tokenizer.

    Parameters
    ----------
    name : str
        A preset, a local directory or a hub id, see :func:`resolve_model_path`.
    prune_vocabulary : bool, default=False
        Keep only the embedding rows of tokens seen in the training texts (plus
        special tokens). Unseen tokens then map to the unknown token. Seen
        tokens keep their exact embeddings, so predictions on texts made of seen
        tokens do not change; large multilingual vocabularies shrink from
        hundreds of thousands of rows to a few thousand, which makes optimizer
        steps on CPU much cheaper.
    """

    defaults = {"max_length": 128, "epochs": 2, "batch_size": 16, "learning_rate": 2e-5}

    def __init__(self, name: str, prune_vocabulary: bool = False):
        self.name = name
        self.prune_vocabulary = bool(prune_vocabulary)
        self._path, self._force_bert = resolve_model_path(name)
        self._tokenizer = self._load_tokenizer(self._path)
        self._config = None
        self._kept_ids = None
        self._id_map = None

    # -- loading ---------------------------------------------------------------
    def _load_tokenizer(self, path):
        try:
            if self._force_bert:
                from transformers import BertTokenizerFast, PreTrainedTokenizerFast

                cls = BertTokenizerFast if os.path.exists(os.path.join(path, "vocab.txt")) or not os.path.isdir(path) else PreTrainedTokenizerFast
                return cls.from_pretrained(path)
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(path, use_fast=True)
        except (OSError, ValueError) as error:
            raise _load_error(self.name, path, error) from error

    def _model_kwargs(self, config):
        kwargs = {}
        if config.model_type in _NO_POOLER_TYPES:
            kwargs["add_pooling_layer"] = False
        return kwargs

    def build_network(self, *, pretrained=True):
        """Load the pretrained weights, or build from the stored config only."""
        from transformers import AutoConfig, AutoModel, BertModel

        model_cls = BertModel if self._force_bert else AutoModel
        if pretrained:
            try:
                config = AutoConfig.from_pretrained(self._path)
                model = model_cls.from_pretrained(
                    self._path, dtype=torch.float32, **self._model_kwargs(config)
                )
            except (OSError, ValueError) as error:
                raise _load_error(self.name, self._path, error) from error
            if self._kept_ids is not None:
                self._shrink_embeddings(model)
            self._config = model.config
        else:
            if self._force_bert:
                model = BertModel(self._config, **self._model_kwargs(self._config))
            else:
                model = AutoModel.from_config(self._config, **self._model_kwargs(self._config))
        return HFNetwork(model)

    def _shrink_embeddings(self, model):
        old = model.get_input_embeddings()
        kept = torch.as_tensor(self._kept_ids)
        new = nn.Embedding(len(self._kept_ids), old.embedding_dim, padding_idx=self.pad_id())
        with torch.no_grad():
            new.weight.copy_(old.weight[kept])
        model.set_input_embeddings(new)
        model.config.vocab_size = len(self._kept_ids)

    # -- tokenisation ----------------------------------------------------------
    def _raw_ids(self, texts, max_length):
        encoded = self._tokenizer(
            list(texts), truncation=True, max_length=max_length, add_special_tokens=True,
            return_attention_mask=False, return_token_type_ids=False,
        )
        return [np.asarray(ids, dtype=np.int64) for ids in encoded["input_ids"]]

    def fit_tokenize(self, texts, max_length):
        """Tokenize the training texts; with ``prune_vocabulary`` learn the kept rows."""
        ids = self._raw_ids(texts, max_length)
        if self.prune_vocabulary:
            self._fit_pruning(ids)
            ids = [self._id_map[a] for a in ids]
        return ids

    def _fit_pruning(self, ids):
        tok = self._tokenizer
        special = [i for i in tok.all_special_ids if i is not None]
        seen = np.unique(np.concatenate([*ids, np.asarray(special, dtype=np.int64)]))
        # Keep the unknown and padding tokens first, so both have fixed new ids.
        first = [tok.pad_token_id, tok.unk_token_id]
        rest = [i for i in seen.tolist() if i not in first]
        self._set_kept_ids(np.asarray(first + rest, dtype=np.int64))

    def _set_kept_ids(self, kept_ids):
        """Keep these embedding rows; every other token maps to the new id 1 (unknown)."""
        self._kept_ids = kept_ids
        id_map = np.full(len(self._tokenizer), 1, dtype=np.int64)
        id_map[kept_ids] = np.arange(len(kept_ids))
        self._id_map = id_map

    def tokenize(self, texts, max_length):
        """Token ids with special tokens, truncated to ``max_length``."""
        ids = self._raw_ids(texts, max_length)
        if self._id_map is not None:
            ids = [self._id_map[a] for a in ids]
        return ids

    def pad_id(self):
        """The new padding id after pruning, else the tokenizer's."""
        if self._id_map is not None:
            return 0
        pad = self._tokenizer.pad_token_id
        return 0 if pad is None else int(pad)

    def collate(self, ids):
        """Dynamic padding to the longest text of the batch."""
        input_ids, attention_mask = pad_ids(ids, self.pad_id())
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def describe(self):
        """The encoder's name and, when pruned, the number of kept rows."""
        kept = "" if self._kept_ids is None else f", {len(self._kept_ids)} vocabulary rows kept"
        return f"{self.name}{kept}"

    # -- pickling: tokenizer files and config travel as bytes -------------------
    def _files(self) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            self._tokenizer.save_pretrained(tmp)
            if self._config is not None:
                self._config.save_pretrained(tmp)
            return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}

    def _load_config(self, path):
        from transformers import AutoConfig, BertConfig

        return (BertConfig if self._force_bert else AutoConfig).from_pretrained(path)

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
            self._tokenizer = self._load_tokenizer(tmp)
            self._config = self._load_config(tmp) if has_config else None

    # -- saving without pickle: JSON settings plus the tokenizer and config files -----
    def to_config(self):
        """Settings (name, pruning ids) and the tokenizer files plus ``config.json``."""
        if self._config is None:
            raise ValueError(f"encoder {self.name!r} has no network configuration yet; fit it first.")
        config = {
            "name": self.name, "prune_vocabulary": self.prune_vocabulary,
            "force_bert": bool(self._force_bert),
            "kept_ids": None if self._kept_ids is None else self._kept_ids.tolist(),
        }
        return config, self._files()

    @classmethod
    def from_config(cls, config, files):
        """Rebuild the fitted encoder from :meth:`to_config` output, offline."""
        if "config.json" not in files:
            raise ValueError("the saved encoder has no config.json.")
        encoder = cls.__new__(cls)
        encoder.name = str(config["name"])
        encoder.prune_vocabulary = bool(config["prune_vocabulary"])
        encoder._path, encoder._force_bert = encoder.name, bool(config["force_bert"])
        encoder._kept_ids = encoder._id_map = None
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                Path(tmp, name).write_bytes(data)
            encoder._tokenizer = encoder._load_tokenizer(tmp)
            encoder._config = encoder._load_config(tmp)
        kept = config.get("kept_ids")
        if kept is not None:
            kept = np.asarray(kept, dtype=np.int64)
            if kept.ndim != 1 or kept.min(initial=0) < 0 or kept.max(initial=0) >= len(encoder._tokenizer):
                raise ValueError("the saved pruning ids do not fit the saved tokenizer.")
            encoder._set_kept_ids(kept)
        return encoder
