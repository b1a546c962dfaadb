"""User-facing errors: anything the user can fix by changing input.

The CLI turns a :class:`DGBenchError` into a one-line message on stderr and exit status 2,
before any training starts. Bugs in dgbench itself stay ordinary exceptions with tracebacks.
"""

from __future__ import annotations


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
