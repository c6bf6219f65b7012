"""Datasets: a synthetic long-tailed Chinese corpus, text-file loaders and the CSL fetcher.

The public functions are

- :func:`make_long_tail_text`, a generator of short Chinese title-like texts whose
  class sizes follow any long-tailed profile (used by the tests and examples);
- :func:`load_demo_corpus`, a fixed generated train/test corpus for ``sktail demo``;
- :func:`load_tsv` and :func:`load_texts`, readers for ``text<TAB>label`` training
  files and for prediction inputs;
- :func:`fetch_csl`, a scikit-learn-style ``fetch_*`` loader for the CSL
  benchmark classification tasks.

Data licence
------------
CSL (Li et al., "CSL: A Large-scale Chinese Scientific Literature Dataset",
COLING 2022) is released for non-commercial research use only and may not be
redistributed. sktail never bundles any CSL file: :func:`fetch_csl` reads the
files from a local data directory, or downloads the public benchmark files from
their upstream repository into that directory on the user's own machine.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import numbers
import os
import warnings
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ._atomic import atomic_write_text

__all__ = [
    "make_long_tail_text",
    "load_demo_corpus",
    "load_tsv",
    "load_texts",
    "fetch_csl",
    "get_data_home",
]

# ---------------------------------------------------------------------------
# Synthetic long-tailed corpus
# ---------------------------------------------------------------------------

# The 13 CSL categories (the Chinese discipline "门类"), roughly in the order of
# their size in the CSL title training split; each comes with a keyword
# vocabulary. Keywords are distinct across classes and never contain a filler.
_DISCIPLINE_KEYWORDS = {
    "工学": ("有限元", "控制器", "传感器", "电路", "数控机床", "结构力学", "焊接", "发动机"),
    "理学": ("拓扑", "量子", "微分方程", "晶体", "光谱", "催化剂", "群论", "天体"),
    "医学": ("临床", "患者", "肿瘤", "手术", "药物疗效", "病理", "护理", "并发症"),
    "农学": ("小麦", "水稻", "土壤", "施肥", "病虫害", "种植", "畜禽", "玉米"),
    "管理学": (
        "企业绩效",
        "供应链",
        "组织行为",
        "股权激励",
        "营销",
        "公共管理",
        "决策",
        "人力资源",
    ),
    "法学": ("刑法", "诉讼", "司法", "合同", "立法", "宪法", "侵权", "律师"),
    "教育学": ("教学", "课程", "学生", "教师", "课堂", "高校", "素质教育", "教材"),
    "经济学": ("通货膨胀", "货币政策", "汇率", "经济增长", "财政", "金融市场", "消费", "税收"),
    "文学": ("小说", "诗歌", "叙事", "文本", "作家", "散文", "修辞", "诗人"),
    "哲学": ("伦理", "形而上学", "马克思主义", "认识论", "存在主义", "本体", "辩证法", "康德"),
    "历史学": ("明清", "考古", "史料", "王朝", "宋代", "近代史", "碑刻", "文献考证"),
    "艺术学": ("绘画", "音乐", "舞蹈", "书法", "电影", "美术", "戏曲", "雕塑"),
    "军事学": ("作战", "军队", "国防", "战略", "武器装备", "兵法", "战术", "军事训练"),
}
_DISCIPLINES = tuple(_DISCIPLINE_KEYWORDS)

# Words shared by every class: they carry no class signal.
_FILLERS = (
    "研究",
    "分析",
    "探讨",
    "基于",
    "方法",
    "应用",
    "问题",
    "发展",
    "影响",
    "模型",
    "设计",
    "评价",
    "现状",
    "对策",
    "实践",
    "理论",
    "中国",
    "视角",
    "初探",
    "比较",
    "路径",
    "若干",
    "思考",
    "进展",
)
_CONNECTORS = ("", "", "的", "与", "及", "中的")

# Characters for generated keywords of classes beyond the named vocabularies.
_KEYWORD_CHARS = (
    "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥金木水火土山川河海林风云雷电霜雪星月日光"
)

# Class sizes for the demo corpus: the CSL title training split's profile
# (3536 ... 67, max/min about 53) scaled down to 12 classes.
_DEMO_CLASS_COUNTS = (1240, 283, 262, 255, 174, 155, 112, 99, 64, 57, 43, 24)


def _class_names(n_classes):
    """Return ``n_classes`` discipline names, numbered fallbacks after the 13 real ones."""
    names = list(_DISCIPLINES[:n_classes])
    names.extend(f"学科{k + 1:02d}" for k in range(len(names), n_classes))
    return names


def _generated_keywords():
    """Yield an endless, fixed sequence of made-up 2- and 3-character keywords."""
    # A fixed seed, independent of the caller's random_state: the vocabulary of
    # a class must not change between calls.
    order_rng = np.random.RandomState(20220901)
    for length in itertools.count(2):
        combos = list(itertools.product(_KEYWORD_CHARS, repeat=length))
        for i in order_rng.permutation(len(combos)):
            yield "".join(combos[i])


def _vocabularies(n_classes, vocab_size):
    """Return one keyword tuple of length ``vocab_size`` per class, all distinct."""
    vocab = [list(_DISCIPLINE_KEYWORDS.get(name, ()))[:vocab_size] for name in _DISCIPLINES]
    vocab = vocab[:n_classes]
    vocab.extend([] for _ in range(n_classes - len(vocab)))
    used = {kw for words in vocab for kw in words}
    generated = (kw for kw in _generated_keywords() if kw not in used)
    for words in vocab:
        while len(words) < vocab_size:
            words.append(next(generated))
    return [tuple(words) for words in vocab]


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def make_long_tail_text(
    class_counts=(40, 20, 10, 5, 3),
    *,
    n_keywords=2,
    vocab_size=6,
    n_filler=2,
    noise=0.1,
    class_names=None,
    shuffle=True,
    random_state=None,
):
    """Generate a synthetic long-tailed corpus of short Chinese title-like texts.

    Each class owns a vocabulary of ``vocab_size`` keywords (real discipline
    terms for the first 13 classes, made-up words after that). A text joins
    ``n_keywords`` keywords drawn from its class's vocabulary with ``n_filler``
    filler words shared by all classes, in random order with optional connectors
    such as "的" or "与". Each keyword is, with probability ``noise``, replaced by
    a keyword of another class, so the classes are learnable but overlap.

    Parameters
    ----------
    class_counts : sequence of int, default=(40, 20, 10, 5, 3)
        Number of texts of each class; ``len(class_counts)`` is the number of
        classes. Zeros are allowed (the class then does not occur), but the total
        must be positive.
    n_keywords : int, default=2
        Class keywords per text (at least 1).
    vocab_size : int, default=6
        Keywords in each class's vocabulary (at least 1). With ``vocab_size=1``
        and ``noise=0`` every text of a class contains the same keyword.
    n_filler : int, default=2
        Shared filler words per text (0 or more).
    noise : float, default=0.1
        Probability in [0, 1] that a keyword is replaced by a keyword of another,
        uniformly chosen class. Ignored when there is a single class. With
        ``noise = (K - 1) / K`` for K classes, keywords carry no class signal.
    class_names : sequence of str, default=None
        Label of each class. ``None`` uses discipline names ("工学", "理学",
        "医学", ...) followed by "学科14", "学科15", ... when more than 13
        classes are asked for.
    shuffle : bool, default=True
        Shuffle the texts. If False, they come grouped by class, in the order of
        ``class_counts``.
    random_state : int, RandomState instance or None, default=None
        Seed or generator; the same integer always gives the same corpus.

    Returns
    -------
    texts : list of str
        The generated texts, ``sum(class_counts)`` of them.
    labels : list of str
        The class name of each text.

    See Also
    --------
    load_demo_corpus : A fixed train/test corpus generated with this function.

    Examples
    --------
    >>> from collections import Counter
    >>> from sktail.datasets import make_long_tail_text
    >>> texts, labels = make_long_tail_text((6, 3, 1), random_state=0)
    >>> len(texts)
    10
    >>> sorted(Counter(labels).items(), key=lambda kv: -kv[1])
    [('工学', 6), ('理学', 3), ('医学', 1)]
    >>> all(isinstance(t, str) and t for t in texts)
    True
    """
    counts = [_check_int(c, "Each class count", 0) for c in class_counts]
    if not counts or sum(counts) == 0:
        raise ValueError("class_counts must contain at least one positive count.")
    n_keywords = _check_int(n_keywords, "n_keywords", 1)
    vocab_size = _check_int(vocab_size, "vocab_size", 1)
    n_filler = _check_int(n_filler, "n_filler", 0)
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not 0 <= noise <= 1:
        raise ValueError(f"noise must be a float in [0, 1], got {noise!r}.")
    n_classes = len(counts)
    if class_names is None:
        names = _class_names(n_classes)
    else:
        if isinstance(class_names, str):
            raise ValueError("class_names must be a sequence of str, not a single str.")
        names = [str(name) for name in class_names]
        if len(names) != n_classes or len(set(names)) != n_classes:
            raise ValueError(
                f"class_names must hold {n_classes} distinct names, got {list(class_names)!r}."
            )

    rng = check_random_state(random_state)
    vocab = _vocabularies(n_classes, vocab_size)
    texts, labels = [], []
    for k, count in enumerate(counts):
        for _ in range(count):
            words = []
            for _ in range(n_keywords):
                source = k
                if n_classes > 1 and rng.random_sample() < noise:
                    source = rng.randint(n_classes - 1)
                    source += source >= k  # any class but k
                words.append(vocab[source][rng.randint(vocab_size)])
            words.extend(_FILLERS[i] for i in rng.randint(len(_FILLERS), size=n_filler))
            words = [words[i] for i in rng.permutation(len(words))]
            pieces = [words[0]]
            for word in words[1:]:
                pieces.append(_CONNECTORS[rng.randint(len(_CONNECTORS))])
                pieces.append(word)
            texts.append("".join(pieces))
            labels.append(names[k])
    if shuffle:
        order = rng.permutation(len(texts))
        texts = [texts[i] for i in order]
        labels = [labels[i] for i in order]
    return texts, labels


def load_demo_corpus(random_state=0):
    """Load the generated long-tailed demo corpus used by ``sktail demo``.

    Twelve discipline classes with the CSL title split's long-tailed profile
    scaled down (1240 texts in the largest class, 24 in the smallest, 2768 in
    all), split 80/20 into train and test, stratified by class. The corpus is
    generated by :func:`make_long_tail_text`; no data file is shipped.

    Parameters
    ----------
    random_state : int, RandomState instance or None, default=0
        Seed of the generator and of the split.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes

        train : Bunch
            ``data`` (list of str, the texts) and ``target`` (list of str, the
            labels) of the training part.
        test : Bunch
            The same for the test part.
        target_names : list of str
            The 12 class names, from the largest class to the smallest.
        class_counts : tuple of int
            The number of generated texts of each class, in the order of
            ``target_names``.
        DESCR : str
            A description of the corpus.

    See Also
    --------
    make_long_tail_text : The generator behind this corpus.

    Examples
    --------
    >>> from sktail.datasets import load_demo_corpus
    >>> demo = load_demo_corpus()
    >>> len(demo.train.data) + len(demo.test.data)
    2768
    >>> demo.target_names[:3]
    ['工学', '理学', '医学']
    """
    from sklearn.model_selection import train_test_split

    rng = check_random_state(random_state)
    texts, labels = make_long_tail_text(
        _DEMO_CLASS_COUNTS, n_keywords=2, vocab_size=8, n_filler=2, noise=0.15, random_state=rng
    )
    x_train, x_test, y_train, y_test = train_test_split(
        texts, labels, test_size=0.2, stratify=labels, random_state=rng
    )
    names = _class_names(len(_DEMO_CLASS_COUNTS))
    descr = (
        "sktail demo corpus: synthetic Chinese title-like texts in "
        f"{len(names)} discipline classes with a long-tailed profile "
        f"(largest class {max(_DEMO_CLASS_COUNTS)}, smallest {min(_DEMO_CLASS_COUNTS)}, "
        f"{sum(_DEMO_CLASS_COUNTS)} texts), split 80/20 stratified. Generated by "
        "sktail.datasets.make_long_tail_text; not real data."
    )
    return Bunch(
        train=Bunch(data=list(x_train), target=list(y_train)),
        test=Bunch(data=list(x_test), target=list(y_test)),
        target_names=names,
        class_counts=_DEMO_CLASS_COUNTS,
        DESCR=descr,
    )


# ---------------------------------------------------------------------------
# Text-file loaders
# ---------------------------------------------------------------------------


def _read_lines(path):
    r"""Decode a UTF-8 file (BOM allowed) and return its lines without line endings.

    Lines are split on ``"\n"`` only (a ``"\r"`` before it is dropped), so other
    Unicode line separators inside a text do not split it.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(
            f"{path}: line {lineno} is not valid UTF-8 ({exc.reason} at byte {exc.start})."
        ) from None
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def load_tsv(path):
    r"""Load a labelled ``text<TAB>label`` file.

    The file is UTF-8 (a byte-order mark is allowed) with one example per line
    and no header. Each line is split on its **last** tab, so the text itself may
    contain tabs. Windows line endings are accepted, blank lines (such as
    trailing empty lines) are skipped, and whitespace around the label is
    removed.

    Parameters
    ----------
    path : str or path-like
        The file to read.

    Returns
    -------
    texts : list of str
        The text of each example.
    labels : list of str
        The label of each example.

    Raises
    ------
    ValueError
        If a non-blank line has no tab, an empty text or an empty label, or the
        file is not valid UTF-8. The message names the file and the 1-based
        line number.

    See Also
    --------
    load_texts : Load unlabelled texts for prediction.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sktail.datasets import load_tsv
    >>> path = Path(tempfile.mkdtemp()) / "train.tsv"
    >>> _ = path.write_text("小麦施肥研究\t农学\n量子拓扑\t理学\n", encoding="utf-8")
    >>> load_tsv(path)
    (['小麦施肥研究', '量子拓扑'], ['农学', '理学'])
    """
    texts, labels = [], []
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise ValueError(
                f"{path}: line {lineno} has no tab; expected 'text<TAB>label', got {line[:60]!r}."
            )
        text, label = line.rsplit("\t", 1)
        label = label.strip()
        if not label:
            raise ValueError(f"{path}: line {lineno} has an empty label.")
        if not text.strip():
            raise ValueError(f"{path}: line {lineno} has an empty text.")
        texts.append(text)
        labels.append(label)
    return texts, labels


