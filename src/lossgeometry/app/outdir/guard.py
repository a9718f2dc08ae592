"""An output directory that one run owns: created, checked, locked; errors that name it.

``analyze``, ``run`` and ``sweep`` write into one directory each. :func:`claim` wraps such a
run: it creates the directory (a path that is a file, or that cannot be created or written,
is an :class:`OutputDirError` naming it), locks it for the run's duration with
:mod:`filelock` (``.lossgeometry.lock``; a second run gets :class:`OutputDirBusy` at once,
naming the directory and the holder's pid, host, command and start time, written beside the
lock in ``.lossgeometry.lock.json``), and turns a failed write inside it (disk full,
permissions changed under the run) into an :class:`OutputDirError`. The lock is an OS lock
(``flock``): it is released when the process ends, however it ends, so it is never stale on
a local disk. On network file systems ``flock`` may not lock across machines.

:func:`read_cached_json` reads a file of an earlier run; a file that does not parse is a
:class:`CorruptCacheError` that names it and says that ``--fresh`` recomputes it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lossgeometry.results import atomic_write_json

__all__ = [
    "HOLDER_FILE",
    "LOCK_FILE",
    "CorruptCacheError",
    "OutputDirBusy",
    "OutputDirError",
    "claim",
    "corrupt",
    "prepare_output_dir",
    "read_cached_json",
]

LOCK_FILE = ".lossgeometry.lock"
"""The lock of an output directory (an empty file; the OS lock is on it)."""
HOLDER_FILE = ".lossgeometry.lock.json"
"""Who holds the lock: ``{"pid", "host", "command", "started"}`` (removed on release)."""

_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM} | (
    {errno.EDQUOT} if hasattr(errno, "EDQUOT") else set()
)


class OutputDirError(ValueError):
    """The output directory cannot be used: a file, not creatable, not writable, disk full."""


class OutputDirBusy(RuntimeError):
    """Another run holds the output directory's lock."""


class CorruptCacheError(ValueError):
    """A file an earlier run left in the output directory does not read back."""


def corrupt(path: Path | str, err: BaseException) -> CorruptCacheError:
    """The error for an unreadable cache file: names it and the fix."""
    why = f"{type(err).__name__}: {err}".splitlines()[0][:200]
    return CorruptCacheError(
        f"{path} is corrupt ({why}); rerun with --fresh (resume=False) to recompute it, "
        "or delete the file"
    )


def read_cached_json(path: Path) -> Any:
    """The JSON of a file an earlier run wrote, or None if there is no such file.

    Raises:
        CorruptCacheError: the file exists but does not read or parse; the message names
            the file and says that ``--fresh`` recomputes it.
    """
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise corrupt(path, e) from None


def prepare_output_dir(out: str | os.PathLike) -> Path:
    """Create the output directory ``out`` (and its parents); check it is a directory.

    Raises:
        OutputDirError: ``out`` (or a parent) is a file, or it cannot be created.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"output path {out} is a file, not a directory: give another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputDirError(f"cannot create the output directory {out}: {_why(e)}") from None
    return out


def _why(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _holder(out: Path) -> str:
    try:
        h = json.loads((out / HOLDER_FILE).read_text(encoding="utf-8"))
        return (
            f"{h.get('command', '?')}, pid {h.get('pid', '?')} on {h.get('host', '?')}, "
            f"started {h.get('started', '?')}"
        )
    except (OSError, ValueError, AttributeError):
        return "holder unknown"


def _inside(filename: Any, out: Path) -> bool:
    try:
        return Path(os.fsdecode(filename)).resolve().is_relative_to(out.resolve())
    except (TypeError, ValueError, OSError):
        return False


@contextlib.contextmanager
def claim(out: str | os.PathLike, command: str) -> Iterator[Path]:
    """Own the output directory ``out`` for the duration of the ``with`` block.

    Creates it (:func:`prepare_output_dir`), takes its lock without waiting, writes the
    holder beside the lock, and translates a failed write inside ``out`` into one clear
    :class:`OutputDirError`. Yields ``out`` as a Path.

    Raises:
        OutputDirError: ``out`` is a file, cannot be created or written, or the disk is full.
        OutputDirBusy: another run holds ``out``; the message names it and the holder.
    """
    from filelock import FileLock, Timeout

    out = prepare_output_dir(out)
    lock = FileLock(out / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise OutputDirBusy(
            f"output directory {out} is in use by another lossgeometry run ({_holder(out)}); "
            "wait for it to finish, or write to another directory"
        ) from None
    except OSError as e:
        raise OutputDirError(f"cannot write to the output directory {out}: {_why(e)}") from None
    try:
        started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": command}
        try:
            atomic_write_json(out / HOLDER_FILE, {**holder, "started": started})
            yield out
        except OSError as e:
            inside = e.filename is not None and _inside(e.filename, out)
            if not (inside or (e.filename is None and e.errno in _DISK_ERRNOS)):
                raise  # not about the output directory (e.g. a missing data file)
            where = f" ({os.fsdecode(e.filename)})" if e.filename is not None else ""
            raise OutputDirError(
                f"cannot write to the output directory {out}{where}: {_why(e)}"
            ) from None
        finally:
            with contextlib.suppress(OSError):
                (out / HOLDER_FILE).unlink()
    finally:
        lock.release()
