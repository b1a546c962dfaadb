"""The ``dgbench`` command line: the parsers, and the error format (the commands themselves are
in :mod:`dgbench.commands`).

User errors print one line, ``dgbench: error: ...``, and exit with status 2 before anything
trains or is written.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from typing import Any, NoReturn, Sequence

from dgbench.commands import (cmd_compare, cmd_data, cmd_download, cmd_inspect, cmd_list,
                              cmd_plot, cmd_report, cmd_run, cmd_status, cmd_sweep,
                              cmd_synth_reid, cmd_table)
from dgbench.errors import DGBenchError, explain_os_error, one_line


def _command(sub: Any, name: str, launcher: bool = False, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand with the common options (and the launcher's) and help that shows defaults."""
    parents = [COMMON, LAUNCH] if launcher else [COMMON]
    return sub.add_parser(name, parents=parents, formatter_class=Formatter, **kwargs)


LAUNCH = argparse.ArgumentParser(add_help=False)
_l = LAUNCH.add_argument_group("launching (dgbench.launch)")
_l.add_argument("--launcher", default="local", choices=["local", "ray", "slurm"],
                help="where runs go: this machine, a Ray cluster, or SLURM through submitit")
_l.add_argument("--jobs", type=int, default=1, metavar="N",
                help="local: worker processes at once (one GPU each when there are GPUs)")
_l.add_argument("--threads", type=int, metavar="N",
                help="torch CPU threads per run (default: the cores given / --jobs); results "
                "on a CPU can depend on it, and each record says how many ran it")
_l.add_argument("--keep-checkpoints", action="store_true",
                help="keep each run's last checkpoint when it finishes (default: removed)")
_l.add_argument("--log", choices=["tensorboard"],
                help="also write TensorBoard event files (metrics.csv is always written)")
_l.add_argument("--ray-address", metavar="ADDR", help="ray: an existing cluster (default: a "
                "local Ray started for the command)")
_l.add_argument("--slurm-partition", metavar="NAME", help="slurm: the partition")
_l.add_argument("--slurm-time", type=int, default=60, metavar="MIN", help="slurm: minutes per job")
_l.add_argument("--slurm-gpus", type=int, default=0, metavar="N", help="slurm: GPUs per job")
_l.add_argument("--slurm-array-parallelism", type=int, default=256, metavar="N",
                help="slurm: jobs of the array running at once")
_l.add_argument("--slurm-local", action="store_true",
                help="slurm: submitit's local executor instead of a cluster (a workstation, tests)")
_l.add_argument("--wait", action="store_true",
                help="slurm: wait for the jobs and print the tables (default: submit and return)")


def _add_run(sub: Any) -> None:
    from dgbench import config as C

    run = _command(
        sub, "run", launcher=True, help="train and evaluate runs, then print the comparison table",
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

    sweep = _command(sub, "sweep", launcher=True,
                     help="plan and launch a sweep file: a base config, axes, a search")
    sweep.add_argument("file", help="a sweep YAML file (see dgbench/sweep.py and the README)")
    sweep.add_argument("--out", default="results", metavar="DIR", help="results root")
    sweep.add_argument("--dry-run", action="store_true",
                       help="list the runs: done / running / to launch; launch nothing")
    sweep.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="keys over the sweep's base at every point, e.g. data.root=/data/PACS")
    sweep.set_defaults(func=cmd_sweep)

    status = _command(sub, "status", help="done / running / failed / stale runs of a results root")
    status.add_argument("results", help="a results root, e.g. results")
    status.add_argument("--sweep", metavar="FILE", help="also count the runs it plans that have "
                        "not started")
    status.set_defaults(func=cmd_status)

    _add_table(sub)
    _add_compare(sub)
    _add_plot_report(sub)
    return parser


SELECT_HELP = ("epoch per run: last (published rule, default), val (best source-validation "
               "accuracy), loo (leave-one-domain-out validation: needs runs made with "
               "protocol.loo_validation=true), oracle (DomainBed's test-domain oracle: the "
               "final model of the argument setting best on a held-out 20%% of the target, "
               "reported on the other 80%%; for sweeps), test-best (best test accuracy: "
               "optimistic)")


def _add_select(parser: argparse.ArgumentParser) -> None:
    """``--select``: the epoch-selection rule (``dgbench.tables.RULES``) of a results command."""
    parser.add_argument("--select", default="last",
                        choices=["last", "val", "loo", "oracle", "test-best"], help=SELECT_HELP)


