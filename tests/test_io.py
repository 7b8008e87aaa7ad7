"""Atomic writes: a failed write never leaves a half-written file or folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import tree

from erasure_lib.io import atomic_directory, atomic_write_bytes, atomic_write_text


def _make_target(folder: Path) -> None:
    folder.mkdir()
    (folder / "old.txt").write_text("old")
    (folder / "sub").mkdir()
    (folder / "sub" / "kept.bin").write_bytes(b"\x00\x01")


def test_new_target_appears_whole(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "out"
    with atomic_directory(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        (tmp / "a.txt").write_text("a")
        assert not target.exists()  # nothing visible until the block ends
    assert tree(target) == {"a.txt": b"a"}
    assert sorted(p.name for p in target.parent.iterdir()) == ["out"]


def test_existing_target_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _make_target(target)
    with atomic_directory(target) as tmp:
        (tmp / "new.txt").write_text("new")
        assert tree(target)["old.txt"] == b"old"  # the old folder is intact during the write
    assert tree(target) == {"new.txt": b"new"}  # replaced, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp or .old folder left


def test_exception_keeps_old_target_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _make_target(target)
    before = tree(target)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_directory(target) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert tree(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_exception_with_no_old_target_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(tmp_path / "out") as tmp:
            (tmp / "x").write_text("x")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_overwrite_false_raises_before_writing(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _make_target(target)
    before = tree(target)
    entered = False
    with pytest.raises(FileExistsError, match="out"):
        with atomic_directory(target, overwrite=False):
            entered = True
    assert not entered
    assert tree(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_overwrite_false_on_new_target_writes(tmp_path: Path) -> None:
    with atomic_directory(tmp_path / "out", overwrite=False) as tmp:
        (tmp / "a").write_text("a")
    assert tree(tmp_path / "out") == {"a": b"a"}


def test_stale_old_folder_is_cleaned(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _make_target(target)
    stale = tmp_path / ".out.old"
    stale.mkdir()
    (stale / "junk").write_text("junk")
    with atomic_directory(target) as tmp:
        (tmp / "b").write_text("b")
    assert tree(target) == {"b": b"b"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_write_bytes_and_text(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "file.txt"
    atomic_write_bytes(path, b"one")
    assert path.read_bytes() == b"one"
    atomic_write_text(path, "twö")
    assert path.read_bytes() == "twö".encode()
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.txt"]


def test_atomic_write_failure_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "file.txt"
    path.write_text("old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]
