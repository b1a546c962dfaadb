"""The ``dgbench`` command line: :func:`main` and its error format (the parsers are in
:mod:`dgbench.cli.parser`, the commands in :mod:`dgbench.cli.commands`).

User errors print one line, ``dgbench: error: ...``, and exit with status 2 before anything
trains or is written; a bug in dgbench says so above its traceback and exits 1.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from typing import Any, Sequence

from dgbench.cli.parser import build_parser, command_of
from dgbench.core.errors import DGBenchError, RunInterrupted, explain_os_error, one_line


def _warning(message: Any, category: Any, filename: str, lineno: int, line: Any = None) -> str:
    return f"dgbench: warning: {one_line(str(message))}\n"


def main(argv: Sequence[str] | None = None) -> int:
    warnings.formatwarning = _warning  # one line each, like the errors
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=command_of(argv) or "")  # no command: fill none (--help)
    ns, extra = parser.parse_known_args(argv)
    if ns.command in ("run", "sweep"):  # KEY=VALUE overrides anywhere on the command line
        ns.overrides += [x for x in extra if not x.startswith("-")]
        extra = [x for x in extra if x.startswith("-")]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return ns.func(ns)
    except (DGBenchError, OSError) as exc:  # the user can fix these: one line, exit 2
        if isinstance(exc, BrokenPipeError):  # output piped into `head` and the like
            sys.stderr.close()
            return 0
        text = str(exc) if isinstance(exc, DGBenchError) else explain_os_error(exc)
        print(f"dgbench: error: {one_line(text)}", file=sys.stderr)
        if ns.debug:
            traceback.print_exc()
        return 2
    except KeyboardInterrupt as exc:
        print("dgbench: interrupted; finished runs are kept" + (
            f", and the run {exc}" if isinstance(exc, RunInterrupted) else ", rerun to continue"),
            file=sys.stderr)
        return 130
    except Exception:  # a bug in dgbench: say so, and show where
        print("dgbench: internal error (a bug in dgbench; please report it with this "
              "traceback):", file=sys.stderr)
        traceback.print_exc()
        return 1