_TEXT_FORMATS = {".txt": "txt", ".tsv": "tsv", ".jsonl": "jsonl"}


def load_texts(path, *, format=None):
    r"""Load texts to predict on, one per line.

    Parameters
    ----------
    path : str or path-like
        The file to read, UTF-8 (a byte-order mark is allowed).
    format : {"txt", "tsv", "jsonl"}, default=None
        How to read the file. ``"txt"``: each line is a text. ``"tsv"``: the
        text is the first tab-separated column (any label or id columns after
        it are ignored). ``"jsonl"``: each line is a JSON object with a string
        ``"text"`` field. ``None`` picks the format from the file extension
        (``.txt``, ``.tsv`` or ``.jsonl``). Blank lines are skipped in every
        format.

    Returns
    -------
    texts : list of str
        The texts, in file order.

    Raises
    ------
    ValueError
        If the format is unknown or cannot be inferred, or a JSONL line is not
        an object with a string ``"text"`` field (the message names the file
        and the 1-based line number).

    See Also
    --------
    load_tsv : Load labelled training data.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sktail.datasets import load_texts
    >>> path = Path(tempfile.mkdtemp()) / "inputs.jsonl"
    >>> _ = path.write_text('{"text": "水稻种植"}\n{"text": "刑法研究"}\n', encoding="utf-8")
    >>> load_texts(path)
    ['水稻种植', '刑法研究']
    """
    path = Path(path)
    if format is None:
        format = _TEXT_FORMATS.get(path.suffix.lower())
        if format is None:
            raise ValueError(
                f"{path}: cannot infer the input format from the extension {path.suffix!r}; "
                "use a .txt, .tsv or .jsonl file or pass format='txt', 'tsv' or 'jsonl'."
            )
    elif format not in ("txt", "tsv", "jsonl"):
        raise ValueError(f"format must be 'txt', 'tsv', 'jsonl' or None, got {format!r}.")

    texts = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        if format == "txt":
            texts.append(line)
        elif format == "tsv":
            texts.append(line.split("\t", 1)[0])
        else:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {lineno} is not valid JSON ({exc.msg}).") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ValueError(
                    f"{path}: line {lineno} must be a JSON object with a string 'text' field."
                )
            texts.append(record["text"])
    return texts


