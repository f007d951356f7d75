"""Atomic writes: the target is replaced whole, or left exactly as it was."""

import pytest

from convlstm._files import atomic_write


def test_a_finished_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"old")
    with atomic_write(target) as file:
        file.write(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="killed"), atomic_write(target) as file:
        file.write(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
