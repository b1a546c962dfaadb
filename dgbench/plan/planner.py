"""From a user's config to a checked list of runs, before anything trains or is written.

Every check that can fail on user input happens here or in the config layer: names, types
and ranges (:mod:`dgbench.config`), augmenter arguments, insertion points, protocol targets,
impossible settings. Each :class:`~dgbench.plan.runs.Run` holds a fully resolved single-run
config (one augmenter with all its arguments, one seed, one split), which is what the run
record stores and what the run's folder name hashes.
"""

from __future__ import annotations

import copy
import shutil
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from dgbench import config as C
from dgbench.augmenters import AUGMENTERS
from dgbench.core.device import cpu_has_bf16, resolve_device
from dgbench.core.errors import ConfigError
from dgbench.data.base import DATASETS, DomainDataset
from dgbench.data.protocols import PROTOCOLS, Protocol, Split
from dgbench.models.backbones import check_backbone
from dgbench.models.insertion import check_insert, default_insert
from dgbench.plan.augargs import augmenter_kwargs, check_shared_args
from dgbench.plan.domainbed import run_settings
from dgbench.plan.runs import Run, run_id
from dgbench.tasks._base import Task, get_task


@dataclass
class Plan:
    experiment: str
    config: C.Config
    dataset: DomainDataset
    protocol: Protocol
    task: Task
    runs: list[Run]
    target: DomainDataset | None = None  # cross-dataset protocols: the dataset tested on
    device: str | None = None  # where the runs train, when that is here; None: elsewhere


def resolve(user: dict[str, Any]) -> C.Config:
    """Defaults, then the dataset's recommended settings, the protocol's for it, then the
    user's checked keys."""
    name = user.get("data.name", C.DataConfig.name)
    protocol = PROTOCOLS.get(user.get("protocol.name", C.ProtocolConfig.name))()
    flat: dict[str, Any] = {}
    for key, value in {**DATASETS.get(name).defaults,
                       **protocol.defaults(DATASETS.get(name), user)}.items():
        C.set_value(flat, key, value, from_text=False)
    flat.update(user)
    return C.build(flat)


def _datasets(cfg: C.Config, protocol: Protocol) -> tuple[DomainDataset, DomainDataset | None,
                                                          list[Split]]:
    """The training dataset, the target dataset (cross-dataset protocols) and the splits."""
    dataset = DATASETS.get(cfg.data.name)(cfg.data.root, cfg.data.image_size)
    if protocol.task != dataset.task:
        task = get_task(dataset.task)
        raise ConfigError(f"{cfg.data.name} is a {task.noun} dataset, and protocol "
                          f"{cfg.protocol.name} is for {get_task(protocol.task).noun} ones: "
                          f"{task.usage}")
    if not protocol.needs_target:
        if cfg.protocol.target or cfg.protocol.splits is not None:
            raise ConfigError(f"protocol.target / protocol.splits are for cross-dataset "
                              f"protocols (--protocol reid), not {cfg.protocol.name}")
        return dataset, None, protocol.select(dataset, cfg.protocol.targets,
                                              loo_validation=cfg.protocol.loo_validation)
    if not cfg.protocol.target:
        raise ConfigError(f"protocol {cfg.protocol.name} needs protocol.target (--target "
                          "NAME): the dataset to test on")
    if cfg.protocol.target == cfg.data.name:
        raise ConfigError("protocol.target must differ from data.name (cross-dataset)")
    target = DATASETS.get(cfg.protocol.target)(cfg.data.root, cfg.data.image_size)
    splits = protocol.select(dataset, cfg.protocol.targets, target=target,
                             indices=cfg.protocol.splits, source_name=cfg.data.name,
                             target_name=cfg.protocol.target,
                             loo_validation=cfg.protocol.loo_validation)
    return dataset, target, splits


def _sampler(cfg: C.Config, aug: str, kwargs: dict[str, Any]) -> str:
    """``train.sampler`` for augmenter ``aug``: auto means domain pairs for mix=crossdomain."""
    crossdomain = kwargs.get("mix") == "crossdomain"
    sampler = cfg.train.sampler
    if sampler == "auto":
        sampler = "domain" if crossdomain else "random"
    if crossdomain and sampler != "domain":
        raise ConfigError(f"{aug} with mix=crossdomain needs batches laid out [domain A | "
                          "domain B]: set train.sampler=domain (or auto)")
    if sampler == "domain" and cfg.data.batch_size < 2:  # half a batch from each domain
        raise ConfigError(f"the domain sampler ({aug}) fills each batch from two domains: "
                          f"data.batch_size must be >= 2; got {cfg.data.batch_size}")
    return sampler


def _warn_learning_rate(cfg: C.Config) -> None:
    """A learning rate far above what the dataset recommends usually diverges: say so first."""
    usual = DATASETS.get(cfg.data.name).defaults.get("train.lr", C.FIELDS["train.lr"].default)
    if cfg.train.lr >= 1.0 or cfg.train.lr > 50 * usual:
        warnings.warn(f"train.lr {cfg.train.lr:g} is {cfg.train.lr / usual:.0f}x the "
                      f"{cfg.data.name} recommendation ({usual:g}); such runs usually diverge")


