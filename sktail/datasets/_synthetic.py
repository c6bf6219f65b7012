"""The synthetic long-tailed Chinese corpus: :func:`make_long_tail_text` and :func:`load_demo_corpus`."""

from __future__ import annotations

import itertools
import numbers

import numpy as np
from sklearn.utils import Bunch, check_random_state

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
