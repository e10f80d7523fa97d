"""The one place semrouter opens files whose content or kind it did not choose.

Reading: every file semrouter reads (router files, imported files, labelled data, the small files
of an embedded folder) goes through :func:`open_regular` / :func:`read_regular_file`: opened
without blocking, refused unless it is a regular file (a FIFO blocks a reader for ever,
``/dev/zero`` never ends; a symbolic link to either is judged by its target), and capped in size.

Writing: a file semrouter writes is either made new with ``O_EXCL`` (:func:`write_atomic`, then
``os.replace``, which replaces a link rather than writing through it) or opened with
``O_NOFOLLOW`` (:data:`NOFOLLOW`): a symbolic link planted where semrouter writes is never
followed, so a folder from someone else cannot make semrouter overwrite the user's files.
:func:`refuse_links` checks a folder tree from someone else before anything is opened in it.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO

from ._exceptions import ConfigurationError

__all__ = [
    "MAX_FILE_BYTES",
    "NOFOLLOW",
    "open_regular",
    "read_regular_file",
    "read_text_file",
    "refuse_links",
    "write_atomic",
]

#: The default cap on a file read whole (router files, imported files).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: ``os.open`` flag: fail on a symbolic link instead of following it (0 where unsupported).
NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading, refused unless it is a regular file.

    Opened with ``O_NONBLOCK`` and checked with ``fstat`` after opening (no window between a
    check and the open): a FIFO, a device, a socket or a folder is refused before one byte is
    read.

    Raises:
        ConfigurationError: not a regular file.
        OSError: it cannot be opened.
    """
    file = os.fdopen(os.open(path, _READ_FLAGS), "rb")
    try:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise ConfigurationError(f"{path} is not a regular file")
    except BaseException:
        file.close()
        raise
    return file


def read_regular_file(path: Path, *, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Raises:
        ConfigurationError: not a regular file, or larger than ``limit`` bytes (also when it
            grows while being read).
        OSError: it cannot be opened or read.
    """
    with open_regular(path) as file:
        size = os.fstat(file.fileno()).st_size
        if size > limit:
            raise ConfigurationError(f"{path} is {size} bytes; the limit is {limit}")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ConfigurationError(f"{path} is over {limit} bytes")
    return data


def read_text_file(path: Path, *, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of ``path`` (see :func:`read_regular_file`); every failure, an unreadable
    file included, is a :class:`ConfigurationError` naming it."""
    try:
        return read_regular_file(path, limit=limit).decode("utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{path} is not UTF-8 text") from exc


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` at once, never writing through a symbolic link.

    The bytes go to a new file beside ``path`` (a random name made with ``O_EXCL``: nothing
    planted there is opened), fsynced when ``durable``, then ``os.replace``-d onto ``path``
    (a link at ``path`` is replaced, its target untouched). The file gets the usual permissions
    (``0o666`` less the umask). A failure removes the new file and leaves ``path`` as it was.

    Raises:
        OSError: the folder cannot be written.
    """
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def refuse_links(folder: Path, remedy: str) -> None:
    """Refuse a folder tree holding anything but plain folders and regular files.

    A symbolic link there would make semrouter (or Qdrant Edge) write wherever it points; a
    FIFO would block the reader that opens it. ``folder`` itself must not be a link either.
    Nothing is followed while looking.

    Raises:
        ConfigurationError: naming the first such entry, with ``remedy`` appended.
    """
    try:
        if not folder.is_symlink() and not folder.exists():
            return
        pending = [folder]
        while pending:
            current = pending.pop()
            info = current.lstat()
            if stat.S_ISLNK(info.st_mode):
                raise ConfigurationError(f"{current} is a symbolic link; {remedy}")
            if stat.S_ISDIR(info.st_mode):
                with os.scandir(current) as entries:
                    pending.extend(Path(entry.path) for entry in entries)
            elif not stat.S_ISREG(info.st_mode):
                raise ConfigurationError(f"{current} is not a regular file or folder; {remedy}")
    except OSError as exc:
        raise ConfigurationError(f"cannot inspect {folder}: {exc}") from exc
