"""The ``dgbench`` commands: each parses nothing itself, calls the library and prints.

Registered as the ``func`` of their subparser in :mod:`dgbench.cli.parser`. Each command
imports the parts it uses when it runs: the parsers import this module, and ``dgbench table``
must not pay for torch (the run commands' parts import it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

from dgbench import config as C
from dgbench.core.errors import DGBenchError
from dgbench.cli.listing import list_lines, preset_descriptions
from dgbench.cli.splits import holdout_args, list_splits
from dgbench.core.files import atomic_write_text
from dgbench.run.history import check_tensorboard
from dgbench.store.layout import RECORD, experiment_folders
from dgbench.store.records import scan_folder
from dgbench.store.states import DONE, FAILED, RUNNING, run_state, status_lines


def launch_options(ns: argparse.Namespace) -> Any:
    """The launcher flags as :class:`dgbench.run.launch.Options`, checked (an engine that is
    not installed, impossible counts) before anything is planned or written."""
    from dgbench.run import launch  # lazy: torch

    opts = launch.Options(
        launcher=ns.launcher, jobs=ns.jobs, threads=ns.threads,
        keep_checkpoints=ns.keep_checkpoints, keep_weights=not ns.drop_weights,
        tensorboard=ns.log == "tensorboard",
        ray_address=ns.ray_address, wait=ns.wait,
        slurm={"partition": ns.slurm_partition, "time_min": ns.slurm_time,
               "gpus": ns.slurm_gpus, "array_parallelism": ns.slurm_array_parallelism,
               "local": ns.slurm_local})
    launch.check(opts)
    if opts.tensorboard:
        check_tensorboard()
    return opts


def cmd_run(ns: argparse.Namespace) -> int:
    import torch  # lazy: torch, for this command and the ones below that train or plan
    from dgbench.plan.planner import make_plan, resolve
    from dgbench.run.execute import dry_run, execute, summary
    from dgbench.run.launch import threads_and_source

    opts = launch_options(ns)
    threads, source = threads_and_source(opts)
    torch.set_num_threads(threads)  # recorded in each record's environment
    user = C.user_settings(vars(ns), ns.preset, ns.config, ns.aug_args, ns.overrides)
    plan = make_plan(resolve(user), here=opts.launcher == "local")
    print(f"{summary(plan)}, {threads} CPU thread(s) per run ({source})", flush=True)
    out = Path(ns.out)
    if ns.dry_run:
        print("\n".join(dry_run(plan, out)))
        return 0
    print(f"writing records under {out / plan.experiment}", flush=True)
    if opts.launcher == "local" and opts.jobs == 1:  # here, with progress bars
        done = execute(plan, out, force=ns.force, progress=not ns.no_progress,
                       keep_checkpoints=opts.keep_checkpoints, tensorboard=opts.tensorboard,
                       keep_weights=opts.keep_weights)
        _report(out, [plan.experiment], done.records)
        if done.elsewhere:
            print(f"{len(done.elsewhere)} run(s) are being trained by other processes; "
                  f"'dgbench status {out}' follows them")
        done.raise_failures()
        return 0
    return _launch([(C.to_dict(r.config), r.run_id) for r in plan.runs], out, opts,
                   [plan.experiment])


def cmd_sweep(ns: argparse.Namespace) -> int:
    import torch  # lazy: torch
    from dgbench.plan.planner import make_plan, resolve
    from dgbench.plan.sweep import describe, read_sweep, run_values
    from dgbench.run.launch import threads_and_source

    if ns.json and not ns.dry_run:
        raise DGBenchError("--json lists the planned runs: it goes with --dry-run")
    opts = launch_options(ns)
    threads, source = threads_and_source(opts)
    torch.set_num_threads(threads)
    out, jobs, experiments = Path(ns.out), {}, []
    over = C.user_settings({}, overrides=ns.overrides)
    for point, swept in read_sweep(ns.file, over).labelled_points():  # all planned first
        plan = make_plan(resolve(point), here=opts.launcher == "local")
        experiments.append(plan.experiment)
        for run in plan.runs:  # label: the augmenter, seed and split, then the swept values
            label = " ".join(filter(None, (run.label(), describe(run_values(swept, run.config)))))
            jobs.setdefault((plan.experiment, run.run_id), (C.to_dict(run.config), label))
    states = {key: run_state(out / key[0] / key[1])[0] for key in jobs}
    counts = {s: sum(v == s for v in states.values()) for s in (DONE, RUNNING)}
    todo = [key for key, state in states.items() if state not in (DONE, RUNNING)]
    if ns.json:  # machine-readable: nothing but one run per line
        for (exp, run_id), (tree, label) in jobs.items():
            print(json.dumps({"experiment": exp, "run_id": run_id, "state": states[(exp, run_id)],
                              "label": label, "config": tree}, sort_keys=True))
        return 0
    print(f"sweep {ns.file}: {len(jobs)} runs in {len(set(experiments))} experiment(s): "
          f"{counts[DONE]} {DONE} / {counts[RUNNING]} {RUNNING} / {len(todo)} to launch",
          flush=True)
    if ns.dry_run:
        width = max(len(label) for _, label in jobs.values())
        for (exp, run_id), (_, label) in jobs.items():
            print(f"  {exp}/{run_id}  {label:<{width}}  {states[(exp, run_id)]}")
        return 0
    names = {key[1]: (key[0], jobs[key][1]) for key in todo}
    return _launch([(jobs[key][0], key[1]) for key in todo], out, opts,
                   list(dict.fromkeys(experiments)), log=_progress(out, names))


#: a launcher's line when a run ends: ``[3/8] RUN_ID: STATUS`` (dgbench.run.launch)
PROGRESS = re.compile(r"^(?P<head>\[\d+/\d+\]) (?P<run_id>\w+): (?P<status>\w+)$")


def _progress(out: Path, names: dict[str, tuple[str, str]]) -> Callable[[str], None]:
    """The launcher's log with each ended run named (``names``: run id -> experiment, label
    with the swept values) and, when it finished, its score."""
    def log(line: str) -> None:
        m = PROGRESS.match(line)
        if m and m["run_id"] in names:
            exp, label = names[m["run_id"]]
            line = f"{m['head']} {exp}/{m['run_id']} {label}: {m['status']}"
            if m["status"] == DONE:
                line += f"  {_score(out / exp / m['run_id'])}"
        print(line, flush=True)
    return log


def _score(run_dir: Path) -> str:
    """What a finished run scored, as ``dgbench run`` says it; '' where it cannot be read."""
    from dgbench.tasks._base import get_task  # lazy: torch

    try:
        record = json.loads((run_dir / RECORD).read_text())
        return get_task(record["task"]).outcome(record)
    except (OSError, ValueError, KeyError, TypeError):  # a record another schema wrote
        return ""


def _launch(jobs: list[tuple[dict, str]], out: Path, opts: Any, experiments: list[str],
            log: Callable[[str], None] = print) -> int:
    """Launch, then the tables of what finished and a summary of what did not."""
    from dgbench.run.launch import SUBMITTED, launch  # lazy: torch

    statuses = launch(jobs, out, opts, log)
    if any(s["status"] == SUBMITTED for s in statuses):
        return 0
    _report(out, experiments, None)
    failed = [s for s in statuses if s["status"] == FAILED]
    if failed:
        raise DGBenchError(f"{len(failed)} of {len(statuses)} runs failed (a run that raised "
                           f"says why in its folder's error.json); the first, "
                           f"{failed[0]['run_id']}: {failed[0]['error']}")
    return 0


def _report(out: Path, experiments: list[str], records: list[dict] | None) -> None:
    """The table of each experiment (of ``records`` when given, else of its folder)."""
    from dgbench.report.text import render  # lazy: pandas
    from dgbench.results.frame import load
    from dgbench.results.tables import build_table

    for experiment in experiments:
        folder = out / experiment
        if records is not None:
            if records:
                print()
                print(render(build_table(records)), end="")
            held = scan_folder(folder).records if folder.is_dir() else []
            if len(held) > len(records):
                print(f"\n{folder} holds {len(held)} finished runs; 'dgbench table {folder}' "
                      "shows them all")
        elif folder.is_dir():
            print(f"\n{experiment}:")
            print(render(build_table(load(folder))), end="")


def cmd_status(ns: argparse.Namespace) -> int:
    planned = None
    if ns.sweep:
        from dgbench.plan.planner import make_plan, resolve  # lazy: torch, for --sweep only
        from dgbench.plan.sweep import read_sweep

        planned = {}
        for point in read_sweep(ns.sweep).points():
            plan = make_plan(resolve(point), here=False)  # the ids only
            planned.setdefault(plan.experiment, []).extend(r.run_id for r in plan.runs)
    print("\n".join(status_lines(ns.results, planned)))
    return 0


def _registry(module: str, name: str) -> Callable[[], dict[str, str]]:
    """A registry's entries (name -> one-line description), imported when listed."""
    def rows() -> dict[str, str]:
        registry = getattr(importlib.import_module(module), name)
        return {e.name: e.description for e in registry.entries()}
    return rows


