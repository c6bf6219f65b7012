"""Tests for sktail.datasets: synthetic corpus, text loaders and the CSL fetcher (offline)."""

import hashlib
import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sktail import datasets
from sktail.datasets import (
    fetch_csl,
    get_data_home,
    load_demo_corpus,
    load_texts,
    load_tsv,
    make_long_tail_text,
)

# ---------------------------------------------------------------------------
# make_long_tail_text
# ---------------------------------------------------------------------------


def test_make_long_tail_text_counts_and_types():
    texts, labels = make_long_tail_text(random_state=0)
    assert len(texts) == len(labels) == 78
    assert Counter(labels) == {"工学": 40, "理学": 20, "医学": 10, "农学": 5, "管理学": 3}
    assert all(isinstance(t, str) and t for t in texts)
    assert all(isinstance(y, str) for y in labels)


def test_make_long_tail_text_deterministic():
    a = make_long_tail_text((10, 5, 2), random_state=7)
    b = make_long_tail_text((10, 5, 2), random_state=7)
    c = make_long_tail_text((10, 5, 2), random_state=8)
    assert a == b
    assert a != c


def test_make_long_tail_text_accepts_random_state_instance():
    a = make_long_tail_text((5, 3), random_state=np.random.RandomState(3))
    b = make_long_tail_text((5, 3), random_state=3)
    assert a == b


def test_make_long_tail_text_no_shuffle_groups_by_class():
    _, labels = make_long_tail_text((3, 2, 1), shuffle=False, random_state=0)
    assert labels == ["工学"] * 3 + ["理学"] * 2 + ["医学"]


def test_make_long_tail_text_numbered_fallback_names():
    _, labels = make_long_tail_text([1] * 15, random_state=0)
    names = set(labels)
    assert len(names) == 15
    assert {"工学", "军事学", "学科14", "学科15"} <= names


def test_make_long_tail_text_class_names_and_zero_counts():
    _, labels = make_long_tail_text((2, 0, 3), class_names=["a", "b", "c"], random_state=0)
    assert Counter(labels) == {"a": 2, "c": 3}


def test_make_long_tail_text_noiseless_single_keyword_is_separable():
    texts, labels = make_long_tail_text(
        [4] * 20, n_keywords=1, vocab_size=1, n_filler=0, noise=0.0, random_state=0
    )
    # Without fillers, connectors or noise each text is exactly its class keyword.
    by_text = {}
    for text, label in zip(texts, labels):
        by_text.setdefault(text, set()).add(label)
    assert len(by_text) == 20
    assert all(len(v) == 1 for v in by_text.values())


def test_make_long_tail_text_keywords_carry_signal():
    # A bag-of-characters nearest-centroid check (fitted and scored in-sample):
    # keywords make the classes learnable and noise erodes that signal.
    def centroid_accuracy(noise):
        texts, labels = make_long_tail_text((60, 60, 60), n_filler=2, noise=noise, random_state=0)
        chars = sorted(set("".join(texts)))
        index = {c: i for i, c in enumerate(chars)}
        X = np.zeros((len(texts), len(chars)))
        for row, text in enumerate(texts):
            for ch in text:
                X[row, index[ch]] += 1
        y = np.array(labels)
        classes = np.unique(y)
        centroids = np.stack([X[y == k].mean(axis=0) for k in classes])
        pred = classes[np.argmin(((X[:, None, :] - centroids) ** 2).sum(-1), axis=1)]
        return (pred == y).mean()

    clean, default, uninformative = (centroid_accuracy(n) for n in (0.0, 0.1, 2 / 3))
    assert clean > 0.95
    assert default > uninformative + 0.2
    # noise = (K - 1) / K draws keywords uniformly from all classes: near chance (1/3)
    assert uninformative < 0.65


@pytest.mark.parametrize(
    "kwargs",
    [
        {"class_counts": ()},
        {"class_counts": (0, 0)},
        {"class_counts": (3, -1)},
        {"class_counts": (3, 1.5)},
        {"n_keywords": 0},
        {"vocab_size": 0},
        {"n_filler": -1},
        {"noise": 1.5},
        {"noise": -0.1},
        {"class_counts": (2, 2), "class_names": ["a"]},
        {"class_counts": (2, 2), "class_names": ["a", "a"]},
        {"class_counts": (2, 2), "class_names": "ab"},
    ],
)
def test_make_long_tail_text_invalid(kwargs):
    with pytest.raises(ValueError):
        make_long_tail_text(**kwargs)


