"""The augmenter contract over the whole registry, and EFDMix/MixStyle's defining properties."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from dgbench.augmenters import _pairing as pairing
from dgbench.augmenters import AUGMENTERS

ALL = AUGMENTERS.names()


def make(name: str, **kwargs) -> torch.nn.Module:
    cls = AUGMENTERS.get(name)
    params = inspect.signature(cls).parameters
    if "p" in params and "p" not in kwargs:
        kwargs["p"] = 1.0  # exercise the augmentation, not the gate
    return cls(**{k: v for k, v in kwargs.items() if k in params})


def features(b=6, c=4, h=8, w=8, seed=0, relu=True) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=g) * 2 + 0.5
    return x.relu() if relu else x  # stage outputs are post-ReLU: many exact zeros


# ---- contract: every registered augmenter -----------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_all_hyperparameters_are_keywords_with_defaults(name):
    for p in inspect.signature(AUGMENTERS.get(name)).parameters.values():
        assert p.default is not p.empty, f"{name}.{p.name} has no default"
    assert isinstance(AUGMENTERS.get(name)(), torch.nn.Module)
    assert AUGMENTERS.entry(name).description


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("relu", [True, False])
def test_shape_finite_and_gradient(name, relu):
    aug = make(name).train()
    x = features(relu=relu).requires_grad_()
    out = aug(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ALL)
def test_identity_in_eval_mode(name):
    aug = make(name).eval()
    x = features()
    assert torch.equal(aug(x), x)


@pytest.mark.parametrize("name", ALL)
def test_p0_is_identity(name):
    if "p" not in inspect.signature(AUGMENTERS.get(name)).parameters:
        pytest.skip(f"{name} has no gate")
    aug = AUGMENTERS.get(name)(p=0.0).train()
    x = features()
    for _ in range(20):
        assert torch.equal(aug(x), x)


@pytest.mark.parametrize("name", ALL)
def test_one_seed_controls_the_randomness(name):
    aug = make(name).train()
    x = features()
    torch.manual_seed(7)
    a = aug(x)
    torch.manual_seed(7)
    b = aug(x)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", ALL)
def test_channels_last_input(name):
    aug = make(name).train()
    x = features().contiguous(memory_format=torch.channels_last)
    torch.manual_seed(3)
    out = aug(x)
    torch.manual_seed(3)
    ref = aug(x.contiguous())
    assert out.shape == x.shape
    torch.testing.assert_close(out, ref)
    assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("name", ALL)
def test_keeps_dtype_under_autocast(name):
    aug = make(name).train()
    x = features().to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = aug(x)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


# ---- the shared gate and pairing ----------------------------------------------------------
def test_gate_extremes():
    assert not any(pairing.gate(0.0) for _ in range(200))
    assert all(pairing.gate(1.0) for _ in range(200))


@pytest.mark.parametrize("batch", [2, 6, 7, 9])
def test_crossdomain_pairs_only_across_halves(batch):
    n_a = (batch + 1) // 2
    for _ in range(50):
        perm = pairing.partner_indices(batch, "crossdomain", torch.device("cpu"))
        assert perm.shape == (batch,)
        assert (perm[:n_a] >= n_a).all(), "an A sample paired inside A"
        assert (perm[n_a:] < n_a).all(), "a B sample paired inside B"
        if batch % 2 == 0:
            assert sorted(perm.tolist()) == list(range(batch))  # bijection across halves


def test_random_pairing_is_a_permutation():
    perm = pairing.partner_indices(10, "random", torch.device("cpu"))
    assert sorted(perm.tolist()) == list(range(10))


def test_one_lambda_per_sample():
    lam = pairing.beta_weights(5, 0.1, torch.zeros(1))
    assert lam.shape == (5, 1, 1, 1) and ((lam >= 0) & (lam <= 1)).all()
    assert len(set(lam.flatten().tolist())) > 1


def test_bad_mix_is_refused():
    for name in ("mixstyle", "efdmix"):
        with pytest.raises(ValueError, match="mix must be one of"):
            AUGMENTERS.get(name)(mix="domain")


# ---- EFDMix --------------------------------------------------------------------------------
def _fix(monkeypatch, module: str, lam: float | torch.Tensor, perm: list[int]) -> None:
    mod = __import__(f"dgbench.augmenters.{module}", fromlist=["x"])

    def weights(batch, alpha, like):
        value = lam if isinstance(lam, torch.Tensor) else torch.full((batch,), float(lam))
        return value.view(batch, 1, 1, 1).to(like.device)

    monkeypatch.setattr(mod, "beta_weights", weights)
    monkeypatch.setattr(mod, "partner_indices", lambda b, mix, dev: torch.tensor(perm, device=dev))


@pytest.mark.parametrize("relu", [True, False])
def test_efdmix_lambda0_takes_the_partners_values(monkeypatch, relu):
    perm = [3, 2, 0, 1, 5, 4]
    _fix(monkeypatch, "efdmix", 0.0, perm)
    x = features(relu=relu)
    out = make("efdmix").train()(x)
    flat_out, flat_x = out.flatten(2), x.flatten(2)
    # per sample and channel: exactly the partner's values, rearranged
    assert torch.equal(flat_out.sort(-1).values, flat_x[perm].sort(-1).values)
    # ... in the order of the content's ranks (for distinct values)
    if not relu:
        assert torch.equal(flat_out.argsort(-1), flat_x.argsort(-1))


def test_efdmix_lambda1_is_the_input(monkeypatch):
    _fix(monkeypatch, "efdmix", 1.0, [1, 0, 3, 2, 5, 4])
    x = features()
    assert torch.equal(make("efdmix").train()(x), x)


def _reference_efdmix(x, lam, perm):
    """The official formulation (sort, argsort of the indices, gather), as written in
    scripts/bench_augmenters.py: the benchmark times the very reference this test checks."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_augmenters.py"
    spec = importlib.util.spec_from_file_location("bench_augmenters", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_efdmix(x, lam, perm)


def test_efdmix_equals_the_two_sort_reference_values_and_gradients(monkeypatch):
    perm = [4, 0, 5, 1, 3, 2]
    lam = torch.tensor([0.1, 0.9, 0.5, 0.0, 1.0, 0.3])
    _fix(monkeypatch, "efdmix", lam, perm)
    x = features(relu=False)  # distinct values: the two formulations must agree exactly
    upstream = torch.randn_like(x)
    a = x.clone().requires_grad_()
    out = make("efdmix").train()(a)
    (out * upstream).sum().backward()
    b = x.clone().requires_grad_()
    ref = _reference_efdmix(b, lam, torch.tensor(perm))
    (ref * upstream).sum().backward()
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)  # lerp vs x + (1-lam)(m - x)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-6, atol=1e-6)


