"""The ``dgbench`` command line's parsers. Every choice a flag offers is read from the one
place that declares it (selection rules, estimators, formats, paired tests, launchers, plot
kinds, list kinds), and a command's parser is filled in only when that command runs (or
``build_parser()`` is asked for all), so that starting ``dgbench table`` imports no training
code and ``dgbench --help`` imports nothing heavy."""

from __future__ import annotations

import argparse
from typing import Any, Callable, NoReturn, Sequence

from dgbench import __version__
from dgbench import config as C
from dgbench.cli import commands as cmd
from dgbench.core.errors import one_line


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows every option's default (where it has one worth showing)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default is not None and action.default is not False \
            and action.default is not argparse.SUPPRESS
        if action.option_strings and shown and "default" not in text:
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """argparse with dgbench's error format: one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"dgbench: error: {one_line(message)} (see '{self.prog} --help')\n")


def _folder(text: str) -> str:
    """A folder given on the command line: not empty (that would be the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a folder, e.g. results")
    return text


def _help(text: str) -> str:
    return text.replace("%", "%%")  # argparse formats help strings with %


COMMON = argparse.ArgumentParser(add_help=False)
COMMON.add_argument("--debug", action="store_true",
                    help="show the traceback of any error, not only its one line")


def _launch_group(p: argparse.ArgumentParser) -> None:
    from dgbench.run.launch import LAUNCHERS  # lazy: torch (the launchers train)

    g = p.add_argument_group("launching (dgbench.run.launch)")
    g.add_argument("--launcher", default="local", choices=list(LAUNCHERS),
                   help="where runs go: " + "; ".join(f"{x.name}, {x.help}"
                                                       for x in LAUNCHERS.values()))
    g.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="local: worker processes at once (one GPU each when there are GPUs)")
    g.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads per run (default: OMP_NUM_THREADS when it is set, "
                   "else the cores given / --jobs); results on a CPU can depend on it, and "
                   "each record says how many ran it")
    g.add_argument("--keep-checkpoints", action="store_true",
                   help="keep each run's last checkpoint when it finishes (default: removed)")
    g.add_argument("--drop-weights", action="store_true",
                   help="do not keep each finished run's trained weights (default: kept as "
                   "model.pt in its folder)")
    g.add_argument("--log", choices=["tensorboard"],
                   help="also write TensorBoard event files (metrics.csv is always written)")
    g.add_argument("--ray-address", metavar="ADDR", help="ray: an existing cluster (default: a "
                   "local Ray started for the command)")
    g.add_argument("--slurm-partition", metavar="NAME", help="slurm: the partition")
    g.add_argument("--slurm-time", type=int, default=60, metavar="MIN", help="slurm: minutes per job")
    g.add_argument("--slurm-gpus", type=int, default=0, metavar="N", help="slurm: GPUs per job")
    g.add_argument("--slurm-array-parallelism", type=int, default=256, metavar="N",
                   help="slurm: jobs of the array running at once")
    g.add_argument("--slurm-local", action="store_true",
                   help="slurm: submitit's local executor instead of a cluster (a workstation, tests)")
    g.add_argument("--wait", action="store_true",
                   help="slurm: wait for the jobs and print the tables (default: submit and return)")


