"""Tokenisation for the built-in encoder: jieba words, characters and character bigrams."""

from __future__ import annotations

import logging
from collections import Counter
from functools import lru_cache

import numpy as np

__all__ = ["JiebaVocabulary", "char_budget", "jieba_tokens"]

PAD, UNK = "<pad>", "<unk>"


@lru_cache(maxsize=1)
def _jieba_tokenizer():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def jieba_tokens(
    text: str, *, words: bool = True, chars: bool = True, bigrams: bool = True, trigrams: bool = False
):
    """Split a text into the token strings of the built-in encoder.

    Parameters
    ----------
    text : str
        Input text; whitespace is dropped and ASCII letters are lower-cased.
    words : bool, default=True
        Emit jieba words of two or more characters, as ``"w:<word>"``.
    chars : bool, default=True
        Emit single characters, as ``"c:<char>"``.
    bigrams : bool, default=True
        Emit adjacent character pairs, as ``"b:<pair>"``.
    trigrams : bool, default=False
        Emit runs of three characters, as ``"t:<triple>"``.

    Returns
    -------
    list of str
        Tokens in text order: words, then characters, bigrams and trigrams.

    Examples
    --------
    >>> jieba_tokens("深度学习", words=False)
    ['c:深', 'c:度', 'c:学', 'c:习', 'b:深度', 'b:度学', 'b:学习']
    """
    compact = "".join(text.lower().split())
    tokens = []
    if words and compact:
        tokens.extend("w:" + w for w in _jieba_tokenizer().lcut(compact) if len(w) > 1)
    if chars:
        tokens.extend("c:" + c for c in compact)
    if bigrams:
        tokens.extend("b:" + compact[i : i + 2] for i in range(len(compact) - 1))
    if trigrams:
        tokens.extend("t:" + compact[i : i + 3] for i in range(len(compact) - 2))
    return tokens


def char_budget(max_length: int) -> int:
    """Characters of a text read by the built-in tokenizer for ``max_length`` ids.

    Longer texts are cut before segmentation, so a 100,000-character text costs
    no more than a text of this length. The budget (eight characters per id)
    is far above the length of the titles and abstracts the encoder is made for.

    Parameters
    ----------
    max_length : int
        Maximum number of ids kept per text.

    Returns
    -------
    int
    """
    return max(1024, 8 * int(max_length))


class JiebaVocabulary:
    """Token-to-id table learnt from training texts.

    Parameters
    ----------
    min_count : int, default=1
        Tokens seen fewer times in the training texts map to ``<unk>``.
    words, chars, bigrams, trigrams : bool
        Which token kinds to use, see :func:`jieba_tokens`.

    Attributes
    ----------
    tokens_ : list of str
        Id-ordered tokens; id 0 is ``<pad>``, id 1 is ``<unk>``.
    """

    def __init__(
        self, min_count: int = 1, *, words: bool = True, chars: bool = True, bigrams: bool = True,
        trigrams: bool = False,
    ):
        self.min_count = min_count
        self.words = words
        self.chars = chars
        self.bigrams = bigrams
        self.trigrams = trigrams

    def _tokens(self, text: str):
        return jieba_tokens(
            text, words=self.words, chars=self.chars, bigrams=self.bigrams, trigrams=self.trigrams
        )

    def fit(self, texts):
        """Build the table from training texts.

        Parameters
        ----------
        texts : iterable of str
            Training texts.

        Returns
        -------
        self : JiebaVocabulary
        """
        self._fit_tokens([self._tokens(text) for text in texts])
        return self

    def fit_encode(self, texts, max_length: int):
        """Build the table and encode the same texts, tokenising each text once.

        Parameters
        ----------
        texts : iterable of str
            Training texts.
        max_length : int
            Maximum number of ids kept per text.

        Returns
        -------
        list of ndarray of int64
            Same as ``fit(texts).encode(texts, max_length)`` for texts within
            :func:`char_budget` (the vocabulary is counted on the read part).
        """
        budget = char_budget(max_length)
        token_lists = [self._tokens(text[:budget]) for text in texts]
        self._fit_tokens(token_lists)
        return [self._ids(tokens[:max_length]) for tokens in token_lists]

    def _fit_tokens(self, token_lists):
        counts = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        kept = sorted(t for t, c in counts.items() if c >= self.min_count)
        self.tokens_ = [PAD, UNK, *kept]
        self._index = {t: i for i, t in enumerate(self.tokens_)}

    def _ids(self, tokens):
        index = self._index
        return np.fromiter((index.get(t, 1) for t in tokens), dtype=np.int64, count=len(tokens))

    def __len__(self) -> int:
        return len(self.tokens_)

    def encode(self, texts, max_length: int):
        """Map texts to arrays of token ids, truncated to ``max_length``.

        Parameters
        ----------
        texts : iterable of str
            Texts to encode.
        max_length : int
            Maximum number of ids kept per text.

        Returns
        -------
        list of ndarray of int64
            One array per text (possibly empty).
        """
        budget = char_budget(max_length)
        return [self._ids(self._tokens(text[:budget])[:max_length]) for text in texts]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_index", None)
        return state

    def __setstate__(self, state):
        state.setdefault("trigrams", False)  # vocabularies pickled before the option existed
        self.__dict__.update(state)
        if "tokens_" in state:
            self._index = {t: i for i, t in enumerate(self.tokens_)}