def test_efdmix_content_gradient_is_identity_and_partner_gets_gradient(monkeypatch):
    # sample 0 is nobody's partner: its gradient is the content path's alone
    perm = [1, 2, 1]
    _fix(monkeypatch, "efdmix", 0.3, perm)
    x = features(b=3).requires_grad_()
    upstream = torch.randn_like(x)
    (make("efdmix").train()(x) * upstream).sum().backward()
    torch.testing.assert_close(x.grad[0], upstream[0], rtol=0, atol=0)  # identity, not lambda
    assert not torch.allclose(x.grad[1], upstream[1])  # partner of 0 and 2: receives gradient


def test_efdmix_single_sort(monkeypatch):
    make("efdmix").train()(features())  # once first: the process's one-time sort check
    calls = []
    real_sort, real_argsort = torch.sort, torch.argsort

    def counting_sort(*a, **k):
        calls.append("sort")
        return real_sort(*a, **k)

    def counting_argsort(*a, **k):
        calls.append("argsort")
        return real_argsort(*a, **k)

    monkeypatch.setattr(torch, "sort", counting_sort)
    monkeypatch.setattr(torch, "argsort", counting_argsort)
    make("efdmix").train()(features())
    assert calls == ["sort"]


# ---- MixStyle ------------------------------------------------------------------------------
def test_mixstyle_lambda0_takes_partner_mean_and_std(monkeypatch):
    perm = [2, 3, 0, 1, 5, 4]
    _fix(monkeypatch, "mixstyle", 0.0, perm)
    x = features(relu=False)
    out = make("mixstyle").train()(x)
    eps = 1e-6
    torch.testing.assert_close(out.mean((2, 3)), x[perm].mean((2, 3)), atol=1e-5, rtol=1e-5)
    sig_out = (out.var((2, 3), correction=1) + eps).sqrt()
    sig_partner = (x[perm].var((2, 3), correction=1) + eps).sqrt()
    torch.testing.assert_close(sig_out, sig_partner, atol=1e-4, rtol=1e-4)


