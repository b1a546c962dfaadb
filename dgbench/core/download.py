"""Fetching dataset archives: download with progress, checksums, safe extraction.

Everything is staged beside the destination and moved into place only once it is verified, so
a failed or interrupted download leaves nothing that looks like a dataset.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from dgbench.core.errors import DataError

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_digest(folder: Path, files: Iterable[Path]) -> str:
    """sha256 over ``"<path relative to folder> <sha256 of its bytes>\\n"`` in sorted order.

    Independent of how the files were packed (zip, tar, copied), unlike an archive checksum.
    """
    lines = sorted(f"{p.relative_to(folder).as_posix()} {sha256_file(p)}\n" for p in files)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def weights_facts(url: str | None, path: Path) -> dict[str, str | None]:
    """Where pretrained weights came from, for a run record: the URL, the file, its sha256."""
    return {"url": url, "file": str(path), "sha256": sha256_file(path)}


def pretrained_file(url: str, name: str, sha256: str | None = None,
                    sha256_prefix: str | None = None, progress: bool = True) -> Path:
    """The weights file ``name`` in torch's checkpoint folder (where torchvision and torchreid
    keep theirs), downloaded from ``url`` when missing; checked against ``sha256``, or the
    leading hex digits ``sha256_prefix``, when known. A failed or interrupted download leaves
    no file behind; a file that fails the check is named, not used."""
    import torch  # lazy: torch, for its checkpoint folder; core stays light to import

    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fetch(url, path, progress)
        except DataError as exc:
            raise DataError(f"{exc}; dgbench looked for {path} (put the file there, or pass a "
                            "local checkpoint with --weights PATH)") from None
    digest = sha256_file(path) if sha256 or sha256_prefix else ""
    if (sha256 and digest != sha256) or not digest.startswith(sha256_prefix or ""):
        want = sha256 or f"{sha256_prefix}..."
        raise DataError(f"{path} has sha256 {digest}, not the expected {want}; delete it to "
                        "download it again")
    return path


def fetch(url: str, target: Path, progress: bool = True) -> Path:
    """Download ``url`` to ``target`` (through ``target.part``); ``file://`` URLs work too."""
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = None
            if progress:
                bar = tqdm(total=total, unit="B", unit_scale=True, desc=target.name,
                           disable=None)  # none where stderr is no terminal (a log)
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                if bar is not None:
                    bar.update(len(block))
            if bar is not None:
                bar.close()
    except (OSError, ValueError) as exc:  # URLError is an OSError
        part.unlink(missing_ok=True)
        raise DataError(f"could not download {url}: {exc}") from None
    part.replace(target)
    return target


def extract_zip(archive: Path, into: Path) -> None:
    """Unpack ``archive`` into ``into``; refuses members that would land outside it and drops
    macOS resource-fork folders (``__MACOSX``)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.filename.startswith("__MACOSX/")]
            root = into.resolve()
            for m in members:
                dest = (into / m.filename).resolve()
                if dest != root and root not in dest.parents:
                    raise DataError(f"{archive}: member {m.filename!r} would be written outside "
                                    "the destination; refusing to extract")
            zf.extractall(into, members)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{archive} is not a readable zip archive ({exc})") from None


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
