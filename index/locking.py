"""Cross-process locks on an embedded data directory.

Embedded Chroma is one SQLite database and HNSW files that only one process may change at a time,
and its first-time set-up (creating the tables) is not safe to run from two processes at once. So:

* ``init.lock`` is held briefly while a process creates or opens the database and its collections;
* ``write.lock`` is held by whoever writes: for the whole life of ``citeqa index add``/``rm``/
  ``check --repair`` and ``citeqa serve``, and around each write made through the library. A second
  writer waits up to ``CITEQA_LOCK_TIMEOUT`` seconds and then fails with a message naming the holder.

Locks are ``flock`` locks, released by the kernel when their process dies (a SIGKILL leaves none
behind). Within one process a lock is re-entrant: the same file is locked once and counted.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from index.errors import StoreError

_POLL_S = 0.1


class DirLock:
    """One lock file, shared by every user in this process (see :func:`dir_lock`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._count = 0
        self._mutex = threading.RLock()

    def acquire(self, *, timeout: float, purpose: str) -> None:
        """Take the lock, waiting up to ``timeout`` seconds for another process to release it.

        Raises:
            StoreError: another process still holds it after ``timeout`` seconds; names that process.
        """
        with self._mutex:
            if self._count:
                self._count += 1
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = _read_holder(self.path)
                        os.close(fd)
                        raise StoreError(
                            f"the data directory {self.path.parent} is in use by another citeqa process "
                            f"({holder or 'unknown'}); waited {timeout:g} s (CITEQA_LOCK_TIMEOUT). Wait for it "
                            "to finish, add documents through its HTTP API, or use a Chroma server "
                            "(CITEQA_CHROMA_URL) for several writers"
                        ) from None
                    time.sleep(_POLL_S)
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()}: {purpose}".encode())
            self._fd = fd
            self._count = 1

    def try_acquire(self, *, purpose: str) -> bool:
        """Take the lock only if nobody else holds it; True when taken."""
        try:
            self.acquire(timeout=0, purpose=purpose)
        except StoreError:
            return False
        return True

    def release(self) -> None:
        with self._mutex:
            if not self._count:
                return
            self._count -= 1
            if self._count == 0 and self._fd is not None:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None

    @contextmanager
    def held(self, *, timeout: float, purpose: str) -> Iterator[None]:
        self.acquire(timeout=timeout, purpose=purpose)
        try:
            yield
        finally:
            self.release()


def _read_holder(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


_LOCKS: dict[Path, DirLock] = {}
_LOCKS_MUTEX = threading.Lock()


def dir_lock(data_dir: Path, name: str) -> DirLock:
    """The process-wide lock object for ``data_dir/name`` (one per file, so it is re-entrant)."""
    path = (Path(data_dir) / name).resolve()
    with _LOCKS_MUTEX:
        lock = _LOCKS.get(path)
        if lock is None:
            lock = _LOCKS[path] = DirLock(path)
        return lock


def command_line() -> str:
    """What this process is, for lock messages (``citeqa index add ...``)."""
    args = [Path(sys.argv[0]).name, *sys.argv[1:4]] if sys.argv and sys.argv[0] else ["python"]
    return " ".join(args)
