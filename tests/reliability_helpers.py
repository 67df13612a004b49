"""Helpers of the reliability tests: a full disk on demand, and a read-only folder."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest


def fill_disk(monkeypatch: pytest.MonkeyPatch, room: int = 0) -> None:
    """Make every ``os.write`` fail with ENOSPC once ``room`` more bytes have been written.

    This is what a full disk looks like to a program: the first writes
    succeed, one is cut short, and the next raises ``OSError(ENOSPC)``.
    """
    real = os.write
    left = [room]

    def write(fd: int, data) -> int:
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real(fd, bytes(memoryview(data)[:left[0]]))
        left[0] -= n
        return n

    monkeypatch.setattr(os, "write", write)


def read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write into; skips where permissions do not apply (root)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    probe = folder / "probe"
    try:
        probe.write_text("")
    except PermissionError:
        return folder
    probe.unlink()
    folder.chmod(0o755)
    pytest.skip("running as root (or on a file system without permissions): chmod does not stop "
                "writes here; the 'folder under a file' tests cover unwritable outputs instead")


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
