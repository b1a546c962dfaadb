"""The ``dgbench`` command: a thin layer that parses arguments and calls the library.

User errors print one line, ``dgbench: error: ...``, and exit with status 2 before anything
trains or is written.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, NoReturn, Sequence

from dgbench.errors import DGBenchError, explain_os_error, one_line


def cmd_run(ns: argparse.Namespace) -> int:
    from dgbench import config as C
    from dgbench.experiment import dry_run, execute, summary
    from dgbench.plan import make_plan, resolve
    from dgbench.records import scan_folder
    from dgbench.tables import build_table, render

    if ns.threads is not None:
        if ns.threads < 1:
            raise DGBenchError(f"--threads must be at least 1; got {ns.threads}")
        import torch

        torch.set_num_threads(ns.threads)  # recorded in each record's environment
    user = C.user_settings(vars(ns), ns.preset, ns.config, ns.aug_args, ns.overrides)
    plan = make_plan(resolve(user))
    print(summary(plan), flush=True)
    out = Path(ns.out)
    if ns.dry_run:
        print("\n".join(dry_run(plan, out)))
        return 0
    print(f"writing records under {out / plan.experiment}", flush=True)
    done = execute(plan, out, force=ns.force, progress=not ns.no_progress,
                   keep_checkpoints=ns.keep_checkpoints)
    if done.records:
        print()
        print(render(build_table(done.records)), end="")
        held = scan_folder(out / plan.experiment).records  # more runs than this command's?
        if len(held) > len(done.records):
            print(f"\n{out / plan.experiment} holds {len(held)} finished runs; "
                  f"'dgbench table {out / plan.experiment}' shows them all")
    if done.elsewhere:
        print(f"{len(done.elsewhere)} run(s) are being trained by other processes; "
              f"'dgbench status {out}' follows them")
    done.raise_failures()
    return 0


def cmd_list(ns: argparse.Namespace) -> int:
    from dgbench.config import preset_names
    from dgbench.registry import AUGMENTERS, BACKBONES, DATASETS, PROTOCOLS

    if ns.kind == "fidelity":  # docs/fidelity.md
        from dgbench.fidelity import markdown

        print(markdown(), end="")
        return 0
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
    from dgbench.results import load
    from dgbench.tables import build_table, render

    table = build_table(load(ns.folder), ns.select, ns.error, ns.per_target)
    text = render(table, ns.format, ns.compare_paper)
    if ns.output:
        from dgbench.records import atomic_write_text

        atomic_write_text(Path(ns.output), text)
        print(f"wrote {ns.output}")
    else:
        print(text, end="")
    return 0


def cmd_data(ns: argparse.Namespace) -> int:
    from dgbench import config as C
    from dgbench.plan import resolve
    from dgbench.registry import DATASETS

    verify = ns.words[0] == "verify"
    if len(ns.words) != 1 + verify:
        raise DGBenchError("usage: dgbench data NAME, or dgbench data verify NAME")
    name = ns.words[-1]
    user = {"data.name": name}
    if ns.image_size is not None:
        C.set_value(user, "data.image_size", ns.image_size, from_text=True)
    cfg = resolve(user).data  # the dataset's own image size unless given
    dataset = DATASETS.get(name)(ns.data_root, cfg.image_size)
    if verify:
        from dgbench.imagecache import verify_dataset

        print(verify_dataset(dataset, name, cfg.image_size))
        return 0
    print(f"dataset {name}: {DATASETS.entry(name).description}")
    print("\n".join(dataset.report()))
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


def cmd_inspect(ns: argparse.Namespace) -> int:
    from dgbench import inspector

    if ns.plot:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise DGBenchError("--plot needs matplotlib: pip install 'dgbench[plot]'")
    found = inspector.inspect_features(
        ns.aug, ns.dataset, ns.data_root, ns.domains, ns.content, ns.style, ns.block,
        ns.backbone, ns.image_size, ns.pretrained, ns.weights, ns.seed)
    print(found.header())
    print(inspector.render_rows(found.rows, ns.per_channel), end="")
    if ns.plot:
        inspector.plot(found.maps, found.rows, ns.plot, ns.channels)
        print(f"histograms written to {ns.plot}")
    return 0


def _command(sub: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand with the common options and help that shows defaults."""
    return sub.add_parser(name, parents=[COMMON], formatter_class=Formatter, **kwargs)