def test_mixstyle_matches_the_papers_formula_and_detaches_statistics(monkeypatch):
    perm = [1, 0, 3, 2, 5, 4]
    lam = torch.tensor([0.2, 0.7, 0.5, 0.9, 0.0, 1.0])
    _fix(monkeypatch, "mixstyle", lam, perm)
    x = features(relu=False).requires_grad_()
    out = make("mixstyle").train()(x)
    mu = x.detach().mean((2, 3), keepdim=True)
    sig = (x.detach().var((2, 3), keepdim=True, correction=1) + 1e-6).sqrt()
    l4 = lam.view(-1, 1, 1, 1)
    mu_mix = l4 * mu + (1 - l4) * mu[perm]
    sig_mix = l4 * sig + (1 - l4) * sig[perm]
    ref = (x.detach() - mu) / sig * sig_mix + mu_mix
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    out.sum().backward()  # statistics detached: d out / d x = sig_mix / sig, elementwise
    torch.testing.assert_close(x.grad, (sig_mix / sig).expand_as(x), atol=1e-6, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["mixstyle", "efdmix"])
def test_cuda_half_precision(name):
    aug = make(name).train()
    x = features().cuda().half().contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.float16):
        out = aug(x)
    assert out.dtype == torch.float16 and out.device == x.device


# ---- the zoo: each augmenter's defining property ------------------------------------------
def _pair(relu: bool, seed: int = 0) -> torch.Tensor:
    """Two samples of different styles; with mix=crossdomain each is the other's partner."""
    x = features(b=2, c=3, h=6, w=7, seed=seed, relu=relu)
    x[1] = x[1] * 3 + 1
    return x


@pytest.mark.parametrize("relu", [True, False])
def test_adain_output_takes_the_partners_mean_and_std(relu):
    x = _pair(relu)
    out = AUGMENTERS.get("adain")(p=1.0, mix="crossdomain").train()(x)
    var, mu = torch.var_mean(x, dim=(2, 3), correction=1)
    ovar, omu = torch.var_mean(out, dim=(2, 3), correction=1)
    sig, osig = (var + 1e-6).sqrt(), (ovar + 1e-6).sqrt()
    assert torch.allclose(omu, mu.flip(0), atol=1e-4)
    assert torch.allclose(osig, sig.flip(0), atol=1e-3)
    # only two moments: the sorted values are not the partner's
    assert not torch.allclose(out[0].flatten(1).sort().values, x[1].flatten(1).sort().values, atol=1e-2)


@pytest.mark.parametrize("relu", [True, False])
def test_efdm_output_sorted_equals_the_partner_sorted(relu):
    x = _pair(relu).requires_grad_()
    out = AUGMENTERS.get("efdm")(p=1.0, mix="crossdomain").train()(x)
    assert torch.equal(out[0].flatten(1).sort().values, x[1].flatten(1).sort().values)
    assert torch.equal(out[1].flatten(1).sort().values, x[0].flatten(1).sort().values)
    out.sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, 2.0))  # identity + the partner's 1


