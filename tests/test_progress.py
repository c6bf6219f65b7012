"""Progress bars and messages: silent by default, bars and epoch lines at verbose >= 1."""

import logging
import sys

from sktail import AutoTailClassifier
from sktail._progress import SILENCE_HINT, notice, progress_bar, write_line


def test_library_use_is_silent_by_default(long_tail_corpus, capsys):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(encoder="jieba-bag", epochs=2, validation_fraction=0.2, random_state=0).fit(texts, labels)
    clf.predict(texts)
    assert capsys.readouterr() == ("", "")


def test_verbose_shows_bars_and_epoch_lines_on_stderr(long_tail_corpus, capsys):
    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(encoder="jieba-bag", epochs=2, validation_fraction=0.2, random_state=0, verbose=1)
    clf.fit(texts, labels)
    out, err = capsys.readouterr()
    assert out == ""  # stdout is for data (docs/cli.md)
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2 and "val_accuracy=" in lines[0]
    assert "batches" in err
    clf.predict(texts)
    assert "predict" in capsys.readouterr().err


def test_epoch_summaries_go_to_the_sktail_logger(long_tail_corpus, caplog):
    texts, labels = long_tail_corpus
    with caplog.at_level(logging.INFO, logger="sktail"):
        AutoTailClassifier(encoder="jieba-bag", epochs=2, validation_fraction=None, random_state=0).fit(texts, labels)
    records = [r for r in caplog.records if r.name == "sktail"]
    assert [r.getMessage().split(":")[0] for r in records] == ["epoch 1", "epoch 2"]


def test_progress_bar_without_tqdm_returns_the_iterable(monkeypatch):
    items = [1, 2, 3]
    assert progress_bar(items, enabled=False, desc="x") is items
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    assert progress_bar(items, enabled=True, desc="x") is items


def test_bars_are_sparse_when_stderr_is_redirected(monkeypatch):
    from sktail._progress import bar_options

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert bar_options()["mininterval"] >= 30 and bar_options()["ascii"] is True
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert bar_options() == {"dynamic_ncols": True}


def test_write_line_goes_to_stderr_with_or_without_tqdm(monkeypatch, capsys):
    write_line("epoch 1: train_loss=1.0")
    assert capsys.readouterr() == ("", "epoch 1: train_loss=1.0\n")
    monkeypatch.delitem(sys.modules, "tqdm", raising=False)
    write_line("epoch 2: train_loss=0.5")
    assert capsys.readouterr() == ("", "epoch 2: train_loss=0.5\n")


def test_a_notice_says_how_to_hide_it_and_the_logger_level_hides_it(capsys, monkeypatch):
    logger = logging.getLogger("sktail")
    monkeypatch.setattr(logger, "level", logging.NOTSET)  # as in a fresh process (the CLI tests set it)
    assert notice("computing features of 5000 texts")
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("sktail: computing features of 5000 texts (")
    assert SILENCE_HINT in err and "setLevel('WARNING')" in err
    level = logger.level
    try:
        logger.setLevel(logging.WARNING)
        assert not notice("computing features of 5000 texts")
        assert capsys.readouterr() == ("", "")
    finally:
        logger.setLevel(level)


def test_the_demo_suggests_own_files_before_a_download(tmp_path):
    from sktail._demo import load_demo_data

    source = load_demo_data(tmp_path).source  # no CSL files there, nothing downloaded
    assert "--data DIR" in source and "--download" in source
    assert source.index("--data DIR") < source.index("--download")
    assert "needs a network" in source