def _run(p: argparse.ArgumentParser) -> None:

    _launch_group(p)
    p.epilog = C.keys_help()
    p.add_argument("--config", metavar="FILE", help="YAML config (CLI flags override it)")
    p.add_argument("--preset", metavar="NAME",
                   help="a preset config from dgbench/config/presets/ (see 'dgbench list presets')")
    p.add_argument("--aug-args", metavar="K=V,...",
                   help="augmenter arguments, e.g. alpha=0.3,mix=crossdomain or mixstyle.p=1")
    for flag in C.FLAGS:  # each sets one config key
        if flag.const is not None:
            value = str(flag.const).lower()
            p.add_argument(flag.name, action="store_true", help=f"{flag.help} ({flag.key}={value})")
        else:
            default = C.FIELDS[flag.key].default
            p.add_argument(flag.name, metavar=flag.metavar,
                           help=f"{flag.help} ({flag.key}; code default {default!r})")
    p.add_argument("--out", default="results", type=_folder, metavar="DIR", help="results root")
    p.add_argument("--force", action="store_true", help="redo finished runs")
    p.add_argument("--dry-run", action="store_true", help="check and list the runs, train nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.set_defaults(func=cmd.cmd_run)


def _list(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", choices=list(cmd.LIST_KINDS))
    p.add_argument("--markdown", action="store_true",
                   help="augmenters: the docs/augmenters.md table (paper, defaults, ...)")
    p.set_defaults(func=cmd.cmd_list)


def _data(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="+", metavar="[verify] NAME",
                   help="a registered dataset, e.g. pacs; 'verify pacs' checks the decoded-"
                   "image cache: manifest, checksums, sources and pixels")
    p.add_argument("--data-root", metavar="DIR", help="where the dataset's files are")
    p.add_argument("--image-size", metavar="N",
                   help="verify: the cache of this size (default: the dataset's)")
    p.add_argument("--list-splits", action="store_true",
                   help="print DomainBed's split of every domain as CSV: domain,split,path (split "
                   "'out' (its holdout fraction) or 'in'; the path relative to the folder holding "
                   "the domain folders), in DomainBed's order: each domain's 'out' part first")
    p.add_argument("--trial-seed", metavar="S", default="0",
                   help="--list-splits: DomainBed's trial seed (default 0)")
    p.add_argument("--holdout-fraction", metavar="F", default="0.2",
                   help="--list-splits: the share of each domain in 'out' (default 0.2)")
    p.set_defaults(func=cmd.cmd_data)


def _download(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="a registered dataset, e.g. pacs")
    p.add_argument("--dest", type=_folder, metavar="DIR", help="where to put it (default $DGBENCH_DATA, else ./data)")
    p.add_argument("--url", metavar="URL", help="another mirror of the same archive")
    p.add_argument("--sha256", metavar="HEX", help="expected sha256 of the archive itself")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd.cmd_download)


def _synth_reid(p: argparse.ArgumentParser) -> None:
    p.add_argument("dest", type=_folder, help="folder to write Market-1501-v15.09.15/ and underground_reid/ in")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    p.add_argument("--scale", type=int, default=1, help="multiply the number of identities")
    p.set_defaults(func=cmd.cmd_synth_reid)


def _inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("--aug", default="adain,hm,efdm",
                   help="augmenters, with arguments as NAME:K=V, e.g. adain,hm:bins=8,efdm")
    p.add_argument("--dataset", default="digits", help="where sampled images come from")
    p.add_argument("--data-root", metavar="DIR", help="where the dataset's files are")
    p.add_argument("--domains", metavar="A,B",
                   help="content and style domains (default: the dataset's first two)")
    p.add_argument("--content", metavar="PATH", help="content image (with --style)")
    p.add_argument("--style", metavar="PATH", help="style image (with --content)")
    p.add_argument("--block", default="layer1", help="submodule whose output is inspected")
    p.add_argument("--backbone", metavar="NAME", help="default: the dataset's recommended one")
    p.add_argument("--image-size", metavar="N", help="default: the dataset's recommended size")
    p.add_argument("--pretrained", action="store_true",
                   help="ImageNet weights (downloads; used anyway when already cached)")
    p.add_argument("--weights", metavar="PATH", help="local backbone checkpoint")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the image sampling, the initialisation and the augmenters")
    p.add_argument("--per-channel", action="store_true", help="also print every channel")
    p.add_argument("--plot", metavar="PNG", help="per-channel histograms (needs matplotlib)")
    p.add_argument("--channels", type=int, default=4, help="channels to plot (default 4)")
    p.set_defaults(func=cmd.cmd_inspect)


def _sweep(p: argparse.ArgumentParser) -> None:
    _launch_group(p)
    p.add_argument("file", help="a sweep YAML file (see dgbench/plan/sweep.py and the README)")
    p.add_argument("--out", default="results", type=_folder, metavar="DIR", help="results root")
    p.add_argument("--dry-run", action="store_true",
                   help="list the runs: done / running / to launch; launch nothing")
    p.add_argument("--json", action="store_true",
                   help="with --dry-run: one JSON object per planned run and line (experiment, "
                   "run_id, state, label, its full config), nothing else on standard output")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="keys over the sweep's base at every point, e.g. data.root=/data/PACS")
    p.set_defaults(func=cmd.cmd_sweep)


