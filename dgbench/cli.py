"""The ``dgbench`` command: a thin layer that parses arguments and calls the library.

User errors print one line, ``dgbench: error: ...``, and exit with status 2 before anything
trains or is written.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from dgbench.errors import DGBenchError

# CLI flag -> dotted config key (values are text, converted to the key's type)
FLAG_KEYS = {
    "aug": "aug.names",
    "protocol": "protocol.name",
    "dataset": "data.name",
    "source": "data.name",
    "target": "protocol.target",
    "splits": "protocol.splits",
    "data_root": "data.root",
    "targets": "protocol.targets",
    "seeds": "seeds",
    "backbone": "model.backbone",
    "insert": "aug.insert",
    "weights": "model.weights",
    "epochs": "train.epochs",
    "lr": "train.lr",
    "batch_size": "data.batch_size",
    "device": "device",
    "experiment": "experiment",
}


def _keys_help() -> str:
    from dgbench import config as C

    lines = ["config keys (YAML, or KEY=VALUE on the command line):"]
    cfg = C.to_dict(C.Config())
    for key, tp in C.LEAVES.items():
        node: Any = cfg
        for part in key.split("."):
            node = node[part]
        lines.append(f"  {key:<22} {C.type_name(tp):<28} default {node!r}")
    lines.append("  (a dataset may recommend other defaults; see its 'defaults' in datasets/)")
    return "\n".join(lines)


def _parse_aug_args(text: str) -> dict[str, Any]:
    """``alpha=0.3,mix=crossdomain,mixstyle.p=1`` -> checked later against the signatures."""
    from dgbench.config import CliText

    args: dict[str, Any] = {}
    # split on commas that start a new key=value pair, so values may hold commas
    for item in re.split(r",(?=\s*[A-Za-z_][\w.]*\s*=)", text):
        if not item.strip():
            continue
        if "=" not in item:
            raise DGBenchError(f"--aug-args expects key=value pairs, got {item!r}")
        key, value = (s.strip() for s in item.split("=", 1))
        head, _, tail = key.partition(".")
        if tail:
            args.setdefault(head, {})[tail] = CliText(value)
        else:
            args[key] = CliText(value)
    return args


def cmd_run(ns: argparse.Namespace) -> int:
    from dgbench import config as C
    from dgbench.experiment import execute, summary
    from dgbench.plan import make_plan, resolve
    from dgbench.records import load_records
    from dgbench.tables import build_table, render

    if ns.config and ns.preset:
        raise DGBenchError("give --preset or --config, not both (a preset is a config file)")
    user: dict[str, Any] = {}
    if ns.preset:
        user = C.read_preset(ns.preset)
    elif ns.config:
        user = C.read_yaml(ns.config)
    if ns.no_cache:
        C.set_value(user, "data.cache", False, from_text=False)
    if ns.dataset and ns.source and ns.dataset != ns.source:
        raise DGBenchError("--source and --dataset name the training dataset: give one")
    for flag, key in FLAG_KEYS.items():
        value = getattr(ns, flag)
        if value is not None:
            C.set_value(user, key, value, from_text=True)
    if ns.pretrained:
        user["model.pretrained"] = True
    if ns.aug_args:
        args = dict(user.get("aug.args", {}))
        for k, v in _parse_aug_args(ns.aug_args).items():
            args[k] = {**args.get(k, {}), **v} if isinstance(v, dict) else v
        user["aug.args"] = args
    for item in ns.overrides:
        if "=" not in item:
            raise DGBenchError(f"unexpected argument {item!r}; overrides look like train.lr=0.01")
        key, value = item.split("=", 1)
        C.set_value(user, key.strip(), value.strip(), from_text=True)

    plan = make_plan(resolve(user))
    print(summary(plan), flush=True)
    out = Path(ns.out)
    if ns.dry_run:
        for run in plan.runs:
            state = "done" if (out / plan.experiment / run.run_id / "done").exists() else "to run"
            print(f"  {run.run_id}  {run.label():<40} {state}")
        return 0
    print(f"writing records under {out / plan.experiment}", flush=True)
    records = execute(plan, out, force=ns.force, progress=not ns.no_progress)
    print()
    print(render(build_table(records)), end="")
    try:  # a note when the folder holds more runs than this command's
        all_records, _ = load_records(out / plan.experiment)
        if len(all_records) > len(records):
            print(f"\n{out / plan.experiment} holds {len(all_records)} finished runs; "
                  f"'dgbench table {out / plan.experiment}' shows them all")
    except DGBenchError:
        pass
    return 0


def cmd_list(ns: argparse.Namespace) -> int:
    from dgbench.config import preset_names
    from dgbench.registry import AUGMENTERS, BACKBONES, DATASETS, PROTOCOLS

    if ns.markdown:
        if ns.kind != "augmenters":
            raise DGBenchError("--markdown is for 'dgbench list augmenters'")
        from dgbench.zoo import augmenter_markdown

        print(augmenter_markdown(), end="")
        return 0
    kinds = {"augmenters": AUGMENTERS, "datasets": DATASETS, "protocols": PROTOCOLS,
             "backbones": BACKBONES, "presets": None}
    chosen = [ns.kind] if ns.kind else list(kinds)
    for i, kind in enumerate(chosen):
        reg = kinds[kind]
        rows = preset_names() if reg is None else {e.name: e.description for e in reg.entries()}
        if kind == "backbones":
            rows["timm:NAME"] = "any timm ResNet by name, e.g. timm:resnet26d"
        print(("\n" if i else "") + f"{kind}:")
        width = max((len(n) for n in rows), default=0)
        for name, description in rows.items():
            print(f"  {name:<{width}}  {description}")
    return 0


def cmd_table(ns: argparse.Namespace) -> int:
    from dgbench.records import load_records
    from dgbench.tables import build_table, render

    records, unfinished = load_records(ns.folder)
    table = build_table(records, unfinished, ns.select, ns.error, ns.per_target)
    text = render(table, ns.format, ns.compare_paper)
    if ns.output:
        from dgbench.records import atomic_write_text

        atomic_write_text(Path(ns.output), text)
        print(f"wrote {ns.output}")
    else:
        print(text, end="")
    return 0


def cmd_data(ns: argparse.Namespace) -> int:
    from tabulate import tabulate

    from dgbench.plan import resolve
    from dgbench.registry import DATASETS

    cfg = resolve({"data.name": ns.name}).data  # the dataset's own image size
    dataset = DATASETS.get(ns.name)(ns.data_root, cfg.image_size)
    print(f"dataset {ns.name}: {type(dataset).__doc__.strip().splitlines()[0]}")
    if getattr(dataset, "task", None) == "reid":
        print("\n".join(dataset.report()))
        return 0
    facts = dataset.describe()
    inventory = dataset.inventory()
    for key in ("root", "layout", "cache", "official_splits", "version"):
        if key in facts:
            print(f"  {key}: {facts[key]}")
    rows = []
    for domain in dataset.domains:
        sizes = [len(dataset.subset(domain, s, train=False)) for s in ("train", "val", "all")]
        on_disk = inventory.get("images_on_disk", {}).get(domain, "")
        rows.append([domain, on_disk, *sizes])
    print(tabulate(rows, ["domain", "image files", "train", "val", "test (whole domain)"],
                   tablefmt="simple"))
    excluded = facts.get("excluded", [])
    print(f"excluded: {', '.join(excluded) if excluded else 'none'}")
    problems = inventory.get("problems", [])
    print(f"problems: {'; '.join(problems) if problems else 'none'}")
    return 0


def cmd_download(ns: argparse.Namespace) -> int:
    import os

    from dgbench.registry import DATASETS

    dest = ns.dest or os.environ.get("DGBENCH_DATA") or "data"
    cls = DATASETS.get(ns.name)
    facts = cls.download(Path(dest), url=ns.url, sha256=ns.sha256, progress=not ns.no_progress)
    print(f"{ns.name} installed in {facts['path']} (archive sha256 {facts['archive_sha256']}); "
          "its files match the reference content digests")
    print(f"use it with --data-root {dest} (or DGBENCH_DATA={dest}); "
          f"check it with 'dgbench data {ns.name} --data-root {dest}'")
    return 0


def cmd_synth_reid(ns: argparse.Namespace) -> int:
    from dgbench.synthreid import generate

    paths = generate(ns.dest, seed=ns.seed, scale=ns.scale)
    for name, path in paths.items():
        print(f"{name}: {path}")
    print(f"use them with --data-root {ns.dest}, e.g. dgbench run --preset reid-synth-cpu "
          f"--data-root {ns.dest}")
    return 0


def _pretrained_cached(backbone: str, width: int) -> bool:
    """Are torchvision's ImageNet weights for ``backbone`` already on disk (no download)?"""
    import torch
    import torchvision

    if width != 64 or backbone not in ("resnet18", "resnet50"):
        return False
    weights = getattr(torchvision.models, f"ResNet{backbone[6:]}_Weights").IMAGENET1K_V1
    return (Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[1]).is_file()