def _backbones() -> dict[str, str]:
    return {**_registry("dgbench.models.backbones", "BACKBONES")(),
            "timm:NAME": "any timm ResNet by name, e.g. timm:resnet26d"}


#: what ``dgbench list KIND`` lists (``fidelity``: the table of docs/fidelity.md)
LIST_KINDS: dict[str, Callable[[], dict[str, str]] | None] = {
    "augmenters": _registry("dgbench.augmenters", "AUGMENTERS"),
    "datasets": _registry("dgbench.data.base", "DATASETS"),
    "protocols": _registry("dgbench.data.protocols", "PROTOCOLS"),
    "backbones": _backbones, "presets": preset_descriptions, "fidelity": None,
}


def cmd_list(ns: argparse.Namespace) -> int:
    if ns.markdown and ns.kind != "augmenters":
        raise DGBenchError("--markdown is for 'dgbench list augmenters'")
    if ns.kind == "fidelity":  # docs/fidelity.md
        from dgbench.report.fidelity import markdown  # lazy: torch (it reads the models)

        print(markdown(), end="")
        return 0
    if ns.markdown:
        from dgbench.report.augmenter_table import augmenter_markdown  # lazy: torch

        print(augmenter_markdown(), end="")
        return 0
    chosen = [ns.kind] if ns.kind else [k for k, rows in LIST_KINDS.items() if rows]
    width = shutil.get_terminal_size().columns
    for i, kind in enumerate(chosen):
        rows = LIST_KINDS[kind]()  # type: ignore[misc]
        print(("\n" if i else "") + f"{kind}:")
        print("\n".join(list_lines(rows, width)))
    return 0