@settings(max_examples=30, deadline=None)
@given(
    counts=st.lists(st.integers(0, 6), min_size=1, max_size=20).filter(lambda c: sum(c) > 0),
    noise=st.floats(0, 1),
    seed=st.integers(0, 2**31 - 1),
)
def test_make_long_tail_text_property_counts(counts, noise, seed):
    texts, labels = make_long_tail_text(counts, noise=noise, random_state=seed)
    assert len(texts) == sum(counts)
    got = Counter(labels)
    assert sorted(got.values()) == sorted(c for c in counts if c > 0)
    assert all(texts)


def test_load_demo_corpus():
    demo = load_demo_corpus()
    assert 8 <= len(demo.target_names) <= 12
    n_train, n_test = len(demo.train.data), len(demo.test.data)
    assert n_train + n_test == sum(demo.class_counts)
    assert 1000 < n_train + n_test < 5000
    assert len(demo.train.target) == n_train and len(demo.test.target) == n_test
    # stratified: every class present in both parts, long-tailed profile kept
    assert set(demo.train.target) == set(demo.test.target) == set(demo.target_names)
    counts = Counter(demo.train.target)
    assert max(counts.values()) / min(counts.values()) > 20
    assert load_demo_corpus() == demo
    assert isinstance(demo.DESCR, str)


# ---------------------------------------------------------------------------
# load_tsv
# ---------------------------------------------------------------------------


def _write(path, content):
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_load_tsv_basic(tmp_path):
    path = _write(tmp_path / "a.tsv", "小麦施肥\t农学\n量子计算\t理学\n")
    assert load_tsv(path) == (["小麦施肥", "量子计算"], ["农学", "理学"])
    assert load_tsv(str(path)) == (["小麦施肥", "量子计算"], ["农学", "理学"])


def test_load_tsv_bom_crlf_trailing_blank_lines(tmp_path):
    content = b"\xef\xbb\xbf" + "标题一\t工学\r\n标题二\t医学\r\n\r\n\n".encode()
    path = _write(tmp_path / "a.tsv", content)
    assert load_tsv(path) == (["标题一", "标题二"], ["工学", "医学"])


def test_load_tsv_splits_on_last_tab(tmp_path):
    path = _write(tmp_path / "a.tsv", "左\t右\t法学\n")
    assert load_tsv(path) == (["左\t右"], ["法学"])


def test_load_tsv_keeps_unicode_line_separators_inside_text(tmp_path):
    path = _write(tmp_path / "a.tsv", "甲\u2028乙\t文学\n")
    assert load_tsv(path) == (["甲\u2028乙"], ["文学"])


@pytest.mark.parametrize(
    "content, lineno, what",
    [
        ("好\t工学\n没有制表符\n", 2, "no tab"),
        ("好\t工学\n\n好\t \n", 3, "empty label"),
        ("\t工学\n", 1, "empty text"),
    ],
)
def test_load_tsv_errors_name_file_and_line(tmp_path, content, lineno, what):
    path = _write(tmp_path / "bad.tsv", content)
    with pytest.raises(ValueError, match=f"bad.tsv: line {lineno} has (an )?{what}"):
        load_tsv(path)


def test_load_tsv_invalid_utf8_reports_line(tmp_path):
    path = _write(tmp_path / "bad.tsv", "好\t工学\n".encode() + b"\xff\xfe\t\xe5\n")
    with pytest.raises(ValueError, match="bad.tsv: line 2 is not valid UTF-8"):
        load_tsv(path)


def test_load_tsv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_tsv(tmp_path / "nope.tsv")


# ---------------------------------------------------------------------------
# load_texts
# ---------------------------------------------------------------------------


def test_load_texts_txt(tmp_path):
    path = _write(tmp_path / "in.txt", "\ufeff第一行\r\n含\t制表符\n\n")
    assert load_texts(path) == ["第一行", "含\t制表符"]