def _status(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="a results root, e.g. results")
    p.add_argument("--sweep", metavar="FILE",
                   help="also count the runs it plans that have not started")
    p.set_defaults(func=cmd.cmd_status)


def _select(p: argparse.ArgumentParser) -> None:
    """``--select``: the selection rule of a results command."""
    from dgbench.results.selection import RULES  # lazy: pandas

    p.add_argument("--select", default="last", choices=list(RULES), help=_help(
        "epoch per run: " + ", ".join(f"{r.name} ({r.help})" for r in RULES.values())))


def _error(p: argparse.ArgumentParser, default: str | None) -> None:
    from dgbench.results.estimators import ESTIMATORS  # lazy: pandas

    p.add_argument("--error", default=default, choices=list(ESTIMATORS), help=_help(
        "error bars: " + ", ".join(f"{e.name}, {e.help}" for e in ESTIMATORS.values())))


def _paired_test(p: Any) -> None:
    from dgbench.results.stats import TESTS  # lazy: pandas

    p.add_argument("--test", default="wilcoxon", choices=list(TESTS),
                   help="the paired test: " + "; ".join(f"{k}, {v}" for k, v in TESTS.items()))


def _table(p: argparse.ArgumentParser) -> None:
    from dgbench.report.text import FORMATS  # lazy: pandas

    p.add_argument("folder", help="e.g. results/digits-lodo")
    p.add_argument("--format", default="markdown", choices=list(FORMATS),
                   help="; ".join(f"{f.name}: {f.help}" for f in FORMATS.values()))
    _select(p)
    _error(p, None)
    p.add_argument("--no-bold", action="store_true",
                   help="do not set the best mean of each column in bold")
    p.add_argument("--per-target", action="store_true",
                   help="one column per source->target pair (single-source: the per-target "
                   "accuracies instead of the pooled one)")
    p.add_argument("--compare-paper", action="store_true",
                   help="print the published numbers beside ours, with the difference")
    sig = p.add_argument_group("significance against a baseline (dgbench.results.stats)")
    sig.add_argument("--mark-significant", action="store_true",
                     help="mark (†) each cell and Avg whose difference from the baseline's, "
                     "paired by split and seed, is significant")
    sig.add_argument("--baseline", default="none",
                     help="the row compared against: an augmenter or a row label")
    sig.add_argument("--alpha", type=float, default=0.05, help="significance threshold")
    _paired_test(sig)
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=cmd.cmd_table)


def _compare(p: argparse.ArgumentParser) -> None:
    from dgbench.report.compare import FORMATS  # lazy: pandas

    p.add_argument("results", help="a results folder, e.g. results/digits-lodo")
    p.add_argument("--baseline", default="none",
                   help="the variant compared against: an augmenter (none) or a row label")
    _select(p)
    p.add_argument("--format", default="markdown", choices=list(FORMATS),
                   help="markdown (caption, table, unmatched runs), csv or latex (booktabs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.add_argument("--bootstrap", type=int, default=10000, metavar="N",
                   help="bootstrap resamples (0: no CI)")
    p.add_argument("--per-target", action="store_true",
                   help="the columns of 'dgbench table --per-target' (single-source: one "
                   "per source->target pair)")
    p.add_argument("--pooled-only", action="store_true",
                   help="only the comparison pooled over all columns")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=cmd.cmd_compare)


