"""The atomic writer: files as readable as an ordinary write would leave them, and nothing left by an interrupt."""

import os
import stat

import pytest

from electra_tf.utils import atomic


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize("mask,file_mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_files_get_the_mode_of_an_ordinary_write(tmp_path, umask, mask, file_mode):
    umask(mask)
    with open(tmp_path / "ordinary.txt", "w") as f:
        f.write("x")
    atomic.write_text_atomically(str(tmp_path / "atomic.txt"), "x")
    with atomic.staged_path(str(tmp_path / "staged.bin")) as staging, open(staging, "wb") as f:
        f.write(b"x")
    modes = {name: stat.S_IMODE(os.stat(tmp_path / name).st_mode) for name in ("ordinary.txt", "atomic.txt",
                                                                                "staged.bin")}
    assert modes == dict.fromkeys(modes, file_mode)


def test_an_atomic_directory_is_readable_as_usual_whatever_wrote_into_it(tmp_path, umask):
    target = tmp_path / "export"
    with atomic.atomic_directory(str(target)) as staging:
        os.makedirs(os.path.join(staging, "sub"), mode=0o700)
        fd = os.open(os.path.join(staging, "sub", "weights"), os.O_CREAT | os.O_WRONLY, 0o600)  # as safetensors does
        os.close(fd)
    assert [stat.S_IMODE(os.stat(p).st_mode) for p in (target, target / "sub", target / "sub" / "weights")] == \
        [0o755, 0o755, 0o644]


def _interrupted_after(function):
    """`function` that does its work and is then interrupted, as a stop signal acted on as it returns would."""
    def interrupted(*args, **kwargs):
        function(*args, **kwargs)
        raise KeyboardInterrupt
    return interrupted


@pytest.mark.parametrize("creates", ["open", "mkdir"])
def test_an_interrupt_just_after_the_staging_is_created_leaves_nothing_behind(tmp_path, monkeypatch, creates):
    # The moment run_finetuning's SIGTERM test can hit: the staging exists, its name not yet returned.
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "saved_model.pb").write_text("the previous export")
    monkeypatch.setattr(os, creates, _interrupted_after(getattr(os, creates)))
    with pytest.raises(KeyboardInterrupt):
        if creates == "open":
            atomic.write_text_atomically(str(tmp_path / "notes.txt"), "x")
        else:
            with atomic.atomic_directory(str(tmp_path / "export"), replace=True):
                pass
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    assert (tmp_path / "export" / "saved_model.pb").read_text() == "the previous export"


def test_an_interrupt_while_the_previous_directory_is_set_aside_puts_it_back(tmp_path, monkeypatch):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "saved_model.pb").write_text("the previous export")
    replace = os.replace

    def replace_then_stop_once_the_previous_is_aside(source, destination):
        replace(source, destination)
        if destination.endswith("previous"):
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", replace_then_stop_once_the_previous_is_aside)
    with pytest.raises(KeyboardInterrupt), atomic.atomic_directory(str(tmp_path / "export"), replace=True) as staging:
        (tmp_path / staging / "saved_model.pb").write_text("the new export")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    assert (tmp_path / "export" / "saved_model.pb").read_text() == "the previous export"
