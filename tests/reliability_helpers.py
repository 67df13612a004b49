"""Helpers of the reliability tests: a full disk on demand, a read-only folder, forked writers."""

from __future__ import annotations

import errno
import os
import select
import signal
import time
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


def forked(work):
    """Run ``work(ack)`` in a forked process; returns its pid and the read end of its acknowledgements.

    ``ack(text)`` sends one line to the parent; an exception ends the child
    with status 1 after a line ``error <type>: <message>``.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read)
        status = 0
        try:
            work(lambda text: os.write(write, (text + "\n").encode()))
        except BaseException as err:  # noqa: BLE001 - reported to the parent through the pipe
            os.write(write, f"error {type(err).__name__}: {err}".replace("\n", " ").encode() + b"\n")
            status = 1
        os._exit(status)
    os.close(write)
    return pid, read


def collect(pid: int, read: int, timeout: float = 120.0) -> tuple[int, list[str]]:
    """Wait for a forked process and return its exit status and acknowledgement lines.

    A process still running after ``timeout`` seconds is killed and the test fails, rather than hang.
    """
    chunks, deadline = [], time.monotonic() + timeout
    while True:
        ready, _, _ = select.select([read], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"a forked process ran for more than {timeout} s")
        chunk = os.read(read, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    return status, b"".join(chunks).decode().splitlines()