# ---------------------------------------------------------------------------
# CSL benchmark fetcher
# ---------------------------------------------------------------------------

_CSL_DESCR = {
    "title": (
        "CSL title -> category (13 classes)\n"
        "Paper titles from the CSL benchmark task cls_ctg (Li et al., COLING 2022), "
        "labelled with one of 13 categories (工学, 理学, 医学, ...). The official split has "
        "8000 train, 1000 dev and 1000 test titles; the train split is long-tailed "
        "(3536 to 67 titles per class).\n"
        "Licence: CSL is for non-commercial research use only and must not be "
        "redistributed; sktail never bundles it."
    ),
    "abstract": (
        "CSL abstract -> discipline (67 classes)\n"
        "Paper abstracts labelled with one of 67 disciplines: a pool of the public CSL "
        "cls_dcp dev/test files and a public CSL-derived abstract set, deduplicated and "
        "split 70/15/15 by class. This split is derived, not published upstream.\n"
        "Licence: CSL is for non-commercial research use only and must not be "
        "redistributed; sktail never bundles it."
    ),
}

# The public CSL repository; files are fetched at a pinned commit so that their
# content, and hence their checksum, cannot change under the same URL.
_CSL_REPOSITORY = "https://github.com/ydli-ai/CSL"
_CSL_COMMIT = "7533806e5946f22d7a8bc601c15758632a21a9c3"
_CSL_RAW = f"https://raw.githubusercontent.com/ydli-ai/CSL/{_CSL_COMMIT}/benchmark"