@pytest.mark.parametrize("relu", [True, False])
def test_hm_error_shrinks_as_bins_grow_and_reaches_efdm(relu):
    x = features(b=4, c=3, h=9, w=9, seed=3, relu=relu)  # N = 81
    torch.manual_seed(0)
    exact = AUGMENTERS.get("efdm")(p=1.0).train()(x)
    errors = []
    for bins in (2, 8, 32, 80, 400):
        torch.manual_seed(0)  # the same partners
        out = AUGMENTERS.get("hm")(p=1.0, bins=bins).train()(x)
        errors.append(float((out - exact).abs().mean()))
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[3] < 1e-5 and errors[4] < 1e-4  # bins >= N - 1: EFDM's output


@pytest.mark.parametrize("name", ["hm", "mixhm"])
def test_hm_gradient_is_straight_through_as_efdms_code(name):
    """EFDM's HM: x + (HM(x) - x).detach() * (1 - lambda): the identity to the content and
    nothing to the partner; partner_grad=true passes the quantile weights on instead."""
    x = features(b=2, c=2, h=5, w=5, relu=False).requires_grad_()
    AUGMENTERS.get(name)(p=1.0, bins=4, mix="crossdomain").train()(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    x.grad = None
    AUGMENTERS.get("hm")(p=1.0, bins=4, mix="crossdomain", partner_grad=True).train()(x).sum().backward()
    # content: identity; partner: the interpolation weights of each quantile sum to 1 per
    # output, so each sample's total gradient is N (content) + N (as a partner)
    assert torch.allclose(x.grad.sum(dim=(2, 3)), torch.full((2, 2), 50.0), atol=1e-4)


def _cdf_match_reference(source: np.ndarray, template: np.ndarray) -> np.ndarray:
    """scikit-image's _match_cumulative_cdf, as its documentation states it."""
    src_values, src_inverse, src_counts = np.unique(source, return_inverse=True, return_counts=True)
    tmpl_values, tmpl_counts = np.unique(template, return_counts=True)
    src_q = np.cumsum(src_counts) / source.size
    tmpl_q = np.cumsum(tmpl_counts) / template.size
    return np.interp(src_q, tmpl_q, tmpl_values)[src_inverse].reshape(source.shape)


@pytest.mark.parametrize("relu", [True, False])
def test_hm_with_bins_0_is_scikit_images_matching(monkeypatch, relu):
    """bins=0: each value through its eCDF (ties at their upper level: ReLU zeros all take one
    value) into the partner's quantile function, as EFDM's MixHistogram (match_histograms)."""
    x = features(b=4, c=3, h=6, w=7, seed=5, relu=relu).double()
    perm = torch.tensor([2, 3, 1, 0])
    monkeypatch.setattr("dgbench.augmenters.efdmix.partner_indices", lambda b, mix, device: perm)
    out = AUGMENTERS.get("hm")(p=1.0, bins=0).train()(x)
    for b in range(4):
        for c in range(3):
            ref = _cdf_match_reference(x[b, c].numpy(), x[perm[b], c].numpy())
            np.testing.assert_allclose(out[b, c].numpy(), ref, rtol=1e-12, atol=1e-12)
    if relu:
        zeros = x[0, 0] == 0
        assert zeros.sum() > 1 and out[0, 0][zeros].unique().numel() == 1


def test_mixhm_mixes_the_match_with_beta_lambdas(monkeypatch):
    x = features(b=4, c=2, h=5, w=5, relu=False)
    lam = torch.tensor([0.0, 0.25, 0.5, 1.0]).view(4, 1, 1, 1)
    monkeypatch.setattr(AUGMENTERS.get("mixhm"), "weights", lambda self, b, x: lam)
    torch.manual_seed(0)
    mixed = AUGMENTERS.get("mixhm")(p=1.0).train()(x)
    torch.manual_seed(0)
    matched = AUGMENTERS.get("hm")(p=1.0, bins=0).train()(x)  # mixhm matches as scikit-image
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * matched)
    assert AUGMENTERS.get("mixhm")().alpha == 0.1 and AUGMENTERS.get("mixhm")().bins == 0