def cmd_inspect(ns: argparse.Namespace) -> int:
    import random

    import torch

    from dgbench import config as C
    from dgbench import inspector
    from dgbench.data import IMAGENET_MEAN, IMAGENET_STD
    from dgbench.models import build_backbone
    from dgbench.plan import resolve
    from dgbench.registry import DATASETS

    specs = inspector.parse_specs(ns.aug)
    user: dict[str, Any] = {"data.name": ns.dataset}
    for key, value in (("model.backbone", ns.backbone), ("data.image_size", ns.image_size)):
        if value is not None:  # command-line text, converted and checked like run's flags
            C.set_value(user, key, value, from_text=True)
    cfg = resolve(user)
    pretrained = ns.pretrained or (not ns.weights and _pretrained_cached(cfg.model.backbone, cfg.model.width))
    if ns.plot:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise DGBenchError("--plot needs matplotlib: pip install 'dgbench[plot]'")
    dataset = DATASETS.get(ns.dataset)(ns.data_root, cfg.data.image_size)
    if ns.content or ns.style:
        if not (ns.content and ns.style):
            raise DGBenchError("give both --content and --style image paths, or neither")
        from PIL import Image, UnidentifiedImageError
        from torchvision import transforms as T

        tf = T.Compose([T.Resize(cfg.data.image_size), T.CenterCrop(cfg.data.image_size), T.ToTensor(),
                        T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
        images, where = [], [ns.content, ns.style]
        for path in where:
            try:
                with Image.open(path) as im:
                    images.append(tf(im.convert("RGB")))
            except (OSError, UnidentifiedImageError) as exc:
                raise DGBenchError(f"cannot read image {path}: {exc}") from None
    else:
        domains = ns.domains.split(",") if ns.domains else list(dataset.domains[:2])
        if len(domains) != 2 or domains[0] == domains[1]:
            raise DGBenchError("--domains takes two different domains, content first")
        rng = random.Random(ns.seed)
        images, where = [], []
        for d in domains:
            part = dataset.subset(d, "all", train=False)
            i = rng.randrange(len(part))
            images.append(part[i][0])
            where.append(f"{d} #{i}")
    model = build_backbone(cfg.model.backbone, dataset.num_classes, cfg.model.stem, cfg.model.width,
                           pretrained, ns.weights)
    state = ("ImageNet weights" if pretrained else f"weights from {ns.weights}" if ns.weights
             else "UNTRAINED (random init, seeded): pass --pretrained or --weights for a trained one")
    torch.manual_seed(ns.seed)
    feats = inspector.block_features(model, ns.block, torch.stack(images))
    maps = inspector.restyled(feats[0], feats[1], specs, ns.seed)
    rows = inspector.compare(maps)
    print(f"content: {where[0]}  style: {where[1]}  block: {ns.block} {tuple(feats.shape[1:])}  "
          f"backbone: {cfg.model.backbone} ({state})")
    print(inspector.render_rows(rows, ns.per_channel), end="")
    if ns.plot:
        inspector.plot(maps, rows, ns.plot, ns.channels)
        print(f"histograms written to {ns.plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dgbench", description="Benchmark feature-level domain-generalization augmenters."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="train and evaluate runs, then print the comparison table",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_keys_help(),
        description="Plan the runs of an experiment (augmenters x splits x seeds), train the "
        "ones not finished yet, and print the table. Lists are comma-separated.",
    )
    run.add_argument("--config", metavar="FILE", help="YAML config (CLI flags override it)")
    run.add_argument("--preset", metavar="NAME",
                     help="a preset config from scripts/presets/ (see 'dgbench list presets')")
    run.add_argument("--aug", metavar="LIST", help="augmenters, e.g. none,mixstyle,efdmix")
    run.add_argument("--aug-args", metavar="K=V,...",
                     help="augmenter arguments, e.g. alpha=0.3,mix=crossdomain or mixstyle.p=1")
    run.add_argument("--protocol", metavar="NAME", help="protocol (default lodo)")
    run.add_argument("--dataset", metavar="NAME", help="dataset (default digits)")
    run.add_argument("--source", metavar="NAME", help="reid: the training dataset (= --dataset)")
    run.add_argument("--target", metavar="NAME", help="reid: the dataset to rank, e.g. grid")
    run.add_argument("--splits", metavar="LIST",
                     help="reid: splits of a multi-split dataset (GRID: 0..9; default all)")
    run.add_argument("--data-root", metavar="DIR", help="where the dataset's files are")
    run.add_argument("--targets", metavar="LIST", help="only these splits (LODO: target domains)")
    run.add_argument("--seeds", metavar="LIST", help="seeds, e.g. 1,2,3 (default 1)")
    run.add_argument("--backbone", metavar="NAME", help="resnet18, resnet50 or timm:NAME")
    run.add_argument("--insert", metavar="LIST", help="blocks to insert after, e.g. layer1,layer2")
    run.add_argument("--pretrained", action="store_true", help="ImageNet weights (downloads)")
    run.add_argument("--weights", metavar="PATH", help="local backbone checkpoint")
    run.add_argument("--epochs", metavar="N")
    run.add_argument("--lr", metavar="X")
    run.add_argument("--batch-size", metavar="N")
    run.add_argument("--device", metavar="DEV", help="auto (default), cpu, cuda, cuda:N")
    run.add_argument("--experiment", metavar="NAME", help="results folder name")
    run.add_argument("--out", default="results", metavar="DIR", help="results root (default results)")
    run.add_argument("--force", action="store_true", help="redo finished runs")
    run.add_argument("--dry-run", action="store_true", help="check and list the runs, train nothing")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--no-cache", action="store_true",
                     help="decode images with PIL per item (data.cache=false) instead of the "
                     "decoded-image cache with batched augmentation")
    run.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    run.set_defaults(func=cmd_run)

    lst = sub.add_parser("list", help="registered augmenters, datasets, protocols, backbones")
    lst.add_argument("kind", nargs="?",
                     choices=["augmenters", "datasets", "protocols", "backbones", "presets"])
    lst.add_argument("--markdown", action="store_true",
                     help="augmenters: the docs/augmenters.md table (paper, defaults, ...)")
    lst.set_defaults(func=cmd_list)

    data = sub.add_parser("data", help="show what a dataset's loader finds: layout, sizes, problems")
    data.add_argument("name", help="a registered dataset, e.g. pacs")
    data.add_argument("--data-root", metavar="DIR", help="where the dataset's files are")
    data.set_defaults(func=cmd_data)

    down = sub.add_parser(
        "download", help="fetch a dataset's public archive and verify it (needs internet)",
        description="Download, verify (archive sha256 if given; content digests always) and "
        "unpack into DEST/<NAME>; nothing is left in DEST when a check fails.",
    )
    down.add_argument("name", help="a registered dataset, e.g. pacs")
    down.add_argument("--dest", metavar="DIR",
                      help="where to put it (default $DGBENCH_DATA, else ./data)")
    down.add_argument("--url", metavar="URL", help="another mirror of the same archive")
    down.add_argument("--sha256", metavar="HEX", help="expected sha256 of the archive itself")
    down.add_argument("--no-progress", action="store_true", help="no progress bar")
    down.set_defaults(func=cmd_download)

    synth = sub.add_parser(
        "synth-reid", help="write a generated Market-1501 + GRID stand-in (real layouts) to DEST",
        description="Generated person images in the exact Market-1501 and GRID layouts and "
        "file names, for tests and CPU smoke runs of the reid protocol; not a benchmark.",
    )
    synth.add_argument("dest", help="folder to write Market-1501-v15.09.15/ and underground_reid/ in")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--scale", type=int, default=1, help="multiply the number of identities")
    synth.set_defaults(func=cmd_synth_reid)

    ins = sub.add_parser(
        "inspect", help="what each augmenter does to a feature distribution (moments, W1)",
        description="Run a content and a style image through a backbone to --block, restyle the "
        "content's features with each augmenter (lambda 0, the style as partner) and compare "
        "per-channel mean, std, skewness, kurtosis and 1-Wasserstein distance to the style's.",
    )
    ins.add_argument("--aug", default="adain,hm,efdm",
                     help="augmenters, with arguments as NAME:K=V, e.g. adain,hm:bins=8,efdm")
    ins.add_argument("--dataset", default="digits", help="where sampled images come from")
    ins.add_argument("--data-root", metavar="DIR")
    ins.add_argument("--domains", metavar="A,B", help="content and style domains (default the first two)")
    ins.add_argument("--content", metavar="PATH", help="content image (with --style)")
    ins.add_argument("--style", metavar="PATH", help="style image (with --content)")
    ins.add_argument("--block", default="layer1", help="submodule whose output is inspected")
    ins.add_argument("--backbone", metavar="NAME")
    ins.add_argument("--image-size", metavar="N")
    ins.add_argument("--pretrained", action="store_true",
                     help="ImageNet weights (downloads; used anyway when already cached)")
    ins.add_argument("--weights", metavar="PATH", help="local backbone checkpoint")
    ins.add_argument("--seed", type=int, default=0)
    ins.add_argument("--per-channel", action="store_true", help="also print every channel")
    ins.add_argument("--plot", metavar="PNG", help="per-channel histograms (needs matplotlib)")
    ins.add_argument("--channels", type=int, default=4, help="channels to plot (default 4)")
    ins.set_defaults(func=cmd_inspect)

    tab = sub.add_parser("table", help="render the comparison table of a results folder")
    tab.add_argument("folder", help="e.g. results/digits-lodo")
    tab.add_argument("--format", default="markdown", choices=["markdown", "latex", "csv"])
    tab.add_argument("--select", default="last", choices=["last", "val", "oracle"],
                     help="epoch per run: last (published rule, default), val (best "
                     "source-validation accuracy), oracle (best test accuracy: optimistic)")
    tab.add_argument("--error", default="std", choices=["std", "se"],
                     help="error bar: population std (default, as the papers) or standard error")
    tab.add_argument("--per-target", action="store_true",
                     help="one column per source->target pair (single-source: the per-target "
                     "accuracies instead of the pooled one)")
    tab.add_argument("--compare-paper", action="store_true",
                     help="print the published numbers beside ours, with the difference")
    tab.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    tab.set_defaults(func=cmd_table)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return ns.func(ns)
    except DGBenchError as exc:
        print(f"dgbench: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("dgbench: interrupted; finished runs are kept, rerun to continue", file=sys.stderr)
        return 130