# Remote files per (task, subset). Upstream rows are "to category<TAB>title<TAB>label".
# ``sha256`` pins the raw upstream file; ``tsv_sha256`` pins the converted
# ``text<TAB>label`` file that is written to disk. The converted train and dev
# splits are byte-identical to the reference copies the project benchmarks on
# (same rows, same order), so their checksums are known; the raw files' are not.
_CSL_REMOTE = {
    ("title", "train"): {
        "url": f"{_CSL_RAW}/cls_ctg/train.tsv", "sha256": None,
        "tsv_sha256": "5d1f098edd98759a34f8a377e2a6bb00fa4e5765243b1b1118c49ffb40462062",
    },
    ("title", "dev"): {
        "url": f"{_CSL_RAW}/cls_ctg/dev.tsv", "sha256": None,
        "tsv_sha256": "b6e641728a5cadb832e1d166d31beb6ce1fe8b9b1624b88a0d61a97262bf9edd",
    },
    ("title", "test"): {"url": f"{_CSL_RAW}/cls_ctg/test.tsv", "sha256": None, "tsv_sha256": None},
}

_CSL_TASKS = ("title", "abstract")
_CSL_SUBSETS = ("train", "dev", "test")


def get_data_home(data_home=None):
    """Return the folder where sktail looks for downloaded data sets.

    Parameters
    ----------
    data_home : str or path-like, default=None
        An explicit folder. ``None`` uses the ``SKTAIL_DATA`` environment
        variable if it is set and not empty, else ``~/sktail_data``. A leading
        ``~`` is expanded. The folder is not created here.

    Returns
    -------
    data_home : str
        The folder.

    Examples
    --------
    >>> from sktail.datasets import get_data_home
    >>> get_data_home("/tmp/my_data")
    '/tmp/my_data'
    """
    if data_home is None:
        data_home = os.environ.get("SKTAIL_DATA") or os.path.join("~", "sktail_data")
    return os.path.expanduser(os.fspath(data_home))


