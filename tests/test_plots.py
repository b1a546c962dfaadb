"""Plots draw what the tables and the results frame say: bar heights are the table's cells,
curves the per-epoch means over seeds, a sweep's x the swept values; bad input is one line."""

from __future__ import annotations

import base64
import importlib.util
import sys
import zlib

import numpy as np
import pytest

from dgbench.core.errors import ConfigError, DataError
from dgbench.report.plots import (bars_figure, curve_data, curves_figure, plot, sweep_figure,
                           to_data_uri)
from dgbench.results.frame import frame
from dgbench.results.tables import build_table

draws = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                           reason="matplotlib is an optional extra")

SPLITS = {"art": ["cartoon", "photo"], "cartoon": ["art", "photo"]}  # source -> test sets
EPOCHS = 3


def record(aug, seed, split, args=None, lr=0.01, insert=("layer1",)):
    """A single-source classification record evaluated every epoch, with made-up numbers
    that differ by augmenter, argument, seed, split, epoch and test set."""
    args = dict(args or {})
    key = repr((aug, sorted(args.items()), seed, split, lr)).encode()
    rng = np.random.default_rng(zlib.crc32(key))
    history = []
    for epoch in range(1, EPOCHS + 1):
        accs = {t: float(rng.uniform(0.2, 0.9)) for t in SPLITS[split]}
        history.append({"epoch": epoch, "lr": lr, "loss": float(rng.uniform(0.5, 2.0)),
                        "train_acc": 0.5, "val_acc": float(rng.uniform(0.3, 0.9)),
                        "score": float(np.mean(list(accs.values()))), "test_acc": accs})
    last = history[-1]
    return {
        "run_id": f"{aug}-{sorted(args.items())}-{lr}-{insert}-{seed}-{split}", "aug": aug,
        "seed": seed, "split": {"name": split, "index": list(SPLITS).index(split)},
        "config": {"data": {"name": "pacs"}, "protocol": {"name": "single", "targets": None},
                   "model": {"backbone": "resnet18"}, "seeds": [seed],
                   "train": {"epochs": EPOCHS, "lr": lr},
                   "aug": {"names": [aug], "args": args, "insert": list(insert)}},
        "dataset": {"titles": {"art": "Art", "cartoon": "Cartoon", "photo": "Photo"}},
        "history": history,
        "final": {"score": last["score"], "val_acc": last["val_acc"],
                  "test": {t: {"acc": a} for t, a in last["test_acc"].items()}},
    }


def sweep_records(seeds=(0, 1, 2)):
    recs = [record("none", s, sp) for s in seeds for sp in SPLITS]
    return recs + [record("efdmix", s, sp, {"alpha": a, "p": 0.5})
                   for a in (0.5, 0.1, 0.3) for s in seeds for sp in SPLITS]


@pytest.fixture(scope="module")
def df():
    return frame(sweep_records())


def reid_record():
    metrics = {"mAP": 0.3, "rank1": 0.2, "rank5": 0.4, "rank10": 0.5, "rank20": 0.6}
    rec = record("none", 1, "art")
    rec.update(task="reid", split={"name": "market1501->grid", "index": 0},
               history=[{"epoch": 2, "lr": 0.1, "loss": 1.0}],
               final={"test": {"grid#0": metrics}, "score": 0.3})
    rec["config"]["protocol"]["name"] = "reid"
    return rec


@draws
@pytest.mark.parametrize("kind,suffix,magic", [("bars", ".png", b"\x89PNG"),
                                               ("curves", ".pdf", b"%PDF"),
                                               ("sweep", ".svg", b"<?xml")])
def test_each_kind_writes_its_format(df, tmp_path, kind, suffix, magic):
    by = "aug.alpha" if kind == "sweep" else None
    out = plot(df, kind, tmp_path / "sub" / f"p{suffix}", by=by)
    assert out == tmp_path / "sub" / f"p{suffix}"
    assert out.read_bytes().startswith(magic) and out.stat().st_size > 1000


def sweep_line(ax, label):
    """The data line of the error-bar plot labelled ``label``."""
    (line,) = [c.lines[0] for c in ax.containers if c.get_label() == label]
    return line


def bar_groups(ax):
    from matplotlib.container import BarContainer

    return [c for c in ax.containers if isinstance(c, BarContainer)]


@draws
def test_bar_heights_and_error_bars_are_the_tables_cells(df):
    table = build_table(df, "val", "se")
    ax = bars_figure(df, "val", "se").axes[0]
    assert [c.get_label() for c in bar_groups(ax)] == table.rows == ["none", "efdmix (alpha=0.1)",
                                                                    "efdmix (alpha=0.3)",
                                                                    "efdmix (alpha=0.5)"]
    assert [t.get_text() for t in ax.get_xticklabels()] == table.columns + ["Avg"]
    for row, bars in zip(table.rows, bar_groups(ax)):
        stats = [table.stats(row, c) for c in table.columns]
        heights = [p.get_height() for p in bars.patches]
        assert heights == pytest.approx([s[0] for s in stats] + [table.average(row)])
        segments = bars.errorbar.lines[2][0].get_segments()[:len(stats)]
        lengths = [seg[1][1] - seg[0][1] for seg in segments]
        assert lengths == pytest.approx([2 * s[1] for s in stats])
    assert "standard error" in ax.get_title() and "epoch selection 'val'" in ax.get_title()