def _add_table(sub: Any) -> None:
    tab = _command(sub, "table", help="render the comparison table of a results folder")
    tab.add_argument("folder", help="e.g. results/digits-lodo")
    tab.add_argument("--format", default="markdown",
                     choices=["markdown", "latex", "csv", "domainbed"],
                     help="domainbed: DomainBed's collect_results layout (mean +/- SE by "
                     "default)")
    _add_select(tab)
    tab.add_argument("--error", choices=["std", "sd", "se", "ci95"],
                     help="error bar: std, population std (ddof=0, as the papers; the default), "
                     "sd, sample std (ddof=1), se, standard error (as DomainBed; the default of "
                     "--format domainbed), ci95, the t-based 95%% CI half-width of the mean")
    tab.add_argument("--no-bold", action="store_true",
                     help="do not set the best mean of each column in bold")
    tab.add_argument("--per-target", action="store_true",
                     help="one column per source->target pair (single-source: the per-target "
                     "accuracies instead of the pooled one)")
    tab.add_argument("--compare-paper", action="store_true",
                     help="print the published numbers beside ours, with the difference")
    sig = tab.add_argument_group("significance against a baseline (dgbench.stats)")
    sig.add_argument("--mark-significant", action="store_true",
                     help="mark (†) each cell and Avg whose difference from the baseline's, "
                     "paired by split and seed, is significant")
    sig.add_argument("--baseline", default="none",
                     help="the row compared against: an augmenter or a row label")
    sig.add_argument("--alpha", type=float, default=0.05, help="significance threshold")
    sig.add_argument("--test", default="wilcoxon", choices=["wilcoxon", "sign"],
                     help="Wilcoxon signed-rank or sign test, two-sided")
    tab.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    tab.set_defaults(func=cmd_table)


def _add_compare(sub: Any) -> None:
    cmp = _command(
        sub, "compare", help="paired comparison of every variant with a baseline",
        description="Each variant's table cells minus the baseline's, over runs paired by "
        "split and seed, pooled and per column: mean difference, percentile-bootstrap 95% "
        "CI, Wilcoxon signed-rank and sign-test p-values, wins/losses/ties; runs without a "
        "partner are listed.")
    cmp.add_argument("results", help="a results folder, e.g. results/digits-lodo")
    cmp.add_argument("--baseline", default="none",
                     help="the variant compared against: an augmenter (none) or a row label")
    _add_select(cmp)
    cmp.add_argument("--format", default="markdown", choices=["markdown", "csv", "latex"],
                     help="markdown (caption, table, unmatched runs), csv or latex (booktabs)")
    cmp.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    cmp.add_argument("--bootstrap", type=int, default=10000, metavar="N",
                     help="bootstrap resamples (0: no CI)")
    cmp.add_argument("--per-target", action="store_true",
                     help="the columns of 'dgbench table --per-target' (single-source: one "
                     "per source->target pair)")
    cmp.add_argument("--pooled-only", action="store_true",
                     help="only the comparison pooled over all columns")
    cmp.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    cmp.set_defaults(func=cmd_compare)


def _add_plot_report(sub: Any) -> None:
    plot = _command(sub, "plot", help="bars, training curves or a sensitivity plot of a results "
                    "folder (needs matplotlib: pip install 'dgbench[plot]')")
    plot.add_argument("results", help="a results folder, e.g. results/digits-lodo")
    plot.add_argument("--kind", default="bars", choices=["bars", "curves", "sweep"],
                      help="bars: per-target means with error bars; curves: loss, source-val "
                      "and test accuracy per epoch over seeds; sweep: the score over --by")
    plot.add_argument("--by", metavar="KEY", help="sweep: the swept key (aug.alpha, insert, "
                      "train.lr, any config key)")
    plot.add_argument("-o", "--output", required=True, metavar="FILE",
                      help="FILE.png, FILE.pdf or FILE.svg")
    report = _command(sub, "report", help="one self-contained HTML page: tables, paired "
                      "comparison, plots, config differences, environment, deviations, "
                      "missing and failed runs")
    report.add_argument("results", help="a results folder (one experiment or a results root)")
    report.add_argument("-o", "--output", default="report.html", metavar="FILE")
    report.add_argument("--baseline", default="none", help="the variant the others are compared with")
    report.add_argument("--by", metavar="KEY", help="also a sensitivity plot over this swept key")
    report.add_argument("--test", default="wilcoxon", choices=["wilcoxon", "sign"],
                        help="the paired test behind the table's daggers")
    report.add_argument("--alpha", type=float, default=0.05, help="the daggers' threshold")
    for p in (plot, report):
        _add_select(p)
        p.add_argument("--error", default="std", choices=["std", "sd", "se", "ci95"],
                       help="error bars: population std (the papers'), sample std, standard "
                       "error (DomainBed's) or 95%% CI half-width")
    plot.set_defaults(func=cmd_plot)
    report.set_defaults(func=cmd_report)


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
    except KeyboardInterrupt:
        print("dgbench: interrupted; finished runs are kept, rerun to continue", file=sys.stderr)
        return 130
    except Exception:  # a bug in dgbench: say so, and show where
        print("dgbench: internal error (a bug in dgbench; please report it with this "
              "traceback):", file=sys.stderr)
        traceback.print_exc()
        return 1