def _urlopen_bytes(url, timeout=60):
    """Default downloader: return the bytes at ``url``."""
    from urllib.request import urlopen

    with urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed https URLs
        return response.read()


def _csl_rows_to_tsv(raw, source):
    """Convert an upstream CSL benchmark file to ``text<TAB>label`` lines."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    out = []
    for lineno, line in enumerate(raw.decode("utf-8").split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise ValueError(f"{source}: line {lineno} has no tab; unexpected upstream format.")
        if len(fields) >= 3:
            fields = fields[1:]  # drop the text2text prompt column ("to category")
        text, label = "\t".join(fields[:-1]).strip(), fields[-1].strip()
        if not text or not label:
            raise ValueError(f"{source}: line {lineno} has an empty text or label.")
        out.append(f"{text}\t{label}\n")
    return "".join(out)


def _write_atomic(path, content):
    """Write ``content`` (str) to ``path`` atomically, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, content)


def _check_digest(data: bytes, expected, what, url, target):
    digest = hashlib.sha256(data).hexdigest()
    if expected is not None and digest != expected:
        raise OSError(
            f"The {what} of {url} has SHA256 {digest}, expected {expected}; the download may be "
            f"corrupted or the upstream file changed. Nothing was written to {target}."
        )
    return digest


