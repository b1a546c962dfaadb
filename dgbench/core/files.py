"""Files: atomic writes with shareable permissions, and reading JSON and YAML with one clear
reason when a file cannot be read.

Every file dgbench writes for others to read (records, configs, checkpoints, claims, caches,
tables) goes through :func:`atomic_write`: a temporary file in the same folder, flushed to
disk, then renamed over the target, so a reader sees the whole old file or the whole new one
and a killed writer leaves only a ``.<name>.*.tmp`` file behind (never the target half-written).
"""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

import yaml

from dgbench.core.errors import ConfigError


def shareable(path: Path) -> None:
    """The usual permissions (0644 / 0755 under the user's umask), not a temporary file's
    private ones, so that a lab's shared results folder can be read by colleagues."""
    mask = os.umask(0)
    os.umask(mask)
    path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write`` on a temporary file beside ``path`` (opened for binary writing), then
    rename it over ``path``; on any failure nothing is left but what was there before. An
    ``OSError`` names ``path`` (a full disk, say)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where a folder should be
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(path.parent)) from None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        shareable(Path(tmp))
        os.replace(tmp, path)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    """``text`` (UTF-8) into ``path``, atomically."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> tuple[Any, str | None]:
    """(the parsed file, None), or (None, why it cannot be read)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, exc.strerror or type(exc).__name__
    if not data.strip():
        return None, "empty"
    try:
        return json.loads(data.decode("utf-8")), None
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON, truncated? ({exc.msg} at line {exc.lineno})"


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML would keep the
    last silently: ``train: {lr: 0.1}`` then ``train: {epochs: 3}`` loses the lr). Keys a
    merge (``<<: *base``) brings in may be overridden, as YAML means them to be."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key, line = self.construct_object(key_node), key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice (lines {seen[key]} and {line}); "
                    "YAML would keep only the last", key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """The YAML file at ``path`` parsed (an empty file: ``{}``); a ConfigError naming the file
    and, for ``what``, what it was meant to be when it is missing, a folder, not text or not
    YAML."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{what} {path} is a folder, not a YAML file")
    if not p.is_file():
        raise ConfigError(f"{what} {path} not found")
    try:
        text = io.StringIO(p.read_bytes().decode("utf-8"))
        text.name = str(path)  # PyYAML's marks name the file, not "<unicode string>"
        return yaml.load(text, _UniqueKeyLoader) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not a text file (not UTF-8)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not a valid YAML {what}: {exc}") from None
