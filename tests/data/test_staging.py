"""A generated set is written beside its destination and renamed into place: the hidden staging folder, and
the swap that replaces an older set (a folder or a link)."""

import os

from henetlib.data.staging import REID_FOLDERS, staging_folder, swap_in


def test_staging_folder_is_hidden_per_process_and_fresh(tmp_path):
    tmp = staging_folder(tmp_path, "tiny")
    assert tmp == tmp_path / f".tiny.tmp-{os.getpid()}"
    assert sorted(p.name for p in tmp.iterdir()) == sorted(REID_FOLDERS)
    (tmp / "query" / "left-over.jpg").write_bytes(b"x")
    again = staging_folder(tmp_path, "tiny", folders=("images",))  # an interrupted run's folder is cleared
    assert again == tmp and [p.name for p in again.iterdir()] == ["images"]


def test_swap_in_replaces_an_older_set(tmp_path):
    dest = tmp_path / "tiny"
    (dest / "query").mkdir(parents=True)
    (dest / "query" / "old.jpg").write_bytes(b"old")
    tmp = staging_folder(tmp_path, "tiny")
    (tmp / "query" / "new.jpg").write_bytes(b"new")
    swap_in(tmp, dest)
    assert not tmp.exists() and [p.name for p in (dest / "query").iterdir()] == ["new.jpg"]


def test_swap_in_replaces_a_link_not_its_target(tmp_path):
    target = tmp_path / "elsewhere"
    (target / "query").mkdir(parents=True)
    (target / "query" / "keep.jpg").write_bytes(b"keep")
    dest = tmp_path / "tiny"
    dest.symlink_to(target)
    tmp = staging_folder(tmp_path, "tiny")
    swap_in(tmp, dest)
    assert not dest.is_symlink() and dest.is_dir() and (target / "query" / "keep.jpg").exists()
