"""``docs/fidelity.md``: dgbench against the official code, item by item.

Each item names the official value and where it comes from, and reads dgbench's value from the
code or the presets themselves (a callable), so the table cannot drift from what runs:
``tests/test_fidelity.py`` checks the committed file against :func:`markdown` and every item
marked "same" against its official value. Departures name the text recorded in the runs they
affect (:mod:`dgbench.run.deviations`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import torchvision
from tabulate import tabulate

from dgbench.augmenters import AUGMENTERS
from dgbench.config import read_preset
from dgbench.core import keys
from dgbench.data.domainbed import holdout_keys
from dgbench.data.samplers import evaluation_steps
from dgbench.datasets.pacs import EXCLUDED, PACS
from dgbench.models.insertion import resolve_points
from dgbench.models.osnet import OSNet
from dgbench.plan.domainbed import RECIPES, STEPS, erm_hparams
from dgbench.plan.planner import resolve
from dgbench.tasks.evaluate import ORACLE_FRACTION

_UNSET = object()


@dataclass(frozen=True)
class Item:
    section: str
    what: str
    official: str  # the official value, with its source
    ours: Callable[[], Any] | str  # dgbench's value, read from code / presets, or said
    expected: Any = _UNSET  # for "same" items read from code: must equal ours()
    #: same | departure (recorded: in the runs' deviations) | departure (documented: a table
    #: rule, said here and in the README) | missing
    status: str = "same"
    #: for a value read from code, what it is (setting, default, preset) with {0}, {1} ... for
    #: its parts (a tuple's items; a list is written comma-separated)
    shows: str = ""

    def value(self) -> Any:
        return self.ours() if callable(self.ours) else self.ours

    def said(self) -> str:
        """The dgbench column: the value with what it is (setting, default, preset)."""
        value = self.value()
        if not callable(self.ours):
            return value
        if not self.shows:
            raise ValueError(f"fidelity item {self.what!r}: say what its value is (shows=...)")
        parts = value if isinstance(value, tuple) else (value,)
        return self.shows.format(*(", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v
                                   for v in parts))


def _default(aug: str, arg: str) -> Any:
    return inspect.signature(AUGMENTERS.get(aug)).parameters[arg].default


def _oracle_fraction() -> float:
    return ORACLE_FRACTION


def _domainbed_split() -> tuple:
    return 13, 0, 1, holdout_keys(13, 0, 1)[0]


def _preset_db(recipe: str) -> str:
    return resolve({"data.name": "pacs", "protocol.name": "domainbed",
                    "protocol.recipe": recipe}).model.backbone


def _preset(name: str, key: str) -> Any:
    return keys.get(resolve(read_preset(name)), key)


def _dataset_default(name: str, key: str) -> Any:
    return keys.get(resolve({"data.name": name}), key)


def _padain_points() -> int:
    return len(resolve_points(torchvision.models.resnet18(), read_preset("padain-official")["aug.insert"]))


def _osnet_keys() -> tuple[int, int]:
    net = OSNet(751)
    return len(net.state_dict()), sum(p.numel() for n, p in net.named_parameters()
                                      if not n.startswith("classifier"))


def _pacs(key: str) -> Callable[[], Any]:
    return lambda: _preset("efdm-pacs-lodo-r18", key)


def _reid(key: str) -> Callable[[], Any]:
    return lambda: _preset("efdm-reid-market2grid-osnet", key)


A, P, R, T = ("1. Augmenters", "2. PACS", "3. Re-identification", "4. Tables")
D = "5. DomainBed's protocol"
DB, DB20 = "DomainBed HEAD b93c22a", "DomainBed 7df6f06"
MS, EF, DA = "MixStyle code, Dassl ops/mixstyle.py", "EFDM code, Dassl ops/efdmix.py", "Dassl"
ITEMS = [
    Item(A, "gate probability p (MixStyle, EFDMix)", "0.5, one draw per call (" + MS + ")",
         lambda: (_default("mixstyle", "p"), _default("efdmix", "p")), (0.5, 0.5),
         shows="defaults: mixstyle p={0}, efdmix p={1}"),
    Item(A, "Beta concentration alpha", "0.1 (" + MS + ")",
         lambda: (_default("mixstyle", "alpha"), _default("efdmix", "alpha")), (0.1, 0.1),
         shows="defaults: mixstyle alpha={0}, efdmix alpha={1}"),
    Item(A, "default pairing", "random (" + MS + ")", lambda: _default("efdmix", "mix"), "random",
         shows="default: efdmix mix={0}"),
    Item(A, "lambda", "Beta(alpha, alpha), one per sample (" + MS + ")",
         "augmenters._pairing.beta_weights: one per sample, (B, 1, 1, 1)"),
    Item(A, "crossdomain pairing, even batch", "each half paired with the other, shuffled (" + MS + ")",
         "augmenters._pairing.partner_indices: a bijection across halves"),
    Item(A, "crossdomain pairing, odd batch", "the middle sample may pair with itself or with A "
         "(Dassl's current code); the ReID copies fail", "A and B pair across halves only; one B "
         "sample serves twice", status="departure (recorded)"),
    Item(A, "one instance at every point", "shared (Dassl's ResNet)",
         "one per point by default, aug.shared=true shares; same draws either way"),
    Item(A, "random source of the gate", "Python random (" + MS + "); numpy (DSU)",
         "torch's CPU generator, seeded by the run", status="departure (recorded)"),
    Item(A, "MixStyle statistics", "unbiased variance, eps 1e-6, mu and sig detached (" + MS + ")",
         lambda: _default("mixstyle", "eps"), 1e-6,
         shows="default: mixstyle eps={0}"),
    Item(A, "MixStyle on a 1x1 map", "NaN (" + MS + ")", "returned unchanged",
         status="departure (recorded)"),
    Item(A, "EFDMix matching", "partner's value of the same rank, two sorts + gather (" + EF + ")",
         "one sort + one scatter: the same values and gradients (tested against the official "
         "formulation)"),
    Item(A, "EFDMix gradient", "x + (1 - lambda)(matched - x.detach()): identity to x, partner "
         "not detached (" + EF + ")", "the same (a custom lerp backward)"),
    Item(A, "EFDM", "EFDMix at lambda 0 (EFDM paper)", "efdm: lambda 0"),
    Item(A, "HM (histogram matching)", "binned eCDF matching (docs/protocols.md); EFDM's "
         "MixHistogram matches with scikit-image, no bins", lambda: (_default("hm", "bins"),
                                                                     _default("mixhm", "bins")), (64, 0),
         shows="defaults: hm bins={0}, mixhm bins={1} (0: exact)"),
    Item(A, "HM gradient", "x + (HM - x).detach() (1 - lambda): identity to x, nothing to the "
         "partner (EFDM reid/models/mixhm.py)", lambda: _default("hm", "partner_grad"), False,
         shows="default: hm partner_grad={0}"),
    Item(A, "mixhm", "lambda x + (1 - lambda) HM, lambda ~ Beta(0.1, 0.1) (EFDM MixHistogram)",
         lambda: _default("mixhm", "alpha"), 0.1,
         shows="default: mixhm alpha={0} (Beta(alpha, alpha))"),
    Item(A, "AdaIN", "MixStyle at lambda 0", "adain: lambda 0"),
    Item(A, "DSU", "p 0.5, eps 1e-6, batch std of the statistics, nothing detached (DSU code)",
         lambda: (_default("dsu", "p"), _default("dsu", "eps")), (0.5, 1e-6),
         shows="defaults: dsu p={0}, eps={1}"),
    Item(A, "DSU placement", "before bn1, after maxpool, after layer1-4 (DSU UResNet)",
         lambda: _preset("dsu-official", "aug.insert"),
         ["before:bn1", "after:maxpool", "layer1", "layer2", "layer3", "layer4"],
         shows="preset dsu-official: aug.insert={0}"),
    Item(A, "DSU on a 1x1 map or one sample", "NaN (DSU code)", "returned unchanged",
         status="departure (recorded)"),
    Item(A, "pAdaIN", "p 0.01, eps 1e-5, style detached, content std sqrt(var + eps) + eps "
         "(PermutedAdaIN)", lambda: (_default("padain", "p"), _default("padain", "eps")), (0.01, 1e-5),
         shows="defaults: padain p={0}, eps={1}"),
    Item(A, "pAdaIN placement", "stem conv and every residual conv, never a shortcut: 17 on "
         "ResNet-18 (PermutedAdaIN resnet.py)", _padain_points, 17,
         shows="{0} points: preset padain-official's aug.insert on a ResNet-18"),
    Item(A, "pAdaIN on a 1x1 map", "returned unchanged (PermutedAdaIN)", "returned unchanged"),
    Item(P, "domains, classes, split files", "4 domains, 7 classes, kfold files, 1-based labels",
         "datasets/pacs.py: the same; errors name file and line"),
    Item(P, "broken sketch", "sketch/dog/n02103406_4068-1.png skipped (" + DA + ")",
         lambda: EXCLUDED,
         ("sketch/dog/n02103406_4068-1.png",),
         shows="datasets/pacs.py EXCLUDED: {0}"),
    Item(P, "LODO splits", "train_kfold of the sources, crossval validates, whole target tests",
         "data.protocols lodo: the same (sizes checked on the real copy)"),
    Item(P, "backbone", "ImageNet torchvision ResNet V1 weights", _pacs("model.pretrained"), True,
         shows="preset efdm-pacs-lodo-r18: model.pretrained={0}"),
    Item(P, "placement ResNet-18 / -50 LODO", "layer1-3 / layer1-2 (EFDM scripts)",
         lambda: (_preset("efdm-pacs-lodo-r18", "aug.insert"), _preset("efdm-pacs-lodo-r50", "aug.insert")),
         (["layer1", "layer2", "layer3"], ["layer1", "layer2"]),
         shows="aug.insert: preset efdm-pacs-lodo-r18 {0}; efdm-pacs-lodo-r50 {1}"),
    Item(P, "input and test transform", "224; resize 224 + centre crop (" + DA + ")",
         _pacs("data.image_size"), 224,
         shows="preset efdm-pacs-lodo-r18: data.image_size={0}"),
    Item(P, "training transform", "resize to 224, with p 0.5 resize to 252 and crop at "
         "round(uniform(0, 28)), flip (Dassl Random2DTranslation)", "the same on both paths "
         "(the cache draws per batch from a torch generator: recorded)"),
    Item(P, "optimiser", "SGD lr 1e-3, momentum 0.9, weight decay 5e-4, no nesterov, cosine",
         lambda: tuple(_preset("efdm-pacs-lodo-r18", f"train.{k}") for k in
                       ("lr", "momentum", "weight_decay", "nesterov", "schedule")),
         (0.001, 0.9, 0.0005, False, "cosine"),
         shows="preset efdm-pacs-lodo-r18: train.lr={0}, momentum={1}, weight_decay={2}, "
         "nesterov={3}, schedule={4}"),
    Item(P, "LR schedule stepping", "stepped when the batch index reaches a length measured once "
         "(" + DA + " trainer): skipped in many epochs", "set from progress every epoch",
         status="departure (recorded)"),
    Item(P, "crossdomain LODO", "batch 2 x 64, 150 epochs (EFDM pacs_crossdomain.yaml)",
         lambda: (_preset("efdm-pacs-lodo-r18", "data.batch_size"), _preset("efdm-pacs-lodo-r18", "train.epochs")),
         (128, 150),
         shows="preset efdm-pacs-lodo-r18: data.batch_size={0} (2 x 64), train.epochs={1}"),
    Item(P, "crossdomain epoch", "ends when a drawn domain has < 64 left (Dassl RandomDomainSampler)",
         _pacs("train.domain_epoch"), "dassl",
         shows="preset efdm-pacs-lodo-r18: train.domain_epoch={0}"),
    Item(P, "random mixing LODO", "random sampler, batch 64, 50 epochs (pacs_random.yaml)",
         lambda: (_preset("efdm-pacs-lodo-r18-random", "data.batch_size"),
                  _preset("efdm-pacs-lodo-r18-random", "train.epochs")), (64, 50),
         shows="preset efdm-pacs-lodo-r18-random: data.batch_size={0}, train.epochs={1}"),
    Item(P, "single-source", "batch 64, 50 epochs, random, layer1-3 for both ResNets, pooled "
         "accuracy on the other three", lambda: _preset("efdm-pacs-single-r50", "aug.insert"),
         ["layer1", "layer2", "layer3"],
         shows="preset efdm-pacs-single-r50: aug.insert={0}"),
    Item(P, "PACS outside the presets", "every published run starts from ImageNet weights",
         lambda: _dataset_default("pacs", "model.pretrained"), True,
         shows="dataset pacs's default: model.pretrained={0}"),
    Item(P, "result", "last epoch, 5 seeds, population std, Avg = mean of the column means",
         _pacs("seeds"), [1, 2, 3, 4, 5],
         shows="preset efdm-pacs-lodo-r18: seeds={0}"),
    Item(R, "Market-1501 rules", "regex ([-\\d]+)_c(\\d), junk dropped, 0000 kept, cameras "
         "0-based, sorted relabel (torchreid)", "datasets/market1501.py: the same"),
    Item(R, "GRID splits", "10 from trainIdxAll, train ids relabelled in file order (torchreid)",
         "datasets/grid.py: the same"),
    Item(R, "metric", "cosine distance; same id and camera removed; CMC, non-interpolated AP "
         "(torchreid eval_market1501)", "tasks.evaluate.rank_metrics: the same"),
    Item(R, "ranking ties", "NumPy quicksort: unspecified order", "stable: gallery order",
         status="departure (recorded)"),
    Item(R, "OSNet x1.0", "torchreid osnet_x1_0: 567 state entries, 2,169,508 parameters "
         "without the classifier", _osnet_keys, (567, 2169508),
         shows="OSNet(751): {0} state entries, {1} parameters without the classifier"),
    Item(R, "augmenter placement", "OSNet after conv2 and conv3; ResNet-50 after layer1-2 "
         "(EFDM reid models)", _reid("aug.insert"), ["conv2", "conv3"],
         shows="preset efdm-reid-market2grid-osnet: aug.insert={0}"),
    Item(R, "input and augmentation", "256 x 128, flip, colour jitter 0.2 / 0.15 (torchreid)",
         _reid("data.image_size"), 256,
         shows="preset efdm-reid-market2grid-osnet: data.image_size={0} (the height; width half)"),
    Item(R, "loss", "cross-entropy, label smoothing 0.1, no triplet", _reid("train.label_smoothing"), 0.1,
         shows="preset efdm-reid-market2grid-osnet: train.label_smoothing={0}"),
    Item(R, "optimiser", "SGD lr 0.05 new layers, x0.2 the rest, momentum 0.9, weight decay 1e-5, "
         "batch 32, 60 epochs (EFDM cfg_osnet.yaml)",
         lambda: tuple(_preset("efdm-reid-market2grid-osnet", k) for k in
                       ("train.lr", "train.backbone_lr_mult", "train.weight_decay",
                        "data.batch_size", "train.epochs")), (0.05, 0.2, 1e-5, 32, 60),
         shows="preset efdm-reid-market2grid-osnet: train.lr={0}, backbone_lr_mult={1}, "
         "weight_decay={2}, data.batch_size={3}, train.epochs={4}"),
    Item(R, "LR schedule", "single_step stepsize [20] = StepLR(20): x0.1 at 20 and 40",
         _reid("train.step_epochs"), [20, 40],
         shows="preset efdm-reid-market2grid-osnet: train.step_epochs={0}"),
    Item(R, "ReID defaults outside presets", "the same schedule",
         lambda: _dataset_default("market1501", "train.step_epochs"), [20, 40],
         shows="dataset market1501's default: train.step_epochs={0}"),
    Item(R, "new layers' start", "normal(0, 0.01), bias 0 (torchreid _init_params)",
         "models.reidnet.linear_init, models.osnet._init"),
    Item(R, "camera-as-domain recipe", "2 cameras x 16, 180 epochs, stepsize 60 (MixStyle domprior)",
         lambda: (_preset("mixstyle-reid-market2grid-camera", "train.epochs"),
                  _preset("mixstyle-reid-market2grid-camera", "train.step_epochs")), (180, [60, 120]),
         shows="preset mixstyle-reid-market2grid-camera: train.epochs={0}, train.step_epochs={1}"),
    Item(R, "GRID -> Market-1501", "EFDM: 3 runs of split 0 (the seed never passed)",
         lambda: _preset("efdm-reid-grid2market-osnet", "protocol.splits"), [0],
         shows="preset efdm-reid-grid2market-osnet: protocol.splits={0}"),
    Item(R, "pretrained weights", "torchvision / torchreid files, no checksum for OSNet's",
         "downloaded by dgbench, hash-checked where known, URL and sha256 in every record"),
    Item(T, "error bars", "population std (Dassl, EFDM); standard error (DomainBed)",
         "--error std (default) / se; the estimator in every caption"),
    Item(T, "selection", "last epoch (EFDM, MixStyle); training-domain validation; "
         "leave-one-domain-out validation (DomainBed)", "--select last / val / loo"),
    Item(T, "training-domain validation (--select val): the score",
         "the mean over the source domains of each one's held-out accuracy (DomainBed "
         "IIDAccuracySelectionMethod)", "the sources' validation sets pooled: correct / images, "
         "so a larger source domain weighs more", status="departure (documented)"),
    Item(T, "ties in model selection",
         "DomainBed: the earliest checkpoint of a run's equal best (Q.argmax); across "
         "hyperparameters a stable sort reversed, so the last-loaded of equal ones",
         "val / test-best / loo: the latest epoch of equal ones; oracle: the earliest run id "
         "of equal ones", status="departure (documented)"),
    Item(T, "test-domain oracle (--select oracle): share of the target held out",
         "DomainBed: holdout_fraction 0.2, split by trial seed; the final checkpoint of the "
         "hyperparameters best on it, reported on the other 80%", _oracle_fraction, 0.2,
         shows="tasks.evaluate.ORACLE_FRACTION={0}"),
    Item(D, "split of each domain", f"ImageFolder order; misc.split_dataset(env, int(len(env) * "
         f"0.2), seed_hash(trial_seed, env_i)), 'out' first ({DB}, {DB20}; tests/"
         "test_domainbed.py runs their code)", _domainbed_split, (13, 0, 1, [0, 7]),
         shows="holdout_keys(n={0}, trial_seed={1}, env={2}) 'out' = {3}"),
    Item(D, "holdout fraction", "--holdout_fraction 0.2 (" + DB + ")",
         lambda: resolve({"protocol.name": "domainbed"}).protocol.holdout_fraction, 0.2,
         shows="protocol.holdout_fraction={0}"),
    Item(D, "ERM hyperparameter draws", "hparams_seed 0: lr 5e-5, batch 32 per domain, weight "
         "decay 0, dropout 0; else drawn from seed_hash(hparams_seed, trial_seed): 2020 one "
         "RandomState in order, HEAD one per name (" + DB20 + ", " + DB + ")",
         lambda: erm_hparams("domainbed", "PACS", 0, 0),
         {"resnet_dropout": 0.0, "lr": 5e-05, "batch_size": 32, "weight_decay": 0.0},
         shows="plan.domainbed.erm_hparams (hparams_seed 0): {0}"),
    Item(D, "steps, evaluation every", "5001 steps; CHECKPOINT_FREQ 300 (PACS, VLCS, "
         "OfficeHome, TerraIncognita), 1000 (DomainNet), 100 otherwise (" + DB + ")",
         lambda: (STEPS, PACS.domainbed_checkpoint_freq), (5001, 300),
         shows="plan.domainbed.STEPS={0}, pacs checkpoint_freq={1}"),
    Item(D, "when it evaluates", "step % checkpoint_freq == 0 (" + DB20 + "); also the last "
         "step (" + DB + ")",
         lambda: (evaluation_steps(8, 3, False), evaluation_steps(8, 3, True)),
         ([0, 3, 6], [0, 3, 6, 7]),
         shows="evaluation_steps(8 steps, every 3): 2020 {0}; HEAD {1}"),
    Item(D, "batches", "one batch of batch_size per source domain per step, drawn with "
         "replacement, concatenated (InfiniteDataLoader)", "the same, from the run's own "
         "generator", status="departure (recorded)"),
    Item(D, "optimizer", "Adam(lr, weight_decay), no schedule (ERM)", "train.optimizer=adam, "
         "train.schedule=constant, set for every domainbed run"),
    Item(D, "BatchNorm", "2020: frozen (eval mode) always; HEAD: freeze_bn False",
         lambda: (RECIPES["domainbed-2020"].freeze_bn, RECIPES["domainbed"].freeze_bn),
         (True, False), shows="model.freeze_bn by recipe: domainbed-2020 {0}, domainbed {1}"),
    Item(D, "ResNet-50 weights", "2020: torchvision resnet50(pretrained=True) (IMAGENET1K_V1); "
         "HEAD: resnet50_augmix True loads timm resnet50.ram_in1k, even over resnet18",
         lambda: (_preset_db("domainbed-2020"), _preset_db("domainbed")),
         ("resnet50", "timm:resnet50.ram_in1k"),
         shows="model.backbone for pacs by recipe: domainbed-2020 {0}, domainbed {1}"),
    Item(D, "transforms", "training domains (both parts): RandomResizedCrop(224, scale 0.7-1), "
         "flip, ColorJitter(0.3 x4), RandomGrayscale; test domains: Resize((224, 224))",
         "the same (data.domainbed.image_transforms); the image cache is off for these runs"),
    Item(D, "training seed", "seed_hash(dataset, algorithm, test_envs, hparams_seed, "
         "trial_seed) (scripts/sweep.py)", "the same with algorithm 'ERM' for every augmenter",
         status="departure (recorded)"),
]



def markdown() -> str:
    """The table of ``docs/fidelity.md``."""
    rows = [[i.section, i.what, i.official, _show(i.said()), i.status] for i in ITEMS]
    head = ("# Fidelity to the official code\n\nGenerated by `dgbench list fidelity > "
            "docs/fidelity.md` from `dgbench/report/fidelity.py`, which reads dgbench's column from "
            "the code and presets (a test fails when this file is stale, or when an item "
            "marked same differs from its official value). Sections follow "
            "[protocols.md](protocols.md); every departure is listed in the README and "
            "recorded in the `deviations` of the runs it affects.\n\n")
    return head + tabulate(rows, ["section", "item", "official (source)", "dgbench", "status"],
                           tablefmt="pipe", disable_numparse=True) + "\n"


def _show(value: Any) -> str:
    return str(value).replace("|", "\\|")