def test_load_texts_tsv_first_column(tmp_path):
    path = _write(tmp_path / "in.tsv", "标题一\t工学\n标题二\n标题三\t医学\t7\n")
    assert load_texts(path) == ["标题一", "标题二", "标题三"]


def test_load_texts_jsonl(tmp_path):
    rows = [{"text": "水稻", "id": 1}, {"text": "刑法"}]
    path = _write(
        tmp_path / "in.JSONL", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    )
    assert load_texts(path) == ["水稻", "刑法"]


def test_load_texts_format_override(tmp_path):
    path = _write(tmp_path / "in.dat", '{"text": "甲"}\n')
    assert load_texts(path, format="jsonl") == ["甲"]
    assert load_texts(path, format="txt") == ['{"text": "甲"}']


def test_load_texts_unknown_extension(tmp_path):
    path = _write(tmp_path / "in.csv", "a\n")
    with pytest.raises(ValueError, match="cannot infer the input format"):
        load_texts(path)
    with pytest.raises(ValueError, match="format must be"):
        load_texts(path, format="csv")


@pytest.mark.parametrize("line", ['{"title": "x"}', '["x"]', '{"text": 3}', "{not json"])
def test_load_texts_bad_jsonl(tmp_path, line):
    path = _write(tmp_path / "in.jsonl", '{"text": "ok"}\n' + line + "\n")
    with pytest.raises(ValueError, match="in.jsonl: line 2"):
        load_texts(path)


# ---------------------------------------------------------------------------
# fetch_csl (never touches the network: the downloader is faked)
# ---------------------------------------------------------------------------

UPSTREAM = "to category\t太平天国私人便章考\t历史学\r\nto category\t两相临界流实验研究\t工学\r\n"


def _no_network(url):
    raise AssertionError(f"unexpected download of {url}")


class FakeDownloader:
    def __init__(self, payload):
        self.payload = payload
        self.urls = []

    def __call__(self, url):
        self.urls.append(url)
        return self.payload


def test_get_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SKTAIL_DATA", str(tmp_path))
    assert get_data_home() == str(tmp_path)
    assert get_data_home(tmp_path / "x") == str(tmp_path / "x")
    monkeypatch.delenv("SKTAIL_DATA")
    assert get_data_home().endswith("sktail_data")
    assert not get_data_home().startswith("~")


def test_fetch_csl_reads_cached_file(tmp_path):
    folder = tmp_path / "csl-title"
    folder.mkdir()
    _write(folder / "dev.tsv", "标题一\t工学\n标题二\t医学\n标题三\t工学\n")
    bunch = fetch_csl("title", data_home=tmp_path, subset="dev", downloader=_no_network)
    assert bunch.data == ["标题一", "标题二", "标题三"]
    assert bunch.target == ["工学", "医学", "工学"]
    assert bunch.target_names == sorted({"工学", "医学"})
    assert "research" in bunch.DESCR
    X, y = fetch_csl("title", data_home=tmp_path, subset="dev", return_X_y=True)
    assert (X, y) == (bunch.data, bunch.target)


def test_fetch_csl_uses_env_data_home(tmp_path, monkeypatch):
    folder = tmp_path / "csl-abstract"
    folder.mkdir()
    _write(folder / "train.tsv", "摘要\t矿业工程\n")
    monkeypatch.setenv("SKTAIL_DATA", str(tmp_path))
    assert fetch_csl("abstract", return_X_y=True, downloader=_no_network) == (
        ["摘要"],
        ["矿业工程"],
    )


def test_fetch_csl_downloads_verifies_and_converts(tmp_path, monkeypatch):
    payload = UPSTREAM.encode("utf-8")
    entry = dict(datasets._CSL_REMOTE[("title", "train")])
    entry["sha256"] = hashlib.sha256(payload).hexdigest()
    converted = "太平天国私人便章考\t历史学\n两相临界流实验研究\t工学\n".encode()
    entry["tsv_sha256"] = hashlib.sha256(converted).hexdigest()
    monkeypatch.setitem(datasets._CSL_REMOTE, ("title", "train"), entry)
    fake = FakeDownloader(payload)

    bunch = fetch_csl("title", data_home=tmp_path, downloader=fake)

    assert fake.urls == [entry["url"]]
    assert bunch.data == ["太平天国私人便章考", "两相临界流实验研究"]
    assert bunch.target == ["历史学", "工学"]
    target = tmp_path / "csl-title" / "train.tsv"
    assert target.read_bytes().decode() == "太平天国私人便章考\t历史学\n两相临界流实验研究\t工学\n"
    assert [p.name for p in target.parent.iterdir()] == ["train.tsv"]
    # second call reads the cache and does not download again
    assert fetch_csl("title", data_home=tmp_path, downloader=_no_network).data == bunch.data