def _check_speed_settings(cfg: C.Config, device: str) -> None:
    """``train.compile`` needs a compiler where it compiles; ``train.cpu_amp`` on a CPU
    without bf16 units is allowed, with a warning of what it costs."""
    if cfg.train.compile and device == "cpu" and not (shutil.which("g++") or shutil.which("c++")):
        raise ConfigError("train.compile on the CPU needs a C++ compiler (g++) for torch.compile; "
                          "install one (apt-get install -y g++) or drop train.compile")
    if cfg.train.cpu_amp and device == "cpu" and not cpu_has_bf16():
        warnings.warn(f"train.cpu_amp: this CPU ({torch.backends.cpu.get_cpu_capability()} "
                      "kernels) has no bf16 units (AVX-512 bf16 / AMX); bfloat16 autocast trains "
                      "slower than float32 here (6-8x on an AVX2 EPYC: scripts/bench_train.py "
                      "--what amp)")


def _settings(cfg: C.Config, dataset: DomainDataset, split: Split, seed: int, aug: str,
              kwargs: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any], int | None]]:
    """The runs of one (augmenter, split, seed): (config keys fixed, augmenter arguments, a
    derived training seed); one run unless the split is DomainBed's (one per hparams seed)."""
    if split.holdout:
        return run_settings(cfg, dataset, split, seed, aug, kwargs)
    return [({}, kwargs, None)]


def _step_settings(cfg: C.Config, split: Split) -> C.Config:
    """Step-based training only under DomainBed's protocol, and there no image cache."""
    if not split.holdout and (cfg.train.steps or cfg.train.checkpoint_freq):
        raise ConfigError(f"train.steps / train.checkpoint_freq (step-based training) belong to "
                          f"DomainBed's protocol: use --protocol domainbed, or train.epochs "
                          f"with --protocol {cfg.protocol.name}")
    if split.holdout and cfg.data.cache:  # its batched augmentation is Dassl's
        cfg = copy.copy(cfg)
        cfg.data = copy.copy(cfg.data)
        cfg.data.cache = False
    return cfg


def _with_train(cfg: C.Config, train: C.TrainConfig) -> C.Config:
    out = copy.copy(cfg)
    out.train = train
    return out


def make_plan(cfg: C.Config, here: bool = True) -> Plan:
    """Check ``cfg`` and expand it into runs; raises :class:`ConfigError`/`DataError`.

    The runs' configs hold the device and CUDA's speed settings as asked: each run resolves
    them on the machine that trains it (:class:`dgbench.core.device.Env`). ``here``: the runs
    train on this machine, so what depends on it (a CUDA device that must exist, a compiler
    for ``train.compile``, bf16 units for ``train.cpu_amp``) is checked now; a launcher that
    trains elsewhere (Ray, SLURM) leaves those checks to the machine that trains."""
    C.validate(cfg)
    names = list(dict.fromkeys(cfg.aug.names))
    for name in names:
        AUGMENTERS.entry(name)
    check_shared_args(cfg.aug.args, names)
    kwargs = {n: augmenter_kwargs(n, cfg.aug.args, names) for n in names}
    protocol: Protocol = PROTOCOLS.get(cfg.protocol.name)()
    check_backbone(cfg.model.backbone, cfg.model.pretrained, cfg.model.width)
    device = resolve_device(cfg.device) if here else None
    dataset, target, splits = _datasets(cfg, protocol)
    task = get_task(dataset.task)
    # the network the runs will train, without downloads: insertion points and local
    # weights are checked before anything trains
    try:
        probe = task.build_model(cfg, task.num_outputs(dataset, splits[0]), pretrained=False)
    except (MemoryError, RuntimeError) as exc:  # torch says "can't allocate memory"
        if not isinstance(exc, MemoryError) and "allocate" not in str(exc):
            raise
        raise ConfigError(f"the network as configured ({cfg.model.backbone}, model.width="
                          f"{cfg.model.width}) does not fit in this machine's memory") from None
    insert = list(cfg.aug.insert) if cfg.aug.insert is not None else default_insert(probe)
    check_insert(probe, insert)

    cfg = _step_settings(cfg, splits[0])
    _warn_learning_rate(cfg)
    if device is not None:
        _check_speed_settings(cfg, device)
    experiment = cfg.experiment or (
        f"{cfg.data.name}-to-{cfg.protocol.target}" if target is not None
        else f"{cfg.data.name}-{cfg.protocol.name}")
    data_version = dataset.describe().get("version")
    runs = []
    for name in names:
        sampler = _sampler(cfg, name, kwargs[name])
        sized = copy.copy(cfg.train)
        sized.sampler = sampler
        for split in splits:
            if sampler == "domain":
                task.check_domains(name, dataset, split)
            if not split.holdout:
                task.check_data(_with_train(cfg, sized), split, dataset, target)
            for seed in cfg.seeds:
                for fixes, args, derived in _settings(cfg, dataset, split, seed, name, kwargs[name]):
                    run_cfg = copy.deepcopy(cfg)
                    run_cfg.experiment, run_cfg.seeds = experiment, [seed]
                    run_cfg.aug.names, run_cfg.aug.args = [name], dict(args)
                    run_cfg.aug.insert, run_cfg.train.sampler = insert, sampler
                    run_cfg.protocol.targets = [split.name]
                    for key, value in {**split.fixes, **fixes}.items():
                        C.assign(run_cfg, key, value)
                    if not dataset.supports_cache:  # record what really happens
                        run_cfg.data.cache = False
                    if split.holdout:  # the trial's parts and the drawn batch
                        task.check_data(run_cfg, split, dataset, target)
                    runs.append(Run(run_cfg, split, run_id(run_cfg, data_version), derived))
    return Plan(experiment, cfg, dataset, protocol, task, runs, target, device)
