"""Character n-gram TF-IDF with scikit-learn's semantics, stored as plain data.

:class:`CharTfidf` reproduces ``TfidfVectorizer(analyzer="char",
ngram_range=(1, 3), sublinear_tf=True, smooth_idf=True, norm="l2",
dtype=np.float32)`` (lower-casing, runs of white space collapsed, ``min_df=1``,
alphabetically ordered features) bit for bit, but keeps only a token list and
an ``idf`` vector, so a fitted vectoriser is JSON data rather than a pickled
scikit-learn object. Texts are first turned into (sorted feature ids, counts)
pairs; :meth:`CharTfidf.values` turns those into the TF-IDF values of the rows.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np

__all__ = ["CharTfidf"]

_WHITE_SPACES = re.compile(r"\s\s+")  # as scikit-learn's _VectorizerMixin._white_spaces


class CharTfidf:
    """Character 1..n-gram TF-IDF vectoriser (scikit-learn's ``TfidfVectorizer`` semantics).

    Parameters
    ----------
    max_n : int, default=3
        Longest character n-gram (the shortest is 1).

    Attributes
    ----------
    tokens_ : list of str
        The n-grams of the training texts in feature order (sorted).
    idf_ : ndarray of float32, shape (n_features,)
        ``log((1 + n) / (1 + df)) + 1``, computed in float32 as scikit-learn does.
    """

    def __init__(self, max_n: int = 3):
        self.max_n = int(max_n)

    def __len__(self) -> int:
        return len(self.tokens_)

    def ngrams(self, text: str) -> list[str]:
        """The character n-grams of ``text`` (scikit-learn's ``_char_ngrams`` after lower-casing).

        Parameters
        ----------
        text : str

        Returns
        -------
        list of str
        """
        text = _WHITE_SPACES.sub(" ", text.lower())
        grams = list(text)
        for n in range(2, min(self.max_n + 1, len(text) + 1)):
            grams.extend(text[i : i + n] for i in range(len(text) - n + 1))
        return grams

    def fit(self, texts) -> list[tuple[np.ndarray, np.ndarray]]:
        """Learn the features and ``idf_`` from the training texts; return their counts.

        Parameters
        ----------
        texts : list of str

        Returns
        -------
        list of (ndarray of int64, ndarray of int64)
            Sorted feature ids and counts of each text.
        """
        counters = [Counter(self.ngrams(t)) for t in texts]
        df = Counter()
        for counter in counters:
            df.update(counter.keys())
        self._set(sorted(df), None)
        df_array = np.fromiter((df[t] for t in self.tokens_), dtype=np.float32, count=len(self.tokens_))
        idf = np.full_like(df_array, len(texts) + 1, dtype=np.float32)
        idf /= df_array + np.float32(1.0)
        np.log(idf, out=idf)
        idf += np.float32(1.0)
        self.idf_ = idf
        return [self._pairs(c) for c in counters]

    def counts(self, texts) -> list[tuple[np.ndarray, np.ndarray]]:
        """Sorted feature ids and counts of each text (unknown n-grams dropped).

        Parameters
        ----------
        texts : list of str

        Returns
        -------
        list of (ndarray of int64, ndarray of int64)
        """
        return [self._pairs(Counter(self.ngrams(t))) for t in texts]

    def _pairs(self, counter: Counter):
        index = self._index
        known = sorted((index[g], c) for g, c in counter.items() if g in index)
        pairs = np.asarray(known, dtype=np.int64).reshape(-1, 2)
        return pairs[:, 0].copy(), pairs[:, 1].copy()

    def values(self, ids: list[np.ndarray], counts: list[np.ndarray]) -> np.ndarray:
        """TF-IDF values of rows given as (sorted ids, counts), concatenated row after row.

        ``(1 + log(count)) * idf`` in float32, then each row divided by its L2
        norm, summed sequentially in float64 in feature order, as scikit-learn's
        ``inplace_csr_row_normalize_l2`` does; rows without features stay empty.

        Parameters
        ----------
        ids, counts : list of ndarray
            One pair per row, as :meth:`counts` returns them.

        Returns
        -------
        ndarray of float32, shape (total number of ids,)
        """
        lengths = np.fromiter((len(a) for a in ids), dtype=np.int64, count=len(ids))
        if lengths.sum() == 0:
            return np.zeros(0, dtype=np.float32)
        flat_ids = np.concatenate(ids)
        values = np.concatenate(counts).astype(np.float32)
        np.log(values, out=values)
        values += np.float32(1.0)
        values *= self.idf_[flat_ids]
        # Sequential float64 sums per row (np.cumsum adds in order; padding adds exact zeros).
        squares = np.zeros((len(ids), int(lengths.max())), dtype=np.float64)
        rows = np.repeat(np.arange(len(ids)), lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        squares[rows, np.arange(len(flat_ids)) - starts] = values * values
        norms = np.sqrt(np.cumsum(squares, axis=1)[:, -1])
        norms[norms == 0.0] = 1.0
        return (values / norms[rows]).astype(np.float32)

    # -- plain-data form ------------------------------------------------------------------
    def _set(self, tokens: list[str], idf) -> None:
        self.tokens_ = list(tokens)
        self._index = {t: i for i, t in enumerate(self.tokens_)}
        if idf is not None:
            self.idf_ = np.asarray(idf, dtype=np.float32)

    def to_files(self) -> dict[str, bytes]:
        """The fitted state as JSON files: the token list and the ``idf`` values.

        Returns
        -------
        dict of str to bytes
            ``tfidf_vocabulary.json`` and ``tfidf_idf.json`` (float32 values
            written as the float64 numbers they equal, so they read back exactly).
        """
        return {
            "tfidf_vocabulary.json": json.dumps(self.tokens_, ensure_ascii=False).encode("utf-8"),
            "tfidf_idf.json": json.dumps(self.idf_.astype(np.float64).tolist()).encode("ascii"),
        }

    @classmethod
    def from_files(cls, files: dict[str, bytes], max_n: int = 3) -> CharTfidf:
        """Rebuild a fitted vectoriser from :meth:`to_files` output.

        Parameters
        ----------
        files : dict of str to bytes
        max_n : int, default=3

        Returns
        -------
        CharTfidf

        Raises
        ------
        ValueError
            If the files do not hold unique sorted str tokens and one finite
            positive ``idf`` value per token.
        """
        tokens = json.loads(files["tfidf_vocabulary.json"].decode("utf-8"))
        idf = json.loads(files["tfidf_idf.json"].decode("ascii"))
        if not (isinstance(tokens, list) and all(isinstance(t, str) for t in tokens)
                and all(a < b for a, b in zip(tokens, tokens[1:]))):
            raise ValueError("tfidf_vocabulary.json must be a sorted list of unique str n-grams.")
        if not (isinstance(idf, list) and len(idf) == len(tokens)
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in idf)):
            raise ValueError("tfidf_idf.json must hold one number per n-gram.")
        idf = np.asarray(idf, dtype=np.float32)
        if not (np.isfinite(idf).all() and (idf >= 1).all()):
            raise ValueError("tfidf_idf.json holds idf values that are not finite numbers >= 1.")
        vectorizer = cls(max_n)
        vectorizer._set(tokens, idf)
        return vectorizer