@draws
def test_a_missing_cell_draws_no_bar():
    recs = [r for r in sweep_records(seeds=(0, 1))
            if not (r["aug"] == "none" and r["split"]["name"] == "art")
            and not (r["aug"] == "efdmix" and r["seed"] == 1 and r["split"]["name"] == "art")]
    ax = bars_figure(frame(recs)).axes[0]
    assert [len(bars.patches) for bars in bar_groups(ax)] == [1, 3, 3, 3]  # none: no Art, no Avg
    labels = [t.get_text() for t in ax.texts]  # the table's (n=k) marks a thinner cell
    assert sum(label.endswith(" (n=1)") for label in labels) == 3 and len(labels) == 10


@draws
def test_curve_means_are_the_mean_over_seeds_of_the_mean_over_splits(df):
    recs = sweep_records()
    fig = curves_figure(df)
    axes = fig.axes
    assert [a.get_title() for a in axes] == ["training loss", "source-validation accuracy (%)",
                                             "test accuracy (%), mean over test sets"]
    runs = [r for r in recs if r["aug"] == "efdmix" and r["config"]["aug"]["args"]["alpha"] == 0.3]
    per_seed = {s: [[np.mean(list(r["history"][e]["test_acc"].values())) for e in range(EPOCHS)]
                    for r in runs if r["seed"] == s] for s in (0, 1, 2)}
    seed_means = np.array([np.mean(v, axis=0) for v in per_seed.values()])  # (seeds, epochs)
    (line,) = [ln for ln in axes[2].get_lines() if ln.get_label() == "efdmix (alpha=0.3)"]
    assert list(line.get_xdata()) == [1, 2, 3]
    assert line.get_ydata() == pytest.approx(100 * seed_means.mean(axis=0))
    data = curve_data(df)
    band = data[(data["metric"] == "acc") & (data["variant"] == "efdmix (alpha=0.3)")]
    assert band["spread"].to_numpy() == pytest.approx(100 * seed_means.std(axis=0))
    losses = np.array([[np.mean([r["history"][e]["loss"] for r in runs if r["seed"] == s])
                        for e in range(EPOCHS)] for s in (0, 1, 2)])
    (loss,) = [ln for ln in axes[0].get_lines() if ln.get_label() == "efdmix (alpha=0.3)"]
    assert loss.get_ydata() == pytest.approx(losses.mean(axis=0))


def test_curves_need_per_epoch_runs():
    with pytest.raises(DataError, match="curves need per-epoch runs"):
        curves_figure(frame([reid_record()]))
    old = record("none", 5, "art")
    for h in old["history"]:
        del h["test_acc"]  # evaluated only at its end, as records before per-epoch testing
    with pytest.warns(UserWarning, match="leave out 1 run"):
        data = curve_data(frame([record("none", 0, "art"), old]))
    assert set(data["n"]) == {1}


@draws
def test_sweep_x_values_are_the_swept_values(df):
    recs = sweep_records()
    for by in ("aug.alpha", "aug.args.alpha"):
        ax = sweep_figure(df, by).axes[0]
        line = sweep_line(ax, "efdmix")
        assert list(line.get_xdata()) == [0.1, 0.3, 0.5]
        expected = [100 * np.mean([np.mean([r["final"]["score"] for r in recs
                                            if r["aug"] == "efdmix" and r["seed"] == s
                                            and r["config"]["aug"]["args"]["alpha"] == a])
                                   for s in (0, 1, 2)]) for a in (0.1, 0.3, 0.5)]
        assert line.get_ydata() == pytest.approx(expected)
        assert "none (no " + by + ")" in [ln.get_label() for ln in ax.get_lines()]
        assert ax.get_xlabel() == by


@draws
def test_sweep_over_config_keys_numeric_and_categorical():
    recs = [record("efdmix", s, "art", {"alpha": 0.1}, lr=lr) for lr in (1e-3, 1e-1, 1e-2)
            for s in (0, 1)]
    ax = sweep_figure(frame(recs), "train.lr").axes[0]
    assert list(sweep_line(ax, "efdmix").get_xdata()) == [1e-3, 1e-2, 1e-1]
    assert ax.get_xscale() == "log"
    recs = [record("mixstyle", s, "art", insert=ins) for ins in (("layer2",), ("layer1", "layer2"))
            for s in (0, 1)]
    ax = sweep_figure(frame(recs), "insert").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer1,layer2", "layer2"]
    assert list(sweep_line(ax, "mixstyle").get_xdata()) == [0, 1]


