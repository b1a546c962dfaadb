"""What happens when things go wrong after planning: damaged and half-built caches, unreadable
images, full disks, forced reruns, damaged records; and what a shared results folder looks
like to a colleague."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgbench.cli import main

TINY = ["data.image_size=16", "model.width=8", "model.stem=small", "model.pretrained=false",
        "--batch-size", "4", "--targets", "photo", "--epochs", "1", "--no-progress"]


@pytest.fixture
def pacs(tmp_path) -> Path:
    """A miniature PACS of noise images (images+splits)."""
    from test_pacs import make_tree

    make_tree(tmp_path / "data" / "PACS", "images+splits")
    rng = np.random.default_rng(0)
    for f in sorted((tmp_path / "data" / "PACS" / "images").rglob("*.*")):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(f)
    return tmp_path / "data"


def run_pacs(root: Path, out: Path, *extra: str) -> int:
    return main(["run", "--dataset", "pacs", "--data-root", str(root), "--out", str(out),
                 *TINY, *extra])


def cache_bytes(cache_root: Path) -> dict[str, bytes]:
    (folder,) = [p for p in (cache_root / "images").iterdir() if p.is_dir()]
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_damaged_cache_is_said_in_one_line_and_rebuilt_the_same(pacs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DGBENCH_CACHE", str(tmp_path / "cache"))
    assert run_pacs(pacs, tmp_path / "a") == 0
    good = cache_bytes(tmp_path / "cache")
    (folder,) = [p for p in (tmp_path / "cache" / "images").iterdir() if p.is_dir()]
    data = bytearray((folder / "small.u8").read_bytes())
    data[100] ^= 0x55  # one flipped byte: same size, wrong pixels
    (folder / "small.u8").write_bytes(bytes(data))
    capsys.readouterr()
    with pytest.warns(UserWarning, match="is damaged \\(small.u8 does not match its checksum\\); rebuilding"):
        assert run_pacs(pacs, tmp_path / "b") == 0
    assert cache_bytes(tmp_path / "cache") == good
    (a,), (b,) = (list((tmp_path / x).rglob("record.json")) for x in "ab")
    assert json.loads(a.read_text())["final"] == json.loads(b.read_text())["final"]


BUILDER = """
import sys, time
from dgbench.data import imagecache
from dgbench.datasets.pacs import PACS
real = imagecache._decode
def slow(data, size):
    time.sleep(0.02)
    return real(data, size)