def cmd_table(ns: argparse.Namespace) -> int:
    from dgbench.report.text import render  # lazy: pandas
    from dgbench.results.frame import load
    from dgbench.results.stats import mark_significant
    from dgbench.results.tables import build_table

    error = ns.error or ("se" if ns.format == "domainbed" else "std")  # DomainBed reports SE

    def one(folder: Path) -> str:
        table = build_table(load(folder), ns.select, error, ns.per_target)
        if ns.mark_significant:
            mark_significant(table, ns.baseline, ns.test, ns.alpha)
        return render(table, ns.format, ns.compare_paper, bold=not ns.no_bold)
    _write(_each_experiment(ns.folder, one), ns.output)
    return 0


def cmd_compare(ns: argparse.Namespace) -> int:
    from dgbench.report.compare import render_comparison  # lazy: pandas
    from dgbench.results.frame import load
    from dgbench.results.stats import compare

    def one(folder: Path) -> str:
        return render_comparison(compare(load(folder), ns.baseline, ns.select, ns.seed,
                                         ns.bootstrap, per_target=not ns.pooled_only,
                                         table_per_target=ns.per_target), ns.format)
    _write(_each_experiment(ns.results, one), ns.output)
    return 0


def _each_experiment(path: str, make: Callable[[Path], str]) -> str:
    """``make(folder)`` of each experiment ``path`` names (a results root or one experiment's
    folder: :func:`dgbench.store.layout.experiment_folders`), all made before any is shown,
    each under its name when there are several; one that cannot be made says why in its
    place, unless none can (then the first error is raised)."""
    folders = experiment_folders(path)
    if len(folders) == 1:
        return make(folders[0])
    texts, errors = [], []
    for folder in folders:
        try:
            texts.append(make(folder))
        except DGBenchError as exc:
            errors.append(exc)
            texts.append(f"(nothing shown: {exc})\n")
    if len(errors) == len(folders):
        raise errors[0]
    return "\n".join(f"{folder.name}:\n\n{text}" for folder, text in zip(folders, texts))


def _write(text: str, output: str | None) -> None:
    """``text`` to the file ``output`` (atomically), or to stdout."""
    if output:
        atomic_write_text(Path(output), text)
        print(f"wrote {output}")
    else:
        print(text, end="")