def test_bad_kind_suffix_and_keys_are_one_line_errors(df, tmp_path):
    cases = [
        (dict(kind="pie"), "plot kind must be one of bars, curves, sweep"),
        (dict(kind="bars", out=tmp_path / "p.jpg"), r"must end in \.png, \.pdf, \.svg"),
        (dict(kind="bars", by="aug.alpha"), "--by names the swept key of a sweep"),
        (dict(kind="sweep"), "needs --by KEY, the swept key; keys that vary: aug.alpha$"),
        (dict(kind="sweep", by="aug.p"), "--by aug.p does not vary.*aug.alpha"),
        (dict(kind="sweep", by="aug.args.beta"), "neither a results column nor a config key"),
        (dict(kind="curves", error="var"), "error must be one of std, "),
        (dict(kind="bars", select="best"), "selection must be one of"),
    ]
    for kwargs, message in cases:
        kwargs = {"out": tmp_path / "p.png", **kwargs}
        with pytest.raises(DataError, match=message) as err:
            plot(df, **kwargs)
        assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="no finished runs"):
        plot(frame([]), "bars", tmp_path / "p.png")
    assert not list(tmp_path.iterdir())


def test_a_sweep_refuses_to_average_other_settings():
    recs = sweep_records(seeds=(0,)) + [record("efdmix", 0, sp, {"alpha": 0.1, "p": 1.0})
                                        for sp in SPLITS]
    with pytest.raises(DataError, match="efdmix runs at one aug.alpha value differ"):
        sweep_figure(frame(recs), "aug.alpha")


def test_missing_matplotlib_says_how_to_install(df, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    with pytest.raises(ConfigError, match=r"plots need matplotlib: pip install 'dgbench\[plot\]'"):
        plot(df, "bars", tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()


@draws
def test_data_uri_inlines_a_png(df):
    uri = to_data_uri(bars_figure(df))
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]).startswith(b"\x89PNG")


def searched_records(name, values, seeds=(0, 1)):
    """efdmix records of a sweep file's search over ``name`` (schema 3: they say what the
    augmenter searches), one per value, seed and split."""
    recs = []
    for v in values:
        for s in seeds:
            for sp in SPLITS:
                rec = record("efdmix", s, sp, {"alpha": 0.1, "p": 0.5, name: v})
                rec["searched"] = ["alpha", "p"]
                recs.append(rec)
    return recs


@draws
def test_a_log_uniform_search_is_drawn_on_a_log_axis():
    # samples of log_uniform [0.01, 1.0]: they span a decade and a half, not two
    alphas = [0.012, 0.034, 0.08, 0.21, 0.47]
    ax = sweep_figure(frame(searched_records("alpha", alphas)), "aug.alpha").axes[0]
    assert ax.get_xscale() == "log" and list(sweep_line(ax, "efdmix").get_xdata()) == alphas
    ps = [0.15, 0.4, 0.7, 0.95]  # a uniform search over [0.1, 1.0]: linear
    assert sweep_figure(frame(searched_records("p", ps)), "aug.p").axes[0].get_xscale() == "linear"
    recs = [record("efdmix", s, "art", {"alpha": 0.1}, lr=lr) for lr in (1e-3, 5e-3, 3.9e-2)
            for s in (0, 1)]  # an axis of the sweep file, not a search: two decades for log
    assert sweep_figure(frame(recs), "train.lr").axes[0].get_xscale() == "linear"


@draws
def test_sweep_ticks_show_floats_short():
    values = [0.1 + 0.2, 0.1234567, 0.1234568]  # 0.30000000000000004; two close samples
    ax = sweep_figure(frame(searched_records("alpha", values)), "aug.alpha").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.1234567", "0.1234568", "0.3"]


@draws
@pytest.mark.parametrize("kind", ["bars", "curves"])
def test_long_variant_labels_leave_the_axes_their_room(df, kind):
    import warnings

    tail = ", ".join(f"setting{i}=value{i}" for i in range(10))
    long = df.assign(variant=[f"{v} ({tail})" for v in df["variant"]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "constrained_layout not applied ... collapsed"
        fig = bars_figure(long) if kind == "bars" else curves_figure(long)
        to_data_uri(fig)
    for ax in fig.axes:
        assert ax.get_position().width * fig.get_figwidth() > 2.5  # inches of plot, each
    legend = fig.axes[-1].get_legend()
    assert all(len(line) <= 40 for t in legend.get_texts() for line in t.get_text().split("\n"))


def test_curves_count_the_runs_they_leave_out():
    old = record("none", 5, "art")
    for h in old["history"]:
        del h["test_acc"]
    with pytest.warns(UserWarning) as caught:
        curve_data(frame([record("none", 0, "art"), old]))
    assert "curves leave out 1 run evaluated only at their end" in [str(w.message) for w in caught]
