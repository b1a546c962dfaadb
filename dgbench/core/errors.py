"""User-facing errors: anything the user can fix by changing input.

The CLI turns a :class:`DGBenchError` (and filesystem trouble, an ``OSError``) into a one-line
message on stderr and exit status 2, before any training starts. Bugs in dgbench itself stay
ordinary exceptions: their traceback is shown under a line that says it is a bug.
"""

from __future__ import annotations

import difflib
import errno
from typing import Iterable


class DGBenchError(Exception):
    """An error in the user's input (names, config, data layout, settings)."""


class ConfigError(DGBenchError):
    """A config key, value or type is wrong."""


class UnknownNameError(DGBenchError, KeyError):
    """A registry lookup for a name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(DGBenchError):
    """Data is missing, malformed or in an unrecognised layout."""


class TrainingError(DGBenchError):
    """Training went wrong in a way the settings explain (a non-finite loss)."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGINT) during a run, saying what its checkpoint keeps."""


_OS_REASONS = {
    errno.ENOSPC: "the disk is full; free some space",
    errno.EDQUOT: "the disk quota is used up; free some space",
    errno.EACCES: "permission denied; pick a folder you can write to",
    errno.EPERM: "permission denied; pick a folder you can write to",
    errno.EROFS: "the file system is read-only; pick another folder",
    errno.ENOTDIR: "a part of that path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOENT: "it does not exist",
    errno.EEXIST: "something with that name exists already",
}


def explain_os_error(exc: OSError) -> str:
    """One line for filesystem trouble: which path, what went wrong, what to do."""
    where = f" {exc.filename}" if exc.filename else ""
    reason = _OS_REASONS.get(exc.errno or -1, exc.strerror or type(exc).__name__)
    return f"cannot use{where}: {reason}"


def one_line(message: str) -> str:
    """A message folded onto one line (YAML and SciPy errors come in several)."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def did_you_mean(name: object, known: Iterable[str], cutoff: float = 0.6) -> str:
    """`` Did you mean 'x'?`` for the known name closest to ``name`` ('' when none is close).
    Case is ignored when comparing, so a case slip (``EFDMix``, ``Photo``) finds its name."""
    by_lower: dict[str, str] = {}
    for k in known:
        by_lower.setdefault(str(k).lower(), str(k))
    text = str(name).lower()
    if text in by_lower:
        match = by_lower[text]
    else:
        close = difflib.get_close_matches(text, list(by_lower), n=1, cutoff=cutoff)
        if not close:
            return ""
        match = by_lower[close[0]]
    return f" Did you mean {match!r}?" if match != name else ""
