"""Evaluation with the model in eval mode (augmenters off): classification accuracy, and the
person re-identification ranking metrics (mAP, CMC) with the feature extraction behind them."""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dgbench.core.device import Env

CPU = Env(torch.device("cpu"))


@torch.no_grad()
def predictions(model: nn.Module, loader: DataLoader, env: Env = CPU
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``model``'s top-1 predictions and the true labels, per image of ``loader`` in its
    order (long tensors on the CPU, moved there once)."""
    model.eval()
    preds, truth = [], []
    for images, labels, _ in loader:
        images, labels = env.images(images), labels.to(env.device, non_blocking=True)
        with env.autocast():
            logits = model(images)
        preds.append(logits.argmax(dim=1))
        truth.append(labels)
    if not preds:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    return torch.cat(preds).cpu(), torch.cat(truth).cpu()


def correct_flags(model: nn.Module, loader: DataLoader, env: Env = CPU) -> torch.Tensor:
    """Whether ``model``'s top-1 prediction is right, per image of ``loader`` in its order
    (a bool tensor on the CPU)."""
    preds, truth = predictions(model, loader, env)
    return preds == truth


def confusion(preds: torch.Tensor, truth: torch.Tensor, classes: int) -> list[list[int]]:
    """The confusion matrix: row = true class, column = predicted class, image counts."""
    counts = torch.bincount(truth * classes + preds, minlength=classes * classes)
    return counts.view(classes, classes).tolist()


def count_correct(model: nn.Module, loader: DataLoader, env: Env = CPU) -> tuple[int, int]:
    """(correct, total) of ``model``'s top-1 predictions over ``loader``."""
    flags = correct_flags(model, loader, env)
    return int(flags.sum()), len(flags)


#: DomainBed's holdout fraction: the share of each test domain its test-domain oracle selects on
ORACLE_FRACTION = 0.2


def oracle_part(n: int, seed: int, name: str) -> torch.Tensor:
    """The held-out part of a test set of ``n`` images for DomainBed's test-domain oracle: a
    bool mask of ``int(0.2 n)`` images (at least one, and one fewer than ``n``, where ``n`` >= 2)
    drawn by a generator seeded from (the run's seed, the test set's name), so that every
    hyperparameter setting of a seed is judged on the same images. The oracle selects on this
    part and reports the rest (DomainBed's ``split_dataset`` with ``holdout_fraction`` 0.2)."""
    digest = hashlib.sha256(f"oracle:{seed}:{name}".encode()).digest()
    order = np.random.default_rng(int.from_bytes(digest[:8], "big")).permutation(n)
    held = min(max(int(n * ORACLE_FRACTION), 1), n - 1) if n >= 2 else 0
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.from_numpy(order[:held])] = True
    return mask


def evaluate_tests(model: nn.Module, loaders: dict[str, DataLoader], env: Env = CPU,
                   seed: int | None = None, classes: int | None = None
                   ) -> tuple[dict[str, dict[str, Any]], float]:
    """Accuracy on each test set, and pooled over their union (correct / images, not a mean
    of accuracies: the single-source number the papers publish). With ``seed``, each test
    set also gets ``held`` and ``rest``: [correct, images] on its oracle part
    (:func:`oracle_part`) and on the other images. With ``classes`` (their number), each
    also gets its ``confusion`` matrix (:func:`confusion`) and ``class_acc``, the accuracy
    on each class's images (None for a class with none), in the dataset's class order."""
    test: dict[str, dict[str, Any]] = {}
    for name, loader in loaders.items():
        preds, truth = predictions(model, loader, env)
        flags = preds == truth
        correct, total = int(flags.sum()), len(flags)
        test[name] = {"acc": correct / max(total, 1), "correct": correct, "n": total}
        if classes is not None:
            matrix = confusion(preds, truth, classes)
            test[name]["class_acc"] = [row[c] / sum(row) if sum(row) else None
                                       for c, row in enumerate(matrix)]
            test[name]["confusion"] = matrix
        if seed is not None:
            mask = oracle_part(total, seed, name)
            test[name]["held"] = [int(flags[mask].sum()), int(mask.sum())]
            test[name]["rest"] = [int(flags[~mask].sum()), int((~mask).sum())]
    pooled = sum(t["correct"] for t in test.values()) / max(sum(t["n"] for t in test.values()), 1)
    return test, pooled