imagecache._decode = slow
ds = PACS(sys.argv[1], 16)
print("building", flush=True)
imagecache.open_for(ds, "pacs", 16, progress=False)
"""


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0, 2.0])
def test_a_killed_cache_build_leaves_nothing_and_the_next_start_builds_the_same(pacs, tmp_path, delay,
                                                                             monkeypatch):
    """SIGKILL at several points of a build (before, during the decoding, near its end): the
    next start removes the leftovers and builds a cache bit-identical to an uninterrupted one."""
    from dgbench.data import imagecache
    from dgbench.datasets.pacs import PACS

    env = {**os.environ, "DGBENCH_CACHE": str(tmp_path / "killed")}
    child = subprocess.Popen([sys.executable, "-c", BUILDER, str(pacs)], env=env,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "building"  # the build takes ~2.3 s from here
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()
    images = tmp_path / "killed" / "images"
    if delay:  # killed mid-build: a half-written temporary folder is left behind
        assert [p for p in images.iterdir() if p.name.startswith(".pacs-16px-") and p.is_dir()]
    for cache in ("killed", "clean"):  # the next start after the kill; an uninterrupted build
        monkeypatch.setenv("DGBENCH_CACHE", str(tmp_path / cache))
        imagecache.open_for(PACS(str(pacs), 16), "pacs", 16, progress=False)
    assert cache_bytes(tmp_path / "killed") == cache_bytes(tmp_path / "clean")
    assert [p.name for p in images.iterdir() if p.name.startswith(".") and p.is_dir()] == []


def test_unreadable_images_are_left_out_when_asked_and_listed(pacs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DGBENCH_CACHE", str(tmp_path / "cache"))
    (pacs / "PACS/images/cartoon/dog/img_1.jpg").write_bytes(b"not an image")
    assert run_pacs(pacs, tmp_path / "a") == 2
    assert "cartoon/dog/img_1.jpg" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    assert run_pacs(pacs, tmp_path / "b", "data.bad_images=skip") == 0
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "b").rglob("record.json")]
    assert list(record["dataset"]["skipped_images"]) == ["cartoon/dog/img_1.jpg"]
    assert record["sizes"]["train"] == 3 * 21 - 1  # three sources of 21, one left out
    # the per-image path, without the cache: found by a full scan when skipping
    assert run_pacs(pacs, tmp_path / "c", "data.bad_images=skip", "--no-cache") == 0
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "c").rglob("record.json")]
    assert list(record["dataset"]["skipped_images"]) == ["cartoon/dog/img_1.jpg"]


def test_a_truncated_image_on_the_per_image_path_stops_the_run_naming_it(pacs, tmp_path, capsys):
    path = pacs / "PACS/images/art_painting/horse/img_2.jpg"
    path.write_bytes(path.read_bytes()[:-40])  # the header still reads; the pixels do not
    assert run_pacs(pacs, tmp_path / "out", "--no-cache") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "art_painting/horse/img_2.jpg cannot be read" in err
    (failed,) = list((tmp_path / "out").rglob("error.json"))  # marked failed, no record
    assert not list((tmp_path / "out").rglob("record.json"))


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_partial_record(tmp_path, monkeypatch, capsys):
    real = os.replace

    def replace(src: str, dst: str) -> None:  # the disk fills while the record is written
        if str(dst).endswith("record.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "res"
    assert main(["run", "--dataset", "toy", "--targets", "red", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "record.json: the disk is full" in err
    assert not list(out.rglob("record.json")) and not list(out.rglob("*.tmp"))


def test_force_keeps_the_old_record_until_the_new_one_is_complete(tmp_path, capsys):
    out = tmp_path / "res"
    args = ["run", "--dataset", "toy", "--targets", "red", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    (record,) = list(out.rglob("record.json"))
    old = record.read_text()
    history = (record.parent / "history.jsonl").read_text()
    import dgbench.run.loop as T

    real = T.train_epoch

    def crash(*a, **k):
        raise KeyboardInterrupt  # killed in the middle of the new run

    T.train_epoch = crash
    try:
        assert main([*args, "--force"]) == 130
    finally:
        T.train_epoch = real
    assert record.read_text() == old and (record.parent / "done").exists()
    assert (record.parent / "history.jsonl").read_text() == history
    assert main(["table", str(out / "toy-lodo")]) == 0  # still the old, complete result
    assert main([*args, "--force"]) == 0
    assert record.read_text() != old and not list(out.rglob("history.jsonl.new"))


def test_tables_skip_damaged_and_foreign_records_with_a_warning_each(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["run", "--dataset", "toy", "--targets", "red,green", "--out", str(out),
                 "--no-progress"]) == 0
    records = sorted(out.rglob("record.json"))
    extra = records[0].parent.parent / "zzz"
    for name, content in (("empty", b""), ("cut", b'{"schema": 2, "run'), ("bytes", b"\xff\xfe\x00"),
                          ("foreign", json.dumps({"schema": 9, "hello": 1}).encode())):
        (extra / name).mkdir(parents=True)
        shutil.copy(records[0].parent / "config.json", extra / name)
        (extra / name / "record.json").write_bytes(content)
        (extra / name / "done").touch()
    capsys.readouterr()
    with pytest.warns(UserWarning) as caught:
        assert main(["table", str(out / "toy-lodo")]) == 0
    said = [str(w.message) for w in caught]
    assert sum("skipped" in s for s in said) == 5 and "4 file(s)" in said[-1]
    assert any("empty" in s for s in said) and any("not UTF-8" in s for s in said)
    assert any("another schema" in s for s in said) and any("truncated" in s for s in said)
    table = capsys.readouterr().out
    assert "| red" in table and "| green" in table


def test_a_held_out_domain_without_finished_runs_is_an_empty_column(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["run", "--dataset", "toy", "--targets", "red,green", "--out", str(out),
                 "--no-progress"]) == 0
    for cfg in out.rglob("config.json"):  # every green run unfinished
        if json.loads(cfg.read_text())["label"].endswith("green"):
            (cfg.parent / "done").unlink()
    capsys.readouterr()
    assert main(["table", str(out / "toy-lodo")]) == 0
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if line.startswith("| augmenter"))
    assert "green" in header and "| X " in table.split(header)[1].splitlines()[2]
    assert "no finished runs yet for green" in table and "missing runs (1): none, seed 1, green" in table


def test_latex_output_escapes_what_latex_would_break_on(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["run", "--dataset", "toy", "--targets", "red", "--out", str(out), "--no-progress",
                 "--experiment", "a_b"]) == 0
    capsys.readouterr()
    assert main(["table", str(out / "a_b"), "--format", "latex"]) == 0
    tex = capsys.readouterr().out
    caption = next(line for line in tex.splitlines() if line.startswith("\\caption"))
    assert "(\\%)" in caption and "$\\pm$" in caption and "%" not in caption.replace("\\%", "")


def test_records_are_readable_by_colleagues(tmp_path):
    out = tmp_path / "res"
    old = os.umask(0o022)
    try:
        assert main(["run", "--dataset", "toy", "--targets", "red", "--out", str(out),
                     "--no-progress"]) == 0
    finally:
        os.umask(old)
    for name in ("record.json", "config.json"):
        (path,) = list(out.rglob(name))
        assert path.stat().st_mode & 0o777 == 0o644