def _add_run(sub: Any) -> None:
    from dgbench import config as C

    run = _command(
        sub, "run", help="train and evaluate runs, then print the comparison table",
        epilog=C.keys_help(),
        description="Plan the runs of an experiment (augmenters x splits x seeds), train the "
        "ones not finished yet, and print the table. Lists are comma-separated.",
    )
    run.add_argument("--config", metavar="FILE", help="YAML config (CLI flags override it)")
    run.add_argument("--preset", metavar="NAME",
                     help="a preset config from scripts/presets/ (see 'dgbench list presets')")
    run.add_argument("--aug-args", metavar="K=V,...",
                     help="augmenter arguments, e.g. alpha=0.3,mix=crossdomain or mixstyle.p=1")
    for flag in C.FLAGS:  # each sets one config key
        if flag.const is not None:
            value = str(flag.const).lower()
            run.add_argument(flag.name, action="store_true",
                             help=f"{flag.help} ({flag.key}={value})")
        else:
            default = C.FIELDS[flag.key].default
            run.add_argument(flag.name, metavar=flag.metavar,
                             help=f"{flag.help} ({flag.key}; code default {default!r})")
    run.add_argument("--out", default="results", metavar="DIR", help="results root")
    run.add_argument("--force", action="store_true", help="redo finished runs")
    run.add_argument("--keep-checkpoints", action="store_true",
                     help="keep each run's last checkpoint when it finishes (default: removed)")
    run.add_argument("--threads", type=int, metavar="N",
                     help="torch's CPU threads (default: torch's own choice); results on CPU "
                     "can depend on it, so each record says how many ran it")
    run.add_argument("--dry-run", action="store_true",
                     help="check and list the runs, train nothing")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    run.set_defaults(func=cmd_run)


