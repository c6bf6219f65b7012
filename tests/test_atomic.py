"""The atomic writer: destinations it refuses, links it writes through, file modes."""

import contextlib
import os
import stat

import pytest

from sktail._atomic import atomic_write, atomic_write_text, check_destination


@contextlib.contextmanager
def umask(value):
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _write(path):
    return atomic_write(path, lambda handle: handle.write(b"new"))


def test_a_fifo_is_refused_and_left_in_place(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        _write(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["pipe"]


def test_a_link_to_a_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link").symlink_to("pipe")
    with pytest.raises(ValueError, match="not a regular file"):
        atomic_write_text(tmp_path / "link", "x")
    assert (tmp_path / "link").is_symlink() and stat.S_ISFIFO(os.stat(tmp_path / "link").st_mode)


def test_a_directory_is_refused(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        _write(tmp_path / "folder")
    assert (tmp_path / "folder").is_dir() and os.listdir(tmp_path / "folder") == []


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _write(tmp_path / "no" / "such" / "file.bin")
    assert os.listdir(tmp_path) == []


def test_a_symlink_is_written_through(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "model.bin"
    target.write_bytes(b"old")
    target.chmod(0o640)
    link = tmp_path / "current.bin"
    link.symlink_to(os.path.relpath(target, tmp_path))
    assert check_destination(link) == target
    _write(link)
    assert link.is_symlink() and os.readlink(link) == os.path.join("real", "model.bin")
    assert target.read_bytes() == b"new" and _mode(target) == 0o640
    assert sorted(os.listdir(tmp_path / "real")) == ["model.bin"]  # the temporary file went into the target's folder


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link"
    link.symlink_to("created.bin")
    _write(link)
    assert link.is_symlink() and (tmp_path / "created.bin").read_bytes() == b"new"


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_follow_the_umask(tmp_path, mask, expected):
    with umask(mask):
        atomic_write_text(tmp_path / "a.txt", "text")
        _write(tmp_path / "b.bin")
    assert _mode(tmp_path / "a.txt") == expected
    assert _mode(tmp_path / "b.bin") == expected


def test_an_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "shared.txt"
    path.write_text("old")
    path.chmod(0o644)
    with umask(0o077):
        atomic_write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o644


def test_the_umask_is_not_changed(tmp_path):
    with umask(0o027):
        atomic_write_text(tmp_path / "a.txt", "text")
        assert os.umask(0o027) == 0o027


def test_ctrl_c_during_a_write_is_raised_after_the_file_is_complete(tmp_path):
    import os
    import signal

    from sktail._atomic import atomic_write

    target = tmp_path / "model.bin"
    target.write_bytes(b"old")

    def write(handle):
        handle.write(b"new-")
        os.kill(os.getpid(), signal.SIGINT)  # arrives mid-write
        handle.write(b"content")

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, write)
    assert target.read_bytes() == b"new-content"  # never a half-written file
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]  # no temporary left
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
