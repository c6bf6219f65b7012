"""jieba tokens and the vocabulary of the built-in encoder."""

import pickle

import numpy as np
import pytest

from sktail._tokenize import PAD, UNK, JiebaVocabulary, jieba_tokens


def test_token_kinds_and_order():
    tokens = jieba_tokens("深度学习")
    words = [t for t in tokens if t.startswith("w:")]
    assert words and all(len(w) > 3 for w in words)  # only words of 2+ characters
    assert "".join(w[2:] for w in words) in {"深度学习"}
    kinds = [t[0] for t in tokens]
    assert kinds == sorted(kinds, key="wcb".index)  # words, then chars, then bigrams
    assert [t for t in tokens if t.startswith("c:")] == ["c:深", "c:度", "c:学", "c:习"]
    assert [t for t in tokens if t.startswith("b:")] == ["b:深度", "b:度学", "b:学习"]


def test_switches_select_the_token_kinds():
    assert jieba_tokens("深度学习", words=False, bigrams=False) == ["c:深", "c:度", "c:学", "c:习"]
    assert jieba_tokens("深度学习", words=False, chars=False) == ["b:深度", "b:度学", "b:学习"]
    assert all(t.startswith("w:") for t in jieba_tokens("深度学习", chars=False, bigrams=False))


def test_trigrams_come_last_and_only_when_asked():
    assert not any(t.startswith("t:") for t in jieba_tokens("深度学习"))
    tokens = jieba_tokens("深度学习", trigrams=True)
    assert tokens[-2:] == ["t:深度学", "t:度学习"] and tokens[:-2] == jieba_tokens("深度学习")
    assert jieba_tokens("深度", words=False, chars=False, bigrams=False, trigrams=True) == []


def test_whitespace_is_dropped_and_ascii_lowercased():
    assert jieba_tokens(" A b\t研\n", words=False) == ["c:a", "c:b", "c:研", "b:ab", "b:b研"]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_has_no_tokens(text):
    assert jieba_tokens(text) == []


def test_single_character_has_no_bigram():
    assert jieba_tokens("学", words=False) == ["c:学"]


def test_vocabulary_layout_and_unknown_tokens():
    vocab = JiebaVocabulary(words=False, bigrams=False).fit(["水稻", "稻田"])
    assert vocab.tokens_ == [PAD, UNK, "c:水", "c:田", "c:稻"]
    assert len(vocab) == 5
    (ids,) = vocab.encode(["田稻麦"], max_length=10)
    assert ids.tolist() == [3, 4, 1]  # an unseen character maps to <unk>
    assert ids.dtype == np.int64


def test_min_count_sends_rare_tokens_to_unk():
    vocab = JiebaVocabulary(min_count=2, words=False, bigrams=False).fit(["水稻", "稻田"])
    assert vocab.tokens_ == [PAD, UNK, "c:稻"]
    assert vocab.encode(["水稻"], 10)[0].tolist() == [1, 2]


def test_truncation_keeps_the_first_ids():
    vocab = JiebaVocabulary(words=False, bigrams=False).fit(["一二三四五"])
    assert [len(a) for a in vocab.encode(["一二三四五", "一二", ""], max_length=3)] == [3, 2, 0]
    assert vocab.encode(["五四三二一"], max_length=2)[0].tolist() == vocab.encode(["五四"], 9)[0].tolist()


def test_fit_encode_equals_fit_then_encode():
    texts = ["深度学习模型", "水稻种植", ""]
    a = JiebaVocabulary()
    b = JiebaVocabulary()
    got = a.fit_encode(texts, max_length=5)
    expected = b.fit(texts).encode(texts, max_length=5)
    assert a.tokens_ == b.tokens_
    assert [x.tolist() for x in got] == [x.tolist() for x in expected]


def test_pickle_round_trip_rebuilds_the_index():
    vocab = JiebaVocabulary().fit(["深度学习模型", "水稻种植"])
    restored = pickle.loads(pickle.dumps(vocab))
    assert restored.tokens_ == vocab.tokens_
    assert restored.encode(["水稻学习"], 20)[0].tolist() == vocab.encode(["水稻学习"], 20)[0].tolist()


def test_vocabulary_pickled_without_the_trigram_switch_still_encodes():
    vocab = JiebaVocabulary().fit(["深度学习模型"])
    state = vocab.__getstate__()
    del state["trigrams"]
    restored = JiebaVocabulary.__new__(JiebaVocabulary)
    restored.__setstate__(state)
    assert restored.trigrams is False
    assert restored.encode(["深度学习"], 20)[0].tolist() == vocab.encode(["深度学习"], 20)[0].tolist()