def _download_csl(task, subset, target, downloader):
    """Download one CSL benchmark file, verify it and write it to ``target`` as TSV."""
    remote = _CSL_REMOTE[(task, subset)]
    url = remote["url"]
    raw = downloader(url)
    digest = _check_digest(raw, remote["sha256"], "file downloaded", url, target)
    converted = _csl_rows_to_tsv(raw, url)
    _check_digest(converted.encode("utf-8"), remote.get("tsv_sha256"), "converted TSV", url, target)
    if remote["sha256"] is None and remote.get("tsv_sha256") is None:
        warnings.warn(
            f"No pinned SHA256 checksum for {url}: the download was not verified "
            f"(its SHA256 is {digest}).",
            UserWarning,
            stacklevel=3,
        )
    _write_atomic(target, converted)


def fetch_csl(
    task="title",
    *,
    data_home=None,
    subset="train",
    download_if_missing=True,
    return_X_y=False,
    downloader=None,
):
    """Load a CSL classification task (Chinese Scientific Literature).

    Two tasks are available:

    ================  ==============================  =======  ===================
    task              input -> target                 classes  upstream download
    ================  ==============================  =======  ===================
    ``"title"``       paper title -> category          13      yes (``cls_ctg``)
    ``"abstract"``    paper abstract -> discipline     67      no (derived split)
    ================  ==============================  =======  ===================

    The data are read from ``<data_home>/csl-<task>/<subset>.tsv``
    (``text<TAB>label``, UTF-8, no header; see :func:`load_tsv`). If that file
    is missing and ``download_if_missing`` is True, the title task's file is
    downloaded from the public CSL repository (https://github.com/ydli-ai/CSL,
    ``benchmark/cls_ctg/``, at a pinned commit), checked against the SHA256
    checksums pinned in the registry, and converted to
    ``text<TAB>label`` and written atomically (temporary file, then
    ``os.replace``), so an interrupted or rejected download leaves no partial
    file behind. The abstract task is a pooled, deduplicated split derived
    from several CSL sources and has no upstream download: put its files in
    ``<data_home>/csl-abstract/`` yourself.

    **Licence.** CSL (Li et al., COLING 2022) may be used for non-commercial
    research only and must not be redistributed. sktail never bundles the data;
    downloads go only to your own ``data_home``.

    Parameters
    ----------
    task : {"title", "abstract"}, default="title"
        Which classification task to load.
    data_home : str or path-like, default=None
        Folder holding the ``csl-<task>/`` folders. ``None`` uses the
        ``SKTAIL_DATA`` environment variable, else ``~/sktail_data``
        (see :func:`get_data_home`).
    subset : {"train", "dev", "test"}, default="train"
        Which split to load. The title task's upstream repository has all
        three; a local copy may hold fewer.
    download_if_missing : bool, default=True
        If False, raise a :class:`FileNotFoundError` instead of downloading a
        missing file.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    downloader : callable, default=None
        Function ``url -> bytes`` used to download; ``None`` uses
        :func:`urllib.request.urlopen`. Mainly for testing and for mirrors.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes

        data : list of str
            The texts.
        target : list of str
            The label of each text.
        target_names : list of str
            The sorted distinct labels of this subset.
        DESCR : str
            A description of the task, its source and licence.

    (data, target) : tuple of list of str
        Only when ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        If the file is missing and either ``download_if_missing`` is False or
        the task (``"abstract"``) has no upstream download.
    OSError
        If a downloaded file does not match its pinned SHA256 checksum; nothing
        is written in that case.
    ValueError
        If ``task`` or ``subset`` is unknown, or a file is malformed (see
        :func:`load_tsv`).

    See Also
    --------
    load_tsv : The reader used for the cached files.

    Notes
    -----
    Checksums: each remote file's registry entry may pin ``sha256`` (the raw
    download) and ``tsv_sha256`` (the converted ``text<TAB>label`` file that is
    written). The title ``train`` and ``dev`` files are verified through their
    converted checksums; a mismatch raises ``OSError`` and writes nothing. The
    title ``test`` file has no pinned checksum yet: it is fetched from the
    pinned commit unverified, and a ``UserWarning`` reports its SHA256.

    Examples
    --------
    >>> from sktail.datasets import fetch_csl
    >>> bunch = fetch_csl("title", subset="dev")  # doctest: +SKIP
    >>> len(bunch.target_names)  # doctest: +SKIP
    13
    >>> X, y = fetch_csl("abstract", data_home="/data/csl", return_X_y=True)  # doctest: +SKIP
    """
    if task not in _CSL_TASKS:
        raise ValueError(f"task must be one of {_CSL_TASKS}, got {task!r}.")
    if subset not in _CSL_SUBSETS:
        raise ValueError(f"subset must be one of {_CSL_SUBSETS}, got {subset!r}.")
    home = get_data_home(data_home)
    path = Path(home) / f"csl-{task}" / f"{subset}.tsv"

    if not path.exists():
        if (task, subset) not in _CSL_REMOTE:
            raise FileNotFoundError(
                f"{path} not found. The CSL {task!r} task is a pooled split derived from "
                "several CSL sources and has no upstream download: place its "
                f"{subset}.tsv ('text<TAB>label', UTF-8) in {path.parent}, or set "
                "SKTAIL_DATA / data_home to the folder that holds csl-abstract/."
            )
        if not download_if_missing:
            raise FileNotFoundError(
                f"{path} not found and download_if_missing=False. Set "
                f"download_if_missing=True to download it from {_CSL_REPOSITORY}, or set "
                "SKTAIL_DATA / data_home to a folder that holds csl-title/."
            )
        _download_csl(task, subset, path, downloader or _urlopen_bytes)

    texts, labels = load_tsv(path)
    if return_X_y:
        return texts, labels
    return Bunch(
        data=texts,
        target=labels,
        target_names=sorted(set(labels)),
        DESCR=_CSL_DESCR[task],
    )