def _plot(p: argparse.ArgumentParser) -> None:
    from dgbench.report.plots import KINDS  # lazy: pandas

    p.add_argument("results", help="a results folder, e.g. results/digits-lodo")
    p.add_argument("--kind", default="bars", choices=list(KINDS),
                   help="; ".join(f"{k}: {v.help}" for k, v in KINDS.items()))
    p.add_argument("--by", metavar="KEY", help="sweep: the swept key (aug.alpha, insert, "
                   "train.lr, any config key)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="FILE.png, FILE.pdf or FILE.svg")
    _select(p)
    _error(p, "std")
    p.set_defaults(func=cmd.cmd_plot)


def _report(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="a results folder (one experiment or a results root)")
    p.add_argument("-o", "--output", default="report.html", metavar="FILE")
    p.add_argument("--baseline", default="none", help="the variant the others are compared with")
    p.add_argument("--by", metavar="KEY", help="also a sensitivity plot over this swept key")
    _paired_test(p)
    p.add_argument("--alpha", type=float, default=0.05, help="the daggers' threshold")
    _select(p)
    _error(p, "std")
    p.set_defaults(func=cmd.cmd_report)


#: every command: name -> (one-line help, a longer description or None, what fills its parser)
COMMANDS: dict[str, tuple[str, str | None, Callable[[argparse.ArgumentParser], None]]] = {
    "run": ("train and evaluate runs, then print the comparison table",
            "Plan the runs of an experiment (augmenters x splits x seeds), train the ones not "
            "finished yet, and print the table. Lists are comma-separated.", _run),
    "list": ("registered augmenters, datasets, protocols, backbones; presets; the fidelity "
             "table", None, _list),
    "data": ("show what a dataset's loader finds: layout, sizes, problems; 'data verify NAME' "
             "checks its image cache in full", None, _data),
    "download": ("fetch a dataset's public archive and verify it (needs internet)",
                 "Download, verify (archive sha256 if given; content digests always) and unpack "
                 "into DEST/<NAME>; nothing is left in DEST when a check fails.", _download),
    "synth-reid": ("write a generated Market-1501 + GRID stand-in (real layouts) to DEST",
                   "Generated person images in the exact Market-1501 and GRID layouts and file "
                   "names, for tests and CPU smoke runs of the reid protocol; not a benchmark.",
                   _synth_reid),
    "inspect": ("what each augmenter does to a feature distribution (moments, W1)",
                "Run a content and a style image through a backbone to --block, restyle the "
                "content's features with each augmenter (lambda 0, the style as partner) and "
                "compare per-channel mean, std, skewness, kurtosis and 1-Wasserstein distance "
                "to the style's.", _inspect),
    "sweep": ("plan and launch a sweep file: a base config, axes, a search", None, _sweep),
    "status": ("done / running / failed / stale runs of a results root", None, _status),
    "table": ("render the comparison table of a results folder", None, _table),
    "compare": ("paired comparison of every variant with a baseline",
                "Each variant's table cells minus the baseline's, over runs paired by split and "
                "seed, pooled and per column: mean difference, percentile-bootstrap 95% CI, "
                "Wilcoxon signed-rank and sign-test p-values, wins/losses/ties; runs without a "
                "partner are listed.", _compare),
    "plot": ("bars, training curves or a sensitivity plot of a results folder (needs "
             "matplotlib: pip install 'dgbench[plot]')", None, _plot),
    "report": ("one self-contained HTML page: tables, paired comparison, plots, config "
               "differences, environment, deviations, missing and failed runs", None, _report),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; with ``only``, every other command's parser is left
    empty (it is never used for this command line, and filling it imports what it offers)."""
    parser = Parser(prog="dgbench", parents=[COMMON], formatter_class=Formatter,
                    description="Benchmark feature-level domain-generalization augmenters.")
    parser.add_argument("--version", action="version", version=f"dgbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=Parser)
    for name, (help_text, description, fill) in COMMANDS.items():
        p = sub.add_parser(name, parents=[COMMON], formatter_class=Formatter, help=help_text,
                           description=description or help_text[:1].upper() + help_text[1:] + ".")
        if only in (None, name):
            fill(p)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The command an argument list names: its first word that is one."""
    return next((a for a in argv if a in COMMANDS), None)
