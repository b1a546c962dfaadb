"""What ``dgbench list`` prints: each entry with its description whole, wrapped to the
terminal."""

from __future__ import annotations

import textwrap

from dgbench.config import preset_names
from dgbench.config.sources import PRESETS


def preset_descriptions() -> dict[str, str]:
    """Each preset's leading comment, whole: its prose as one paragraph, and each line that
    holds a command (``#   dgbench run ...``, ``Equivalent to: dgbench ...``) on its own line."""
    out = {}
    for name in preset_names():
        lines: list[str] = []
        joined = False  # whether the last line is prose that the next one continues
        for line in (PRESETS / f"{name}.yaml").read_text().splitlines():
            if not line.startswith("#"):
                break
            body = line[1:].strip()
            command = line.startswith("#  ") or "dgbench " in body.replace("`dgbench ", "")
            if command:
                lines.append("  " + body if line.startswith("#  ") else body)
            elif joined:
                lines[-1] += " " + body
            elif body:
                lines.append(body)
            joined = bool(body) and not command
        out[name] = "\n".join(lines)
    return out


def list_lines(rows: dict[str, str], width: int) -> list[str]:
    """``dgbench list`` rows, each description whole: wrapped beside the names, or (when one
    has several lines, as the presets' do) under its name, indented."""
    if any("\n" in d for d in rows.values()):
        out = []
        for name, description in rows.items():
            out.append(f"  {name}")
            for line in description.splitlines():
                if line.startswith("  "):  # a command: never broken
                    out.append("      " + line.strip())
                else:
                    out += textwrap.wrap(line, max(width, 60), initial_indent="    ",
                                         subsequent_indent="    ", break_on_hyphens=False)
        return out
    column = max((len(n) for n in rows), default=0) + 4
    return [textwrap.fill(f"  {name:<{column - 4}}  {description}", max(width, column + 40),
                          subsequent_indent=" " * column, break_on_hyphens=False)
            for name, description in rows.items()]