def rank_metrics(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    ranks: Sequence[int] = (1, 5, 10, 20),
    chunk: int = 256,
) -> dict[str, float | int]:
    """Person re-identification metrics with torchreid's Market-1501 rules (``eval_market1501``).

    For each query the gallery is ranked by increasing distance; gallery items with the
    query's identity *and* camera are removed; a query with no true match left is skipped.
    CMC rank-k is the fraction of valid queries whose first true match is within the first k
    remaining items; AP is the mean, over the true matches, of the precision at each match's
    position (not interpolated); mAP is its mean over valid queries. Distractors (any pid
    that no query has, e.g. Market's 0 or GRID's 0) simply stay in the ranking.

    Ties are ordered by gallery index (a stable sort), so results are deterministic; torchreid
    uses NumPy's default quicksort, whose order among exactly equal distances is unspecified.

    Vectorised over ``chunk`` queries at a time (memory ~ chunk x gallery x 30 bytes), no
    Python loop over gallery items. Returns ``mAP``, ``rank1``, ``rank5`` ... as fractions in
    [0, 1] and ``num_valid`` (queries with a match). Raises ValueError when no query is valid.
    """
    dist = np.asarray(distmat.detach().cpu() if isinstance(distmat, torch.Tensor) else distmat)
    q_pids, g_pids, q_camids, g_camids = (
        np.asarray(a.cpu() if isinstance(a, torch.Tensor) else a).reshape(-1)
        for a in (q_pids, g_pids, q_camids, g_camids)
    )
    n_q, n_g = dist.shape if dist.ndim == 2 else (-1, -1)
    if (n_q, n_g) != (len(q_pids), len(g_pids)) or len(q_camids) != n_q or len(g_camids) != n_g:
        raise ValueError(
            f"distmat has shape {dist.shape}; expected (queries, gallery) = "
            f"({len(q_pids)}, {len(g_pids)}) with as many camera ids"
        )
    ranks = sorted(set(int(r) for r in ranks))
    if not ranks or ranks[0] < 1:
        raise ValueError(f"ranks must be positive integers, got {ranks}")
    hits = np.zeros(len(ranks), dtype=np.int64)
    ap_sum, valid = 0.0, 0
    for start in range(0, n_q, chunk):
        stop = min(start + chunk, n_q)
        order = np.argsort(dist[start:stop], axis=1, kind="stable")  # (b, G)
        same_pid = g_pids[order] == q_pids[start:stop, None]
        keep = ~(same_pid & (g_camids[order] == q_camids[start:stop, None]))
        match = same_pid & keep  # true matches that count
        n_rel = match.sum(axis=1)
        ok = n_rel > 0
        if not ok.any():
            continue
        match, keep, n_rel = match[ok], keep[ok], n_rel[ok]
        position = np.cumsum(keep, axis=1, dtype=np.int64)  # 1-based rank among kept items
        first = position[np.arange(len(match)), match.argmax(axis=1)]  # rank of first match
        hits += (first[:, None] <= np.asarray(ranks)[None, :]).sum(axis=0)
        found = np.cumsum(match, axis=1, dtype=np.int64)  # matches up to each position
        precision = np.where(match, found / np.maximum(position, 1), 0.0)
        ap_sum += float((precision.sum(axis=1) / n_rel).sum())
        valid += int(ok.sum())
    if valid == 0:
        raise ValueError("no query has a true match in the gallery (from another camera)")
    out: dict[str, float | int] = {"mAP": ap_sum / valid}
    out.update({f"rank{r}": float(h) / valid for r, h in zip(ranks, hits)})
    out["num_valid"] = valid
    return out


# -- re-identification: embed, rank, average over a target's splits ------------------------
@torch.no_grad()
def extract(model: nn.Module, loader: DataLoader,
            env: Env = CPU) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """``model.features`` (L2-normalised), pids and cameras of every image, in loader order."""
    model.eval()
    feats, pids, cams = [], [], []
    for images, pid, cam in loader:
        with env.autocast():
            f = model.features(env.images(images))
        feats.append(F.normalize(f.float(), dim=1))
        pids.append(pid.numpy())
        cams.append(cam.numpy())
    return torch.cat(feats), np.concatenate(pids), np.concatenate(cams)


def cosine_distance(qf: torch.Tensor, gf: torch.Tensor) -> np.ndarray:
    """1 - cosine similarity of L2-normalised features: (Q, G)."""
    return (1.0 - qf @ gf.T).cpu().numpy()


def evaluate_reid(model: nn.Module, target: Any, tests: dict[str, int],
                  make_loader: Callable[[Dataset], DataLoader], env: Env = CPU) -> dict[str, dict]:
    """mAP and CMC of ``model`` on each named split of the ReID dataset ``target``
    (``name -> split index``).

    Each distinct image is embedded once, however many splits share it (GRID's ten splits
    reuse the same 1,275 images).
    """
    wanted: dict[str, int] = {}
    for k in tests.values():
        s = target.split(k)
        for rel, _, _ in s.query + s.gallery:
            wanted.setdefault(rel, len(wanted))
    loader = make_loader(target.images([(rel, 0, 0) for rel in wanted], train=False))
    feats, _, _ = extract(model, loader, env)
    out = {}
    for name, k in tests.items():
        s = target.split(k)
        qi = torch.tensor([wanted[r] for r, _, _ in s.query], device=feats.device)
        gi = torch.tensor([wanted[r] for r, _, _ in s.gallery], device=feats.device)
        dist = cosine_distance(feats[qi], feats[gi])
        out[name] = rank_metrics(dist, [p for _, p, _ in s.query], [p for _, p, _ in s.gallery],
                                 [c for _, _, c in s.query], [c for _, _, c in s.gallery])
        out[name].update(queries=len(s.query), gallery=len(s.gallery))
    return out


def mean_std(results: dict[str, dict]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and population std (ddof=0) of each metric over the target splits."""
    keys = [k for k in next(iter(results.values())) if k == "mAP" or k.startswith("rank")]
    values = {k: np.array([r[k] for r in results.values()], dtype=float) for k in keys}
    return ({k: float(v.mean()) for k, v in values.items()},
            {k: float(v.std()) for k, v in values.items()})