def build_parser() -> argparse.ArgumentParser:
    from dgbench import __version__

    parser = Parser(prog="dgbench", parents=[COMMON], formatter_class=Formatter,
                    description="Benchmark feature-level domain-generalization augmenters.")
    parser.add_argument("--version", action="version", version=f"dgbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=Parser)
    _add_run(sub)

    lst = _command(sub, "list", help="registered augmenters, datasets, protocols, backbones; "
                   "presets; the fidelity table")
    lst.add_argument("kind", nargs="?", choices=["augmenters", "datasets", "protocols",
                                                 "backbones", "presets", "fidelity"])
    lst.add_argument("--markdown", action="store_true",
                     help="augmenters: the docs/augmenters.md table (paper, defaults, ...)")
    lst.set_defaults(func=cmd_list)

    data = _command(sub, "data", help="show what a dataset's loader finds: layout, sizes, "
                    "problems; 'data verify NAME' checks its image cache in full")
    data.add_argument("words", nargs="+", metavar="[verify] NAME",
                      help="a registered dataset, e.g. pacs; 'verify pacs' checks the decoded-"
                      "image cache: manifest, checksums, sources and pixels")
    data.add_argument("--data-root", metavar="DIR", help="where the dataset's files are")
    data.add_argument("--image-size", metavar="N",
                      help="verify: the cache of this size (default: the dataset's)")
    data.set_defaults(func=cmd_data)

    down = _command(
        sub, "download", help="fetch a dataset's public archive and verify it (needs internet)",
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

    synth = _command(
        sub, "synth-reid",
        help="write a generated Market-1501 + GRID stand-in (real layouts) to DEST",
        description="Generated person images in the exact Market-1501 and GRID layouts and "
        "file names, for tests and CPU smoke runs of the reid protocol; not a benchmark.",
    )
    synth.add_argument("dest",
                       help="folder to write Market-1501-v15.09.15/ and underground_reid/ in")
    synth.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    synth.add_argument("--scale", type=int, default=1, help="multiply the number of identities")
    synth.set_defaults(func=cmd_synth_reid)

    ins = _command(
        sub, "inspect", help="what each augmenter does to a feature distribution (moments, W1)",
        description="Run a content and a style image through a backbone to --block, restyle the "
        "content's features with each augmenter (lambda 0, the style as partner) and compare "
        "per-channel mean, std, skewness, kurtosis and 1-Wasserstein distance to the style's.",
    )
    ins.add_argument("--aug", default="adain,hm,efdm",
                     help="augmenters, with arguments as NAME:K=V, e.g. adain,hm:bins=8,efdm")
    ins.add_argument("--dataset", default="digits", help="where sampled images come from")
    ins.add_argument("--data-root", metavar="DIR", help="where the dataset's files are")
    ins.add_argument("--domains", metavar="A,B",
                     help="content and style domains (default: the dataset's first two)")
    ins.add_argument("--content", metavar="PATH", help="content image (with --style)")
    ins.add_argument("--style", metavar="PATH", help="style image (with --content)")
    ins.add_argument("--block", default="layer1", help="submodule whose output is inspected")
    ins.add_argument("--backbone", metavar="NAME", help="default: the dataset's recommended one")
    ins.add_argument("--image-size", metavar="N", help="default: the dataset's recommended size")
    ins.add_argument("--pretrained", action="store_true",
                     help="ImageNet weights (downloads; used anyway when already cached)")
    ins.add_argument("--weights", metavar="PATH", help="local backbone checkpoint")
    ins.add_argument("--seed", type=int, default=0,
                     help="seeds the image sampling, the initialisation and the augmenters")
    ins.add_argument("--per-channel", action="store_true", help="also print every channel")
    ins.add_argument("--plot", metavar="PNG", help="per-channel histograms (needs matplotlib)")
    ins.add_argument("--channels", type=int, default=4, help="channels to plot (default 4)")
    ins.set_defaults(func=cmd_inspect)

    tab = _command(sub, "table", help="render the comparison table of a results folder")
    tab.add_argument("folder", help="e.g. results/digits-lodo")
    tab.add_argument("--format", default="markdown", choices=["markdown", "latex", "csv"])
    tab.add_argument("--select", default="last", choices=["last", "val", "loo", "test-best"],
                     help="epoch per run: last (published rule, default), val (best "
                     "source-validation accuracy), loo (leave-one-domain-out validation: needs "
                     "runs made with protocol.loo_validation=true), test-best (best test "
                     "accuracy: optimistic)")
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


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows every option's default (where it has one worth showing)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default is not None and action.default is not False \
            and action.default is not argparse.SUPPRESS
        if action.option_strings and shown and "default" not in text:
            text += " (default: %(default)s)"
        return text


COMMON = argparse.ArgumentParser(add_help=False)
COMMON.add_argument("--debug", action="store_true",
                    help="show the traceback of any error, not only its one line")


class Parser(argparse.ArgumentParser):
    """argparse with dgbench's error format: one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"dgbench: error: {one_line(message)} (see '{self.prog} --help')\n")


def _warning(message: Any, category: Any, filename: str, lineno: int, line: Any = None) -> str:
    return f"dgbench: warning: {one_line(str(message))}\n"


def main(argv: Sequence[str] | None = None) -> int:
    warnings.formatwarning = _warning  # one line each, like the errors
    parser = build_parser()
    ns, extra = parser.parse_known_args(argv)
    if ns.command == "run":  # KEY=VALUE overrides anywhere on the command line, not only at the end
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
    except KeyboardInterrupt:
        print("dgbench: interrupted; finished runs are kept, rerun to continue", file=sys.stderr)
        return 130
    except Exception:  # a bug in dgbench: say so, and show where
        print("dgbench: internal error (a bug in dgbench; please report it with this "
              "traceback):", file=sys.stderr)
        traceback.print_exc()
        return 1
