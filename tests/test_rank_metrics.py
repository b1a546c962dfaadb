"""rank_metrics: hand-computed cases and a plain loop implementation of torchreid's rules."""

from __future__ import annotations

import numpy as np
import pytest

from dgbench.tasks.evaluate import rank_metrics


def loop_metrics(dist, q_pids, g_pids, q_cams, g_cams, ranks=(1, 5, 10, 20)):
    """One query at a time, one gallery item at a time: the rules written out plainly."""
    aps, firsts = [], []
    for i in range(len(q_pids)):
        order = sorted(range(len(g_pids)), key=lambda j: (dist[i][j], j))  # ties: gallery order
        kept = [j for j in order if not (g_pids[j] == q_pids[i] and g_cams[j] == q_cams[i])]
        is_match = [g_pids[j] == q_pids[i] for j in kept]
        if not any(is_match):
            continue
        precisions, found = [], 0
        for pos, m in enumerate(is_match, 1):
            if m:
                found += 1
                precisions.append(found / pos)
        aps.append(sum(precisions) / len(precisions))
        firsts.append(is_match.index(True) + 1)
    out = {"mAP": sum(aps) / len(aps)}
    out.update({f"rank{r}": sum(f <= r for f in firsts) / len(firsts) for r in ranks})
    out["num_valid"] = len(aps)
    return out


def test_hand_computed_case_with_same_camera_removal_and_distractor():
    # one query, pid 1 camera 0; gallery: [pid1 cam0 (removed), pid0 distractor, pid1 cam1,
    # pid2 cam1, pid1 cam2]
    dist = np.array([[0.0, 0.1, 0.2, 0.3, 0.4]])
    g_pids, g_cams = np.array([1, 0, 1, 2, 1]), np.array([0, 1, 1, 1, 2])
    m = rank_metrics(dist, [1], g_pids, [0], g_cams, ranks=(1, 2, 3))
    # kept ranking: distractor, match, pid2, match -> matches at ranks 2 and 4
    assert m["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert (m["rank1"], m["rank2"], m["rank3"], m["num_valid"]) == (0.0, 1.0, 1.0, 1)


def test_query_without_a_valid_match_is_skipped():
    dist = np.array([[0.5, 0.1], [0.2, 0.9]])
    g_pids, g_cams = np.array([7, 8]), np.array([0, 0])
    # query 0 (pid 7, cam 0): its only match shares the camera -> skipped
    m = rank_metrics(dist, [7, 8], g_pids, [0, 1], g_cams, ranks=(1,))
    assert m["num_valid"] == 1
    assert m["rank1"] == 0.0  # query 1's match (pid 8) is second
    assert m["mAP"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no query"):
        rank_metrics(dist[:1], [7], g_pids, [0], g_cams)


def test_ties_are_ordered_by_gallery_index():
    dist = np.zeros((1, 3))
    m = rank_metrics(dist, [1], [2, 1, 1], [0], [1, 1, 1], ranks=(1, 2))
    assert (m["rank1"], m["rank2"]) == (0.0, 1.0)
    assert m["mAP"] == pytest.approx((1 / 2 + 2 / 3) / 2)


@pytest.mark.parametrize("seed", range(5))
def test_equals_the_loop_on_random_matrices(seed):
    rng = np.random.default_rng(seed)
    n_q, n_g = 23, 61
    q_pids, g_pids = rng.integers(0, 8, n_q), rng.integers(0, 8, n_g)  # 0 acts as a distractor id
    q_cams, g_cams = rng.integers(0, 3, n_q), rng.integers(0, 3, n_g)
    dist = rng.integers(0, 6, (n_q, n_g)).astype(float)  # small integers: many ties
    ours = rank_metrics(dist, q_pids, g_pids, q_cams, g_cams, chunk=5)
    ref = loop_metrics(dist.tolist(), q_pids.tolist(), g_pids.tolist(), q_cams.tolist(), g_cams.tolist())
    assert ours["num_valid"] == ref["num_valid"]
    for key in ("mAP", "rank1", "rank5", "rank10", "rank20"):
        assert ours[key] == pytest.approx(ref[key], abs=1e-12), key


def test_torch_inputs_and_shape_errors():
    import torch

    dist = torch.rand(4, 6)
    pids = torch.tensor([1, 2, 3, 4])
    g = torch.tensor([1, 2, 3, 4, 1, 2])
    m = rank_metrics(dist, pids, g, torch.zeros(4), torch.ones(6))
    assert set(m) == {"mAP", "rank1", "rank5", "rank10", "rank20", "num_valid"}
    assert 0 <= m["mAP"] <= 1 and m["rank20"] == 1.0
    with pytest.raises(ValueError, match="shape"):
        rank_metrics(dist, pids[:3], g, torch.zeros(3), torch.ones(6))