@pytest.mark.parametrize("relu", [True, False])
def test_dsu_moves_with_batch_variance_and_not_for_a_constant_batch(relu):
    dsu = AUGMENTERS.get("dsu")(p=1.0).train()
    same = features(b=1, relu=relu).repeat(8, 1, 1, 1)  # every sample identical
    torch.manual_seed(0)
    assert torch.allclose(dsu(same), same, atol=2e-2)  # only the eps-sized jitter
    base = features(b=1, relu=relu)
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(8, 1, 1, 1, generator=g), torch.randn(8, 1, 1, 1, generator=g)
    changes = []
    for s in (0.05, 0.5, 2.0):  # per-sample scale and shift: the statistics' spread grows with s
        batch = base * (1 + s * a.abs()) + s * b
        torch.manual_seed(0)
        changes.append(float((dsu(batch) - batch).abs().mean()))
    assert changes[0] < changes[1] < changes[2]


def test_dsu_gradient_flows_through_the_statistics():
    x = features(b=4, relu=False).requires_grad_()
    torch.manual_seed(0)
    AUGMENTERS.get("dsu")(p=1.0).train()(x).mean().backward()
    # (x - mu) / sig sums to zero per channel: any gradient comes through beta and gamma
    assert x.grad.abs().sum() > 0


def test_padain_gate_and_detached_style():
    x = _pair(relu=True)
    never = AUGMENTERS.get("padain")(p=0.0).train()
    always = AUGMENTERS.get("padain")(p=1.0, mix="crossdomain").train()
    assert AUGMENTERS.get("padain")().p == 0.01
    for _ in range(50):
        assert torch.equal(never(x), x)
        assert not torch.equal(always(x), x)
    xg = x.clone().requires_grad_()
    always(xg)[0].sum().backward()
    assert xg.grad[1].abs().max() == 0  # the partner's statistics are detached
    assert xg.grad[0].abs().sum() > 0


def test_padain_matches_the_official_formula(monkeypatch):
    """Unbiased variance, std = sqrt(var + eps) for the style and + eps once more for the
    content; the style statistics detached (Nuriel et al.'s permuteAdaIN)."""
    x = features(relu=False)
    perm = torch.tensor([3, 0, 5, 1, 2, 4])
    monkeypatch.setattr("dgbench.augmenters.padain.partner_indices", lambda b, mix, device: perm)
    out = AUGMENTERS.get("padain")(p=1.0).train()(x)
    eps = 1e-5
    mu, var = x.mean((2, 3), keepdim=True), x.var((2, 3), keepdim=True)
    std = (var + eps).sqrt()
    ref = (x - mu) / (std + eps) * std[perm] + mu[perm]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["padain", "mixstyle", "adain", "dsu"])
def test_statistics_augmenters_leave_a_1x1_map_unchanged(name):
    x = torch.randn(4, 8, 1, 1)
    assert torch.equal(make(name).train()(x), x)
    if name == "dsu":  # one sample has no batch spread either
        y = torch.randn(1, 8, 4, 4)
        assert torch.equal(make(name).train()(y), y)


@pytest.mark.parametrize("mix,batch,channels_last", [("random", 6, False), ("crossdomain", 6, False),
                                                     ("crossdomain", 7, False), ("random", 6, True)])
def test_efdmix_fused_op_is_the_autograd_composition_bit_for_bit(mix, batch, channels_last):
    """The fused forward/backward (integer-key sort, mixing in sorted order, hand-written
    backward, scratch buffers) against sort -> scatter -> lerp left to autograd (the generic
    path subclasses take): the same outputs and input gradients, bit for bit, ties included."""
    from dgbench.augmenters.efdmix import EFDMix

    class Composed(EFDMix):
        def match(self, values, order, perm):  # another method: the generic path
            return super().match(values, order, perm)

    x = features(b=batch, relu=True)
    x[:, :, :2] = -0.0  # both zeros among the ties
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    upstream = torch.randn_like(x)
    results = []
    for cls in (EFDMix, Composed):
        torch.manual_seed(3)  # the same gate, lambda and partners
        a = x.clone().requires_grad_()
        out = cls(p=1.0, mix=mix).train()(a)
        (out * upstream).sum().backward()
        results.append((out.detach(), a.grad))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
    assert results[0][0].is_contiguous(memory_format=torch.channels_last) == channels_last
