"""The feature-distribution inspector on synthetic feature maps with known answers, and the
`dgbench inspect` command."""

from __future__ import annotations

import pytest
import torch

from dgbench.report import inspector
from dgbench.cli import main


def maps() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    content = torch.randn(3, 12, 12, generator=g) * 0.5 + 2.0  # symmetric: skew ~ 0
    style = torch.empty(3, 12, 12).exponential_(1.5, generator=g) + 0.2  # skew 2, excess kurt 6
    return content, style


def test_stats_of_a_known_distribution():
    x = torch.tensor([[[0.0, 0.0, 0.0, 4.0]]])  # mean 1, std sqrt(3)
    s = inspector.channel_stats(x)
    assert float(s["mean"]) == pytest.approx(1.0) and float(s["std"]) == pytest.approx(3 ** 0.5)
    assert float(s["skew"]) == pytest.approx(2 / 3 ** 0.5)  # E[(x-1)^3] = 6 / 3^1.5
    assert float(s["kurt"]) == pytest.approx(21 / 9 - 3)
    assert float(inspector.wasserstein1(x, x + 0.5)) == pytest.approx(0.5)


def test_efdm_matches_everything_adain_two_moments_hm_in_between():
    content, style = maps()
    specs = inspector.parse_specs("adain,hm:bins=4,hm,efdm")
    rows = inspector.compare(inspector.restyled(content, style, specs))
    assert float(rows["style"]["w1"].max()) == 0.0
    efdm = rows["efdm"]
    assert float(efdm["w1"].max()) < 1e-6
    for k in ("d_mean", "d_std", "d_skew", "d_kurt"):
        assert float(efdm[k].max()) < 1e-6
    adain = rows["adain"]
    assert float(adain["d_mean"].max()) < 1e-4 and float(adain["d_std"].max()) < 1e-2
    assert float(adain["d_skew"].mean()) > 1.0  # keeps the content's (symmetric) shape
    w1 = {k: float(rows[k]["w1"].mean()) for k in ("adain", "hm:bins=4", "hm", "efdm")}
    assert w1["adain"] > w1["hm"] > w1["efdm"] and w1["hm:bins=4"] > w1["hm"]
    assert float(rows["content"]["d_mean"].mean()) > 0.3


def test_bad_specs():
    from dgbench.core.errors import ConfigError, UnknownNameError

    with pytest.raises(UnknownNameError):
        inspector.parse_specs("adian")
    with pytest.raises(ConfigError, match="bins"):
        inspector.parse_specs("hm:bins")
    with pytest.raises(ConfigError):
        inspector.parse_specs("hm:bins=many")


def test_inspect_command_prints_and_plots(tmp_path, capsys):
    png = tmp_path / "hist.png"
    assert main(["inspect", "--aug", "adain,hm,efdm", "--dataset", "toy", "--block", "layer1",
                 "--plot", str(png), "--channels", "2"]) == 0
    out = capsys.readouterr().out
    assert "W1 to style" in out and "UNTRAINED" in out
    efdm_line = next(line for line in out.splitlines() if line.startswith("efdm"))
    assert float(efdm_line.split()[-1]) < 1e-6  # W1 of EFDM to the style
    assert png.stat().st_size > 1000
    assert main(["inspect", "--dataset", "toy", "--block", "nothere"]) == 2
    assert main(["inspect", "--dataset", "toy", "--content", "only-one.png"]) == 2
    assert main(["inspect", "--dataset", "toy", "--image-size", "big"]) == 2  # text is checked


def test_the_same_seed_gives_the_same_figures(capsys):
    from dgbench.cli import main

    outputs = []
    for _ in range(2):
        assert main(["inspect", "--aug", "adain,efdm", "--seed", "3"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and "UNTRAINED" in outputs[0]