def test_fetch_csl_converted_checksum_is_pinned_for_train_and_dev(tmp_path):
    # the real registry pins the converted title train/dev files: other content is refused
    for subset in ("train", "dev"):
        with pytest.raises(OSError, match="converted TSV"):
            fetch_csl("title", subset=subset, data_home=tmp_path, downloader=FakeDownloader(UPSTREAM.encode()))
    assert not (tmp_path / "csl-title").exists() or not any((tmp_path / "csl-title").iterdir())


def test_fetch_csl_checksum_mismatch_leaves_no_file(tmp_path, monkeypatch):
    entry = dict(datasets._CSL_REMOTE[("title", "dev")])
    entry["sha256"] = "0" * 64
    monkeypatch.setitem(datasets._CSL_REMOTE, ("title", "dev"), entry)

    with pytest.raises(OSError, match="SHA256"):
        fetch_csl("title", data_home=tmp_path, subset="dev", downloader=FakeDownloader(b"corrupt"))
    folder = tmp_path / "csl-title"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_fetch_csl_unpinned_checksum_warns(tmp_path, monkeypatch):
    entry = dict(datasets._CSL_REMOTE[("title", "test")])
    entry["sha256"] = None
    monkeypatch.setitem(datasets._CSL_REMOTE, ("title", "test"), entry)
    payload = UPSTREAM.encode("utf-8")
    with pytest.warns(UserWarning, match=hashlib.sha256(payload).hexdigest()):
        X, y = fetch_csl(
            "title",
            data_home=tmp_path,
            subset="test",
            return_X_y=True,
            downloader=FakeDownloader(payload),
        )
    assert y == ["历史学", "工学"]


def test_fetch_csl_bad_upstream_format_leaves_no_file(tmp_path, monkeypatch):
    payload = b"no tab here\n"
    entry = dict(datasets._CSL_REMOTE[("title", "train")])
    entry["sha256"] = hashlib.sha256(payload).hexdigest()
    monkeypatch.setitem(datasets._CSL_REMOTE, ("title", "train"), entry)
    with pytest.raises(ValueError, match="unexpected upstream format"):
        fetch_csl("title", data_home=tmp_path, downloader=FakeDownloader(payload))
    assert not (tmp_path / "csl-title" / "train.tsv").exists()


def test_fetch_csl_missing_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="download_if_missing=False") as info:
        fetch_csl("title", data_home=tmp_path, download_if_missing=False, downloader=_no_network)
    assert "SKTAIL_DATA" in str(info.value)
    assert not (tmp_path / "csl-title").exists()


@pytest.mark.parametrize("download_if_missing", [True, False])
def test_fetch_csl_abstract_has_no_upstream(tmp_path, download_if_missing):
    with pytest.raises(FileNotFoundError, match="no upstream download"):
        fetch_csl(
            "abstract",
            data_home=tmp_path,
            download_if_missing=download_if_missing,
            downloader=_no_network,
        )


def test_fetch_csl_registry_urls_are_pinned():
    for (task, subset), entry in datasets._CSL_REMOTE.items():
        assert task == "title"
        assert entry["url"].startswith("https://raw.githubusercontent.com/ydli-ai/CSL/")
        assert datasets._CSL_COMMIT in entry["url"]
        assert entry["url"].endswith(f"/benchmark/cls_ctg/{subset}.tsv")
        assert entry["sha256"] is None or len(entry["sha256"]) == 64
        assert entry["tsv_sha256"] is None or len(entry["tsv_sha256"]) == 64


@pytest.mark.parametrize("kwargs", [{"task": "keywords"}, {"subset": "validation"}])
def test_fetch_csl_invalid_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        fetch_csl(data_home=tmp_path, downloader=_no_network, **kwargs)