def cmd_data(ns: argparse.Namespace) -> int:
    from dgbench.data.base import DATASETS  # lazy: torch
    from dgbench.data.imagecache import verify_dataset
    from dgbench.plan.planner import resolve

    verify = ns.words[0] == "verify"
    if len(ns.words) != 1 + verify:
        raise DGBenchError("usage: dgbench data NAME, or dgbench data verify NAME")
    name = ns.words[-1]
    user = {"data.name": name}
    if ns.image_size is not None:
        C.set_value(user, "data.image_size", ns.image_size, from_text=True)
    cfg = resolve(user).data  # the dataset's own image size unless given
    holdout = holdout_args(ns) if ns.list_splits else None  # checked before reading data
    dataset = DATASETS.get(name)(ns.data_root, cfg.image_size)
    if holdout is not None:
        return list_splits(dataset, name, *holdout)
    if verify:
        print(verify_dataset(dataset, name, cfg.image_size))
        return 0
    print(f"dataset {name}: {DATASETS.entry(name).description}")
    print("\n".join(dataset.report()))
    return 0


def cmd_download(ns: argparse.Namespace) -> int:
    from dgbench.data.base import DATASETS  # lazy: torch

    dest = ns.dest or os.environ.get("DGBENCH_DATA") or "data"
    cls = DATASETS.get(ns.name)
    facts = cls.download(Path(dest), url=ns.url, sha256=ns.sha256, progress=not ns.no_progress)
    print(f"{ns.name} installed in {facts['path']} (archive sha256 {facts['archive_sha256']}); "
          "its files match the reference content digests")
    print(f"use it with --data-root {dest} (or DGBENCH_DATA={dest}); "
          f"check it with 'dgbench data {ns.name} --data-root {dest}'")
    return 0


def cmd_synth_reid(ns: argparse.Namespace) -> int:
    from dgbench.data.synthreid import generate  # lazy: numpy, PIL, SciPy

    paths = generate(ns.dest, seed=ns.seed, scale=ns.scale)
    for name, path in paths.items():
        print(f"{name}: {path}")
    print(f"use them with --data-root {ns.dest}, e.g. dgbench run --preset reid-synth-cpu "
          f"--data-root {ns.dest}")
    return 0


def cmd_inspect(ns: argparse.Namespace) -> int:
    from dgbench.report import inspector  # lazy: torch

    if ns.plot and importlib.util.find_spec("matplotlib") is None:
        raise DGBenchError("--plot needs matplotlib: pip install 'dgbench[plot]'")
    if ns.channels < 1:
        raise DGBenchError(f"--channels must be at least 1; got {ns.channels}")
    if ns.plot and Path(ns.plot).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise DGBenchError(f"--plot {ns.plot} must end in .png, .pdf or .svg (the format)")
    found = inspector.inspect_features(
        ns.aug, ns.dataset, ns.data_root, ns.domains, ns.content, ns.style, ns.block,
        ns.backbone, ns.image_size, ns.pretrained, ns.weights, ns.seed)
    print(found.header())
    print(inspector.render_rows(found.rows, ns.per_channel), end="")
    if ns.plot:
        inspector.plot(found.maps, found.rows, ns.plot, ns.channels)
        print(f"histograms written to {ns.plot}")
    return 0


def cmd_plot(ns: argparse.Namespace) -> int:
    from dgbench.report.plots import plot  # lazy: pandas (matplotlib when drawing)
    from dgbench.results.frame import load

    folders = experiment_folders(ns.results)
    if len(folders) > 1:
        raise DGBenchError(f"{ns.results} holds {len(folders)} experiments "
                           f"({', '.join(f.name for f in folders)}); a plot draws one: pass "
                           f"its folder, e.g. {folders[0]}")
    frame = load(folders[0])
    if frame.empty:
        raise DGBenchError(f"no finished runs under {ns.results}; nothing to plot")
    print(f"wrote {plot(frame, ns.kind, ns.output, by=ns.by, select=ns.select, error=ns.error)}")
    return 0


def cmd_report(ns: argparse.Namespace) -> int:
    from dgbench.report.html import write_report  # lazy: pandas (matplotlib when drawing)

    out = write_report(ns.results, ns.output, baseline=ns.baseline, select=ns.select,
                       error=ns.error, by=ns.by, test=ns.test, alpha=ns.alpha)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB, self-contained: open it in a browser)")
    return 0
