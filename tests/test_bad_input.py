"""Bad input, as careless or unlucky users give it: every case exits with status 2, one line
``dgbench: error: ...`` that names the bad value, no traceback, and writes nothing.

Table-driven: a case is (group, argv, expected text, optional setup). Placeholders in argv:
``{out}`` a results root that must not exist afterwards, ``{tmp}`` the case's own folder,
``{pacs}`` a miniature PACS, ``{sr}`` the generated ReID data, ``{done}`` a results folder with
a finished run (it must be unchanged afterwards). All are refused before any training.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from PIL import Image

from dgbench.cli import main

TOY = ["run", "--dataset", "toy", "--out", "{out}", "--no-progress"]
PACS = ["run", "--dataset", "pacs", "--data-root", "{tmp}/pacs", "--out", "{out}", "--no-progress",
        "data.image_size=16", "model.width=8", "model.stem=small", "model.pretrained=false",
        "--batch-size", "4", "--targets", "photo"]
REID = ["run", "--preset", "reid-synth-cpu", "--data-root", "{sr}", "--out", "{out}", "--no-progress"]


@dataclass
class Case:
    group: str
    argv: list[str]
    expect: str
    setup: Callable[[Path, Path], Any] | None = None
    hidden: tuple[str, ...] = ()  # modules made unimportable: an optional extra not installed


def write(name: str, text: str | bytes) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, ws: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return setup


def yaml(text: str, expect: str) -> Case:
    return Case("yaml", [*TOY, "--config", "{tmp}/exp.yaml"], expect, write("exp.yaml", text))


SWEEP = ["sweep", "{tmp}/s.yaml", "--out", "{out}"]


def sweep(text: str, expect: str, *flags: str, hidden: tuple[str, ...] = ()) -> Case:
    return Case("sweeps", [*SWEEP, *flags], expect, write("s.yaml", text), hidden)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = _closed_port()


def pacs_copy(change: Callable[[Path], None] | None = None) -> Callable[[Path, Path], None]:
    """The workspace's miniature PACS copied into the case's folder, then damaged."""
    def setup(tmp: Path, ws: Path) -> None:
        shutil.copytree(ws / "pacs", tmp / "pacs")
        if change:
            change(tmp / "pacs" / "PACS")
    return setup


def split_file(domain: str, part: str, edit: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        path = root / "splits" / f"{domain}_{part}_kfold.txt"
        path.write_text("".join(line + "\n" for line in edit(path.read_text().splitlines())))
    return change


def image(rel: str, data: bytes) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        (root / "images" / rel).write_bytes(data)
    return change


def market_copy(change: Callable[[Path], None]) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, ws: Path) -> None:
        shutil.copytree(ws / "sr", tmp / "sr")
        change(tmp / "sr")
    return setup


def cache_damage(change: Callable[[Path], None]) -> Callable[[Path, Path], None]:
    """Build the miniature PACS's cache in the case's own cache folder, then damage it."""
    def setup(tmp: Path, ws: Path) -> None:
        from dgbench.data import imagecache
        from dgbench.datasets.pacs import PACS as Pacs

        shutil.copytree(ws / "pacs", tmp / "pacs")
        cache = imagecache.open_for(Pacs(str(tmp / "pacs"), 16), "pacs", 16, progress=False)
        change(cache.path)
    return setup


def flip_byte(name: str) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        data = bytearray((path / name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (path / name).write_bytes(bytes(data))
    return change


def edit_manifest(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        manifest = json.loads((path / "manifest.json").read_text())
        edit(manifest)
        (path / "manifest.json").write_text(json.dumps(manifest))
    return change


def done_copy(change: Callable[[Path], None]) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, ws: Path) -> None:
        shutil.copytree(ws / "done", tmp / "copy")
        change(tmp / "copy")
    return setup


def every_record(edit: Callable[[Path], None]) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        for path in root.rglob("record.json"):
            edit(path)
    return change


VERIFY = ["data", "verify", "pacs", "--data-root", "{tmp}/pacs", "--image-size", "16"]
CASES = [
    # -- flags --------------------------------------------------------------------------------
    Case("flags", [*TOY, "--aug", "efdmx"], "unknown augmenter 'efdmx'. Did you mean 'efdmix'?"),
    Case("flags", [*TOY, "--aug", ""], "aug.names must list at least one value"),
    Case("flags", [*TOY, "--protocol", "lodoo"], "unknown protocol 'lodoo'"),
    Case("flags", [*TOY, "--dataset", "nope"], "unknown dataset 'nope'"),
    Case("flags", [*TOY, "--source", "toy2"], "--dataset and --source both set data.name"),
    Case("flags", [*TOY, "--target", "grid"], "protocol.target / protocol.splits are for"),
    Case("flags", [*TOY, "--splits", "a"], "protocol.splits[0] must be an integer"),
    Case("flags", [*REID, "--splits", "-1"], "protocol.splits must be >= 0; got -1"),
    Case("flags", [*TOY, "--targets", "purple"], "purple not in this protocol's splits"),
    Case("flags", [*TOY, "--seeds", "a"], "seeds[0] must be an integer"),
    Case("flags", [*TOY, "--seeds", "-1"], "seeds must be >= 0; got -1"),
    Case("flags", [*TOY, "--seeds", "1.5"], "seeds[0] must be an integer"),
    Case("flags", [*TOY, "--seeds", "99999999999"], "seeds must be <= 4294967295"),
    Case("flags", [*TOY, "--seeds", ""], "seeds must list at least one value"),
    Case("flags", [*TOY, "--backbone", "resnet19"], "unknown backbone 'resnet19'"),
    Case("flags", [*TOY, "--backbone", "timm:notamodel"], "unknown timm model 'notamodel'"),
    Case("flags", [*TOY, "--insert", "layer9"], "insertion point 'layer9' matches no module"),
    Case("flags", [*TOY, "--insert", "before:"], "insertion point 'before:'"),
    Case("flags", [*TOY, "--insert", "sideways:layer1"], "insertion point 'sideways:layer1'"),
    Case("flags", [*TOY, "--insert", "layer1,layer1"], "insertion points repeat: after:layer1"),
    Case("flags", [*TOY, "--weights", "/nonexistent/w.pth"], "weights file /nonexistent/w.pth not found"),
    Case("flags", [*TOY, "--weights", "{tmp}/w.pth"], "is not a PyTorch checkpoint",
         write("w.pth", "just some text\n")),
    Case("flags", [*TOY, "--weights", "{tmp}"], "is a folder, not a checkpoint file"),
    Case("flags", [*TOY, "--epochs", "0"], "train.epochs must be >= 1; got 0"),
    Case("flags", [*TOY, "--epochs", "-3"], "train.epochs must be >= 1; got -3"),
    Case("flags", [*TOY, "--epochs", "ten"], "train.epochs must be an integer"),
    Case("flags", [*TOY, "--lr", "0"], "train.lr must be > 0.0; got 0.0"),
    Case("flags", [*TOY, "--lr", "-1"], "train.lr must be > 0.0"),
    Case("flags", [*TOY, "--lr", "abc"], "train.lr must be a number"),
    Case("flags", [*TOY, "--batch-size", "0"], "data.batch_size must be >= 1"),
    Case("flags", [*TOY, "--batch-size", "100000"],
         "data.batch_size 100000 is larger than the 54 training images of split red"),
    Case("flags", [*TOY, "--device", "tpu"], "device must be auto, cpu, cuda or cuda:N"),
    Case("flags", [*TOY, "--device", "cuda"], "device 'cuda' asked for, but CUDA is not available"),
    Case("flags", [*TOY, "--experiment", ".."], "experiment must be a folder name"),
    Case("flags", [*TOY, "--experiment", "a/b"], "experiment must be a folder name"),
    Case("flags", [*TOY, "--experiment", ""], "experiment must be a folder name"),
    Case("flags", [*TOY, "--aug-args", "alpha"], "--aug-args expects key=value pairs, got 'alpha'"),
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "alpha=-1"], "alpha must be > 0; got -1.0"),
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "p=2"], "p must be in [0, 1]; got 2.0"),
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "mix=foo"], "mix must be one of random"),
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "beta=1"],
         "no augmenter in efdmix takes the argument 'beta'"),
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "efdmix.beta=1"],
         "augmenter efdmix has no argument 'beta'"),
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "alpha=abc"], "aug.args.alpha must be a number"),
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "mixstyle.alpha=0.3"],
         "aug.args has a section for mixstyle, which is not among aug.names"),
    Case("flags", [*TOY, "--aug", "hm", "--aug-args", "bins=-2"], "bins must be >= 0"),
    Case("flags", [*TOY, "--aug", "hm", "--aug-args", "bins=2.5"], "aug.args.bins must be an integer"),
    Case("flags", [*TOY, "--preset", "nope"], "unknown preset 'nope'"),
    Case("flags", [*TOY, "--preset", "digits-compare", "--config", "{tmp}/x.yaml"],
         "give --preset or --config, not both"),
    Case("flags", [*TOY, "--config", "{tmp}/missing.yaml"], "missing.yaml not found"),
    Case("flags", [*TOY, "--aug", "mixstyle", "--aug-args", "mix=crossdomain", "train.sampler=random"],
         "set train.sampler=domain"),
    Case("flags", ["run", "--dataset", "toy2", "--out", "{out}", "--aug", "efdmix", "--aug-args",
                   "mix=crossdomain"], "needs at least two source domains"),
    Case("flags", [*TOY, "--pretrained"], "pretrained resnet18 weights exist only for model.width=64"),
    Case("flags", [*TOY, "--frobnicate"], "unrecognized arguments: --frobnicate"),
    Case("flags", [*TOY, "stray"], "unexpected argument 'stray'"),
    # -- YAML files ---------------------------------------------------------------------------
    yaml("train:\n  lr: 5e-5\n", "write 5.0e-5"),
    yaml("train:\n  epoch: 3\n", "Did you mean 'train.epochs'"),
    yaml("trian:\n  lr: 0.1\n", "unknown config key 'trian'"),
    yaml("- 1\n- 2\n", "the config file must be a mapping"),
    yaml("train: [1,\n", "is not a valid YAML config file"),
    yaml("train:\n  epochs: 2.5\n", "train.epochs must be an integer, got float 2.5"),
    yaml("aug:\n  names: efdmix\n", "aug.names must be a list of strings"),
    yaml("seeds: 1\n", "seeds must be a list of integers"),
    yaml("aug:\n  args: 3\n", "aug.args must be a mapping"),
    yaml("train: [1, 2]\n", "train must be a mapping of its keys"),
    yaml("train:\n", "train must be a mapping of its keys"),
    yaml("train:\n  lr: .nan\n", "train.lr must be a finite number"),
    yaml("train:\n  lr: .inf\n", "train.lr must be a finite number"),
    yaml("aug:\n  names: [efdmix]\n  args: {alpha: '0.3'}\n", "aug.args.alpha must be a number"),
    yaml("train:\n  schedule: linear\n", "train.schedule must be one of cosine, step, constant"),
    yaml("model:\n  last_stride: 3\n", "model.last_stride must be one of 1, 2"),
    yaml("model:\n  pretrained: 1\n", "model.pretrained must be true/false"),
    yaml("data:\n  name: [toy]\n", "data.name must be a string"),
    yaml("protocol:\n  targets: red\n", "protocol.targets must be a list of strings, got text 'red'"),
    yaml("train:\n  momentum: 1.5\n", "train.momentum must be < 1.0"),
    Case("yaml", [*TOY, "--config", "{tmp}/bin.yaml"], "is not a text file",
         write("bin.yaml", b"\x00\xff\xfe\x80 garbage")),
    Case("yaml", [*TOY, "--config", "{tmp}"], "is a folder, not a YAML file"),
    # -- KEY=VALUE overrides -----------------------------------------------------------------
    Case("overrides", [*TOY, "train.lrr=0.1"], "Did you mean 'train.lr'"),
    Case("overrides", [*TOY, "=5"], "override '=5' names no key"),
    Case("overrides", [*TOY, "train.epochs="], "train.epochs must be an integer"),
    Case("overrides", [*TOY, "data.image_size=4"], "data.image_size must be >= 8; got 4"),
    Case("overrides", [*TOY, "data.num_workers=-1"], "data.num_workers must be >= 0"),
    Case("overrides", [*TOY, "model.width=0"], "model.width must be >= 1"),
    Case("overrides", [*TOY, "seeds="], "seeds must list at least one value"),
    Case("overrides", [*TOY, "protocol.targets=purple"], "purple not in this protocol's splits"),
    Case("overrides", [*TOY, "aug.args.foo.bar=1"], "aug.args has a section for 'foo', which is no augmenter"),
    Case("overrides", [*TOY, "train.step_epochs=0"], "train.step_epochs must be >= 1"),
    Case("overrides", [*TOY, "train.label_smoothing=1"], "train.label_smoothing must be < 1.0"),
    Case("overrides", [*TOY, "train.momentum=-0.1"], "train.momentum must be >= 0.0"),
    Case("overrides", [*TOY, "data.subsample=0"], "data.subsample must be >= 1"),
    Case("overrides", [*TOY, "train.amp_dtype=fp8"], "train.amp_dtype must be one of bfloat16, float16"),
    Case("overrides", [*TOY, "device=cuda:x"], "device must be auto, cpu, cuda or cuda:N"),
    Case("overrides", [*TOY, "experiment=.."], "experiment must be a folder name"),
    Case("overrides", [*TOY, "protocol.loo_validation=maybe"], "protocol.loo_validation must be true/false"),
    Case("overrides", [*TOY, "train.domain_epoch=weird"], "train.domain_epoch must be one of fixed, dassl"),
    Case("overrides", [*TOY, "data.bad_images=ignore"], "data.bad_images must be one of error, skip"),
    Case("overrides", [*TOY, "train.weight_decay=-1"], "train.weight_decay must be >= 0.0"),
    Case("overrides", [*TOY, "model.feature_dim=0"], "model.feature_dim must be >= 1"),
    Case("overrides", [*TOY, "train.step_gamma=0"], "train.step_gamma must be > 0.0"),
    Case("overrides", [*TOY, "train.backbone_lr_mult=-1"], "train.backbone_lr_mult must be >= 0.0"),
    Case("overrides", [*TOY, "data.subsample=1"], "data.batch_size 8 is larger than the 3 training images"),
    Case("overrides", [*TOY, "train.domain_epoch=dassl", "train.sampler=domain", "--batch-size", "40"],
         "train.domain_epoch=dassl draws half a batch (20) from a domain"),
    Case("overrides", [*TOY, "protocol.loo_validation=true", "--protocol", "single"],
         "protocol.loo_validation applies to --protocol lodo only"),
    # -- numbers that are not numbers --------------------------------------------------------
    Case("numeric", [*TOY, "--lr", "nan"], "train.lr must be a finite number; got nan"),
    Case("numeric", [*TOY, "--lr", "inf"], "train.lr must be a finite number; got inf"),
    Case("numeric", [*TOY, "train.momentum=nan"], "train.momentum must be a finite number"),
    Case("numeric", [*TOY, "train.step_gamma=inf"], "train.step_gamma must be a finite number"),
    Case("numeric", [*TOY, "--aug", "efdmix", "--aug-args", "alpha=inf"],
         "aug.args.alpha must be a finite number; got inf"),
    Case("numeric", [*TOY, "--aug", "efdmix", "--aug-args", "p=nan"], "aug.args.p must be a finite number"),
    Case("numeric", [*TOY, "--aug", "efdmix", "--aug-args", "alpha=1e-400"], "alpha must be > 0; got 0.0"),
    Case("numeric", [*TOY, "data.image_size=1e3"], "data.image_size must be an integer"),
    Case("numeric", [*TOY, "train.label_smoothing=-inf"], "train.label_smoothing must be a finite number"),
    # -- datasets ---------------------------------------------------------------------------
    Case("datasets", ["run", "--dataset", "pacs", "--out", "{out}"], "no data root given for pacs"),
    Case("datasets", [*PACS[:3], "--data-root", "{tmp}/nowhere", "--out", "{out}"], "PACS not found"),
    Case("datasets", PACS, "art_painting_test_kfold.txt is missing",
         pacs_copy(lambda r: (r / "splits" / "art_painting_test_kfold.txt").unlink())),
    Case("datasets", PACS, "does not exist",
         pacs_copy(split_file("photo", "train", lambda ls: ls + ["photo/dog/nothere.jpg 1"]))),
    Case("datasets", PACS, "label 9 is outside 1..7",
         pacs_copy(split_file("photo", "train", lambda ls: [ls[0].rsplit(" ", 1)[0] + " 9"] + ls[1:]))),
    Case("datasets", PACS, "is listed twice",
         pacs_copy(split_file("cartoon", "train", lambda ls: ls + ls[:1]))),
    Case("datasets", PACS, "the train part of domain cartoon has no images",
         pacs_copy(split_file("cartoon", "train", lambda ls: []))),
    Case("datasets", PACS, "image file(s) cannot be read, e.g.",
         pacs_copy(image("cartoon/dog/img_1.jpg", b"not an image at all"))),
    Case("datasets", PACS, "image file(s) cannot be read, e.g.",
         pacs_copy(image("art_painting/horse/img_2.jpg", b""))),
    Case("datasets", PACS, "image file(s) cannot be read, e.g.",
         pacs_copy(lambda r: (r / "images" / "sketch/dog/img_0.png").write_bytes(
             (r / "images" / "sketch/dog/img_0.png").read_bytes()[:60]))),
    Case("datasets", [*PACS, "--no-cache"], "cannot be read",
         pacs_copy(image("cartoon/dog/img_1.jpg", b"GIF89a? no"))),
    Case("datasets", [*PACS, "--no-cache"], "cannot be read",
         pacs_copy(image("photo/house/img_0.jpg", b""))),
    Case("datasets", [*REID[:3], "--data-root", "{tmp}/nowhere", *REID[5:]], "Market-1501 not found"),
    Case("datasets", [*REID[:3], "--data-root", "{tmp}/sr", *REID[5:]], "cannot read the identity and camera",
         market_copy(lambda r: (r / "Market-1501-v15.09.15/query/badname.jpg").write_bytes(b"x"))),
    Case("datasets", [*REID[:3], "--data-root", "{tmp}/sr", *REID[5:]], "features_and_partitions.mat",
         market_copy(lambda r: (r / "underground_reid/features_and_partitions.mat").unlink())),
    Case("datasets", [*REID[:3], "--data-root", "{tmp}/sr", *REID[5:]], "is not a readable MATLAB file",
         market_copy(lambda r: (r / "underground_reid/features_and_partitions.mat").write_bytes(b"zz"))),
    Case("datasets", [*REID, "--splits", "3,12"], "not in 0..9"),
    Case("datasets", [*REID, "--target", "market1501"], "protocol.target must differ from data.name"),
    Case("datasets", ["run", "--dataset", "grid", "--data-root", "{sr}", "--out", "{out}"],
         "grid is a re-identification dataset"),
    Case("datasets", [*TOY[:1], "--dataset", "digits", "--out", "{out}", "data.image_size=200"],
         "digits renders at 16..128 px"),
    Case("datasets", ["data", "nope"], "unknown dataset 'nope'"),
    Case("datasets", ["data", "pacs", "--data-root", "{tmp}/nowhere"], "PACS not found"),
    Case("datasets", ["download", "digits"], "nothing to download for Digits"),
    # -- the image cache: damage is found, named, and the cache rebuilt at the next run --------
    Case("cache", VERIFY, "its manifest.json is missing",
         cache_damage(lambda p: (p / "manifest.json").unlink())),
    Case("cache", VERIFY, "its manifest cannot be read",
         cache_damage(lambda p: (p / "manifest.json").write_text('{"format": 3, "si'))),
    Case("cache", VERIFY, "format 1, not 3", cache_damage(edit_manifest(lambda m: m.update(format=1)))),
    Case("cache", VERIFY, "small.u8 is missing", cache_damage(lambda p: (p / "small.u8").unlink())),
    Case("cache", VERIFY, "small.u8 is missing or has",
         cache_damage(lambda p: (p / "small.u8").write_bytes((p / "small.u8").read_bytes()[:100]))),
    Case("cache", VERIFY, "big.u8 is missing or has 0 bytes",
         cache_damage(lambda p: (p / "big.u8").write_bytes(b""))),
    Case("cache", VERIFY, "small.u8 does not match its checksum", cache_damage(flip_byte("small.u8"))),
    Case("cache", VERIFY, "it covers other files",
         cache_damage(edit_manifest(lambda m: m["files"].reverse()))),
    Case("cache", VERIFY, "changed since the cache was built",
         cache_damage(edit_manifest(lambda m: m["sha256"].__setitem__(0, "0" * 64)))),
    # -- records and tables ----------------------------------------------------------------------
    Case("records", ["table", "{tmp}/nowhere"], "is not a results folder: it does not exist"),
    Case("records", ["table", "{tmp}"], "no run records under"),
    Case("records", ["table", "{tmp}/copy"], "no run records under",
         done_copy(every_record(lambda p: p.write_text('{"schema": 2, "run_id"')))),
    Case("records", ["table", "{tmp}/x.md"], "is not a results folder: it is a file",
         write("x.md", "text")),
    Case("records", ["table", "{done}", "--select", "loo"],
         "--select loo needs the leave-one-domain-out validation runs"),
    Case("records", ["table", "{done}", "--compare-paper", "--format", "csv"],
         "--compare-paper renders markdown or latex"),
    Case("records", ["table", "{done}", "--format", "xml"], "invalid choice: 'xml'"),
    Case("records", ["table", "{done}", "--select", "best"], "invalid choice: 'best'"),
    Case("records", ["table", "{done}", "--output", "{tmp}/file/t.md"], "a part of that path is a file",
         write("file", "x")),
    Case("records", ["table", "{tmp}/copy"], "the records mix protocols",
         done_copy(lambda r: _mix_protocols(r))),
    # -- the filesystem -------------------------------------------------------------------------
    Case("filesystem", [*TOY[:3], "--out", "{tmp}/afile"], "results folder {tmp}/afile/toy-lodo lies under",
         write("afile", "x")),
    Case("filesystem", [*TOY[:3], "--out", "{tmp}/res", "--experiment", "exp"],
         "results folder {tmp}/res/exp is a file", write("res/exp", "x")),
    Case("filesystem", [*TOY[:3], "--out", "/proc/dgbench-results"], "results folder /proc/dgbench-results"),
    Case("filesystem", ["synth-reid", "{tmp}/f"], "cannot use", write("f", "x")),
    Case("filesystem", ["download", "pacs", "--dest", "{tmp}/f", "--url", "file:///nowhere.zip"],
         "cannot use", write("f", "x")),
    Case("filesystem", ["inspect", "--aug", "adain", "--plot", "{tmp}/no/such/dir/x.png"], "cannot use"),
    # -- sweeps and launchers ----------------------------------------------------------------
    sweep("axes: {train.nope: [1]}", "unknown config key 'train.nope'"),
    sweep("axes: {nope: [1]}", "unknown config key 'nope'"),
    sweep("axes: {seeds: []}", "axis 'seeds' must list at least one value"),
    sweep("axes: {seeds: 3}", "axis 'seeds' must list at least one value"),
    sweep("axes: [seeds]", "axes must be a mapping"),
    sweep("base: 3", "base must be a mapping"),
    sweep("search: [random]", "search must be a mapping"),
    sweep("[1, 2]", "must be a mapping of preset, config"),
    sweep("nope: 1", "unknown sweep key 'nope'"),
    sweep("axes: {seeds: [0", "is not a valid YAML sweep file"),
    sweep("axes: {train.lr: [fast]}", "train.lr must be a number, got text 'fast'"),
    sweep("axes: {train.epochs: [1, 0]}", "train.epochs"),
    sweep("axes: {aug.insert: [[layer9]]}", "insertion point 'layer9' matches no module"),
    sweep("axes: {aug.names: [[efdmix], [nope]]}", "unknown augmenter 'nope'"),
    sweep("experiment: ../x", "experiment must be a folder name"),
    sweep("preset: nope", "unknown preset 'nope'"),
    sweep("axes: {preset: [efdm-pacs-lodo-r18, nope]}", "unknown preset 'nope'"),
    sweep("preset: efdm-pacs-lodo-r18\naxes: {preset: [efdm-pacs-lodo-r50]}",
          "a preset axis replaces the top-level preset"),
    sweep("axes: {seeds: [0]}", "train.lr must be a number", "train.lr=fast"),
    sweep("axes: {seeds: [0]}", "unknown config key 'train.nope'", "train.nope=1"),
    sweep("axes: {seeds: [0]}", "unexpected argument 'oops'", "oops"),
    sweep("config: no-such-file.yaml", "config file no-such-file.yaml not found"),
    *[sweep("base: {aug.names: [efdmix]}\nsearch: {distributions: {efdmix: {alpha: %s}}}" % d, e)
      for d, e in [("[normal, 0, 1]", "a distribution is [uniform"),
                   ("[uniform, a, 1]", "needs two finite numbers lo < hi"),
                   ("[uniform, 1, 0.5]", "needs two finite numbers lo < hi"),
                   ("[uniform, .nan, 1]", "needs two finite numbers lo < hi"),
                   ("[log_uniform, 0, 1]", "log_uniform needs lo > 0"),
                   ("[uniform, 0.1]", "uniform takes 2 parameter(s)"),
                   ("[choice, []]", "choice takes a non-empty list"),
                   ("[choice, 0.3]", "choice takes a non-empty list"),
                   ("0.3", "a distribution is [uniform"),
                   ("[uniform, -1, 1]", "alpha must be > 0")]],
    sweep("base: {aug.names: [efdmix]}\nsearch: {distributions: {efdmix: {alpah: [uniform, 0.1, 1]}}}",
          "efdmix has no argument 'alpah'"),
    sweep("base: {aug.names: [efdmix]}\nsearch: {distributions: {efdmx: {alpha: [uniform, 0.1, 1]}}}",
          "unknown augmenter 'efdmx'"),
    sweep("base: {aug.names: [efdmix]}\nsearch: {distributions: {efdmix: [1]}}",
          "search.distributions.efdmix must map"),
    sweep("base: {aug.names: [efdmix]}\nsearch: {distributions: [1]}", "search.distributions must map"),
    sweep("base: {aug.names: [efdmix]}\nsearch: {kind: bayes}", "search.kind must be random or grid"),
    sweep("base: {aug.names: [efdmix]}\nsearch: {samples: 0}", "search.samples must be an integer >= 1"),
    sweep("base: {aug.names: [efdmix]}\nsearch: {samples: true}", "search.samples must be an integer"),
    sweep("base: {aug.names: [efdmix]}\nsearch: {samples: 2.5}", "search.samples must be an integer"),
    sweep("base: {aug.names: [efdmix]}\nsearch: {seed: -1}", "search.seed must be an integer >= 0"),
    sweep("base: {aug.names: [efdmix]}\nsearch: {only: alpha}", "search.only must list"),
    sweep("base: {aug.names: [efdmix]}\nsearch: {only: [nope]}", "search.only names nope"),
    sweep("base: {aug.names: [efdmix]}\nsearch: {nope: 1}", "unknown search key 'nope'"),
    Case("sweeps", ["sweep", "{tmp}/none.yaml", "--out", "{out}"], "sweep file {tmp}/none.yaml not found"),
    sweep("axes: {seeds: [0]}", "--launcher ray needs ray: pip install 'dgbench[ray]'",
          "--launcher", "ray", hidden=("ray",)),
    sweep("axes: {seeds: [0]}", "--launcher slurm needs submitit: pip install 'dgbench[slurm]'",
          "--launcher", "slurm", hidden=("submitit",)),
    sweep("axes: {seeds: [0]}", "--log tensorboard needs", "--log", "tensorboard",
          hidden=("tensorboard", "torch.utils.tensorboard")),
    sweep("axes: {seeds: [0]}", f"cannot reach a Ray cluster at 127.0.0.1:{PORT}",
          "--launcher", "ray", "--ray-address", f"127.0.0.1:{PORT}"),
    sweep("axes: {seeds: [0]}", "--ray-address must be host:port", "--launcher", "ray",
          "--ray-address", "nowhere"),
    sweep("axes: {seeds: [0]}", "--ray-address is for --launcher ray", "--ray-address", "auto"),
    sweep("axes: {seeds: [0]}", "--jobs and --threads must be at least 1", "--jobs", "0"),
    sweep("axes: {seeds: [0]}", "--jobs is for --launcher local", "--jobs", "2", "--launcher", "ray"),
    sweep("axes: {seeds: [0]}", "invalid choice: 'pbs'", "--launcher", "pbs"),
    sweep("axes: {seeds: [0]}", "--slurm-time and", "--launcher", "slurm", "--slurm-time", "0"),
    sweep("axes: {seeds: [0]}", "--slurm-gpus at least 0", "--launcher", "slurm", "--slurm-gpus", "-1"),
    Case("flags", [*TOY, "--launcher", "ray"], "--launcher ray needs ray", hidden=("ray",)),
    Case("flags", [*TOY, "--jobs", "-1"], "--jobs and --threads must be at least 1"),
    Case("flags", ["status", "{tmp}/nothing"], "{tmp}/nothing"),
    # -- the other commands ------------------------------------------------------------------
    Case("flags", ["inspect", "--aug", "nope"], "unknown augmenter 'nope'"),
    Case("flags", ["inspect", "--block", "nope"], "--block 'nope' is not a submodule"),
    Case("flags", ["inspect", "--domains", "plain"], "--domains takes two different domains"),
    Case("flags", ["inspect", "--content", "{tmp}/c.png"], "give both --content and --style"),
    Case("flags", ["inspect", "--content", "{tmp}/c.png", "--style", "{tmp}/s.png"], "cannot read image"),
    Case("flags", ["inspect", "--image-size", "abc"], "data.image_size must be an integer"),
    Case("flags", ["inspect", "--seed", "x"], "invalid int value: 'x'"),
    Case("flags", ["inspect", "--aug", "hm:bins"], "arguments look like hm:bins=8"),
    Case("flags", ["list", "nope"], "invalid choice: 'nope'"),
    Case("flags", ["list", "presets", "--markdown"], "--markdown is for 'dgbench list augmenters'"),
    Case("flags", ["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
    # -- issue 22: case slips and typos named with the right spelling --------------------------
    Case("flags", [*TOY, "--aug", "EFDMix"], "Did you mean 'efdmix'? (names are lowercase)"),
    Case("flags", [*TOY, "--protocol", "LODO"], "Did you mean 'lodo'?"),
    Case("flags", [*TOY, "--backbone", "ResNet18"], "Did you mean 'resnet18'?"),
    Case("flags", [*TOY, "--targets", "Red"], "not in this protocol's splits (red, green, blue, "
         "grey). Did you mean 'red'?"),
    Case("flags", [*TOY, "--device", "CPU"], "got 'CPU'. Did you mean 'cpu'?"),
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "alph=0.3"],
         "takes the argument 'alph'. Did you mean 'alpha'?"),
    Case("flags", [*TOY, "--aug", "mixstyle", "--aug-args", "mixstyle.Alpha=0.3"],
         "augmenter mixstyle has no argument 'Alpha'. Did you mean 'alpha'?"),
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "EFDMix.alpha=0.1"],
         "aug.args has a section for 'EFDMix', which is no augmenter of aug.names (efdmix). "
         "Did you mean 'efdmix'?"),
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "efdmix=0.3"],
         "efdmix is an augmenter, not an argument"),
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "=1"], "'=1' does not name an argument"),
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "efdmix.=1"], "does not name an argument"),
    Case("flags", ["inspect", "--domains", "Plain,photo"], "Did you mean 'plain'?"),
    # -- issue 22: what the user typed, not an internal type ----------------------------------
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "stable=maybe"],
         "aug.args.stable must be true/false, got 'maybe'"),
    Case("flags", [*TOY, "--aug", "hm", "--aug-args", "bins=abc"], "must be an integer, got 'abc'"),
    Case("flags", ["inspect", "--aug", "hm:bins=abc"], "aug.args.bins must be an integer, got 'abc'"),
    # -- issue 22: a value listed twice, empty values -------------------------------------------
    Case("flags", [*TOY, "--seeds", "1,1"], "seeds lists 1 twice"),
    Case("flags", [*TOY, "--seeds", "1,2,1"], "seeds lists 1 twice"),
    Case("flags", [*TOY, "--targets", "red,red"], "protocol.targets lists 'red' twice"),
    Case("flags", [*TOY, "--aug", "none,efdmix,none"], "aug.names lists 'none' twice"),
    Case("flags", [*REID, "--splits", "1,1"], "protocol.splits lists 1 twice"),
    Case("flags", [*TOY, "--targets", ""], "protocol.targets must list at least one value"),
    Case("flags", [*TOY, "--insert", ""], "aug.insert must list at least one value"),
    Case("flags", [*TOY, "--weights", ""], "model.weights is empty"),
    Case("flags", [*TOY, "--data-root", " "], "data.root is empty"),
    Case("flags", [*TOY, "--config", ""], "--config is empty"),
    Case("flags", [*TOY, "--preset", ""], "--preset is empty"),
    Case("flags", ["run", "--dataset", "toy", "--out", ""], "argument --out: is empty"),
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "mix=crossdomain", "--batch-size", "1"],
         "data.batch_size must be >= 2; got 1"),
    Case("flags", ["inspect", "--channels", "0"], "--channels must be at least 1"),
    Case("overrides", [*TOY, "seeds=2,2"], "seeds lists 2 twice"),
    Case("overrides", [*TOY, "train.schedule=Cosine"], "got 'Cosine'. Did you mean 'cosine'?"),
    Case("overrides", [*TOY, "Train.epochs=1"], "Did you mean 'train.epochs'?"),
    Case("overrides", [*TOY, "data=toy"], "data is a section, not a key"),
    Case("overrides", [*TOY, "aug.args.=1"], "aug.args. does not name an augmenter argument"),
    # -- issue 22: every YAML problem names the file --------------------------------------------
    yaml("- 1\n", "{tmp}/exp.yaml: the config file must be a mapping (key: value lines), got a list"),
    yaml("trian:\n  lr: 0.1\n", "{tmp}/exp.yaml: unknown config key 'trian'"),
    yaml("Train:\n  lr: 0.1\n", "{tmp}/exp.yaml: unknown config key 'Train'. Did you mean 'train'?"),
    yaml("train:\n  lr:\n", "{tmp}/exp.yaml: train.lr must be a number, got null"),
    yaml("train:\n  lr: {a: 1}\n", "{tmp}/exp.yaml: train.lr must be a number, got a mapping"),
    yaml("seeds: [1, 1]\n", "{tmp}/exp.yaml: seeds lists 1 twice"),
    yaml("aug:\n  names: [efdmix, efdmix]\n", "{tmp}/exp.yaml: aug.names lists 'efdmix' twice"),
    sweep("axes: {seeds: [1, 1]}", "{tmp}/s.yaml: axis 'seeds' lists 1 twice"),
    sweep("axes: {seeds: [[1, 1]]}", "{tmp}/s.yaml: seeds lists 1 twice"),
    sweep("base: {train: {lr: 5e-5}}", "{tmp}/s.yaml: train.lr must be a number, got text '5e-5'"),
    sweep("axes: {Seeds: [1]}", "{tmp}/s.yaml: unknown config key 'Seeds'. Did you mean 'seeds'?"),
    sweep("config: missing.yaml", "{tmp}/s.yaml: config file missing.yaml not found"),
    # -- issue 22: results commands take a root or an experiment folder, alike ---------------
    Case("records", ["status", "{tmp}/nowhere"], "{tmp}/nowhere is not a results folder: it does "
         "not exist; pass a results root (e.g. results) or one experiment's folder"),
    Case("records", ["status", "{tmp}"], "no run records under {tmp}"),
    Case("records", ["compare", "{tmp}/nowhere"], "is not a results folder: it does not exist"),
    Case("records", ["plot", "{tmp}/nowhere", "-o", "{tmp}/p.png"], "is not a results folder"),
    Case("records", ["report", "{tmp}/nowhere", "-o", "{tmp}/r.html"], "is not a results folder"),
    Case("records", ["report", "{tmp}", "-o", "{tmp}/r.html"], "no run records under {tmp}"),
    Case("records", ["report", "{done}", "--baseline", "Efdmix", "-o", "{tmp}/r.html"],
         "no variant 'Efdmix' in these results"),
    Case("records", ["report", "{done}", "--by", "nope", "-o", "{tmp}/r.html"],
         "--by nope is neither a results column nor a config key"),
    Case("filesystem", ["synth-reid", "{tmp}/o", "--scale", "0"], "--scale must be an integer >= 1"),
    Case("filesystem", ["synth-reid", "{tmp}/o", "--seed", "-1"], "--seed must be an integer >= 0"),
    Case("filesystem", ["synth-reid", ""], "argument dest: is empty"),
    Case("filesystem", ["download", "pacs", "--dest", ""], "argument --dest: is empty"),
    Case("filesystem", ["download", "pacs", "--dest", "{tmp}/d", "--url", "file:///nowhere.zip"],
         "could not download file:///nowhere.zip"),  # and {tmp}/d is not left behind
    # -- found by the larger corpus (issue 22) --------------------------------------------------
    yaml("train:\n  lr: 0.1\nseeds: [1]\ntrain:\n  epochs: 2\n",
         "the key 'train' is given twice (lines 1 and 4); YAML would keep only the last"),
    yaml("train: {lr: 0.1, lr: 0.2}\n", "the key 'lr' is given twice"),
    sweep("", "{tmp}/s.yaml is empty"),
    sweep("config: ''", "{tmp}/s.yaml: config must name a file"),
    Case("flags", [*TOY, "--wait"], "--wait, --slurm-local and --slurm-partition are for --launcher"),
    Case("flags", [*TOY, "--slurm-local"], "are for --launcher slurm"),
    Case("flags", [*TOY, "--threads", "100000"], "--threads 100000 is far more than the"),
    Case("flags", [*TOY, "model.width=5000"], "model.width must be <= 1024"),
    Case("flags", [*TOY, "--aug", "efdmix", "--aug-args", "alpha=0.1,alpha=0.2"],
         "--aug-args gives alpha twice"),
    Case("flags", ["inspect", "--aug", "hm:bins=8:bins=9"], "gives bins twice"),
    Case("flags", ["inspect", "--domains", ""], "--domains takes two different domains"),
    Case("flags", ["inspect", "--plot", "{tmp}/x.txt"], "must end in .png, .pdf or .svg"),
    Case("flags", ["list", "fidelity", "--markdown"], "--markdown is for 'dgbench list augmenters'"),
]


def _mix_protocols(root: Path) -> None:
    first = next(root.rglob("record.json"))
    other = first.parent.parent / "other"
    shutil.copytree(first.parent, other)
    record = json.loads((other / "record.json").read_text())
    record["config"]["protocol"]["name"], record["run_id"] = "single", "other"
    (other / "record.json").write_text(json.dumps(record))


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """The shared workspace: a miniature PACS (noise images), the generated ReID data, and a
    results folder with one finished toy run."""
    from test_pacs import make_tree

    from dgbench.data.synthreid import generate

    root = tmp_path_factory.mktemp("bad-input")
    make_tree(root / "pacs" / "PACS", "images+splits")
    rng = np.random.default_rng(0)
    for f in sorted((root / "pacs" / "PACS" / "images").rglob("*.*")):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(f)
    generate(root / "sr")
    assert main(["run", "--dataset", "toy", "--targets", "red", "--out", str(root / "res"),
                 "--no-progress"]) == 0
    shutil.move(root / "res" / "toy-lodo", root / "done")
    return root


def _files(folder: Path) -> set[str]:
    """What a case's folder holds, its dataset cache left out (building one is no result)."""
    return {str(p) for p in folder.rglob("*") if (folder / "cache") not in (p, *p.parents)}


def _tree(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")} if folder.exists() else {}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.group}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_refused_in_one_line(case, ws, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DGBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DGBENCH_DATA", raising=False)
    for name in case.hidden:
        monkeypatch.setitem(sys.modules, name, None)
    if case.setup:
        case.setup(tmp_path, ws)
    capsys.readouterr()
    names = {"out": tmp_path / "results", "tmp": tmp_path, "sr": ws / "sr", "done": ws / "done"}
    argv = [a.format(**names) for a in case.argv]
    before, mine = _tree(ws / "done"), _files(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own exit, in dgbench's format
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("dgbench: warning:")]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("dgbench: error: "), err
    assert case.expect.format(**names) in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "results").exists()  # nothing written
    assert _files(tmp_path) <= mine, sorted(_files(tmp_path) - mine)  # nor anywhere else
    assert _tree(ws / "done") == before


def test_the_corpus_covers_every_group():
    groups = {c.group for c in CASES}
    assert groups == {"flags", "yaml", "overrides", "numeric", "datasets", "cache", "records",
                      "filesystem", "sweeps"}
    assert len(CASES) >= 120
