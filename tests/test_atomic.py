"""The atomic writer leaves files as readable as an ordinary write would, whatever the umask."""

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
