"""Atomic file writes: a reader sees the old file or the complete new one, never a half-written one.

Each write goes to a temporary file in the target's directory (so the final rename stays on one
file system), is fsynced, then ``os.replace``d over the target. A crash or Ctrl-C leaves at most a
``.<name>.*.tmp`` file behind, never a truncated result.

A write that the file system refuses (disk full, read-only, no such folder, a folder in the way)
is a :class:`~kandisc.errors.RunDirError` naming the file, the reason and what to do: bad output
paths are user errors, not bugs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kandisc.errors import RunDirError

# mkstemp creates files readable by the owner only; results should get the usual permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


_HINTS = {
    errno.ENOSPC: "the disk is full; free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is exhausted; free some space or write elsewhere",
    errno.EROFS: "the file system is read-only; choose another location",
    errno.EACCES: "no permission to write there; choose another location",
    errno.EPERM: "no permission to write there; choose another location",
    errno.ENOENT: "its folder does not exist; create it first or choose another path",
    errno.ENOTDIR: "a file stands where a folder of the path should be; choose another path",
    errno.EISDIR: "it is a folder; give a file name",
}


def write_error(path: Path | str, exc: OSError) -> RunDirError:
    """The one-line error for a file that could not be written."""
    reason = exc.strerror or type(exc).__name__
    hint = _HINTS.get(exc.errno or 0, "check the path and the disk")
    return RunDirError(f"cannot write {path} ({reason}): {hint}")


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened, hence best effort.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_target(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path to write to (e.g. with torch.save or savefig); it replaces ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    if path.is_dir():
        raise write_error(path, IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR)))
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise write_error(path, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path | str, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode(encoding))
