"""Paired comparisons and table estimators, checked against SciPy and NumPy on hand-made
records: a known shift is found, no shift is not, the bootstrap CI covers the truth about 95%
of the time, unmatched runs are named, and the CLI fails in one line."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as S

from dgbench.cli import main
from dgbench.core.errors import DataError
from dgbench.results.frame import frame
from dgbench.results.stats import bootstrap_ci, compare, mark_significant, paired
from dgbench.results.tables import build_table
from dgbench.report.compare import caption, render_comparison
from dgbench.report.text import render

TARGETS = ("red", "green", "blue")


def record(aug: str, seed: int, target: str, acc: float, protocol: str = "lodo",
           **args: float) -> dict:
    """A finished LODO classification record: one epoch, ``acc`` on the held-out ``target``."""
    return {
        "schema": 2, "task": "classification", "aug": aug, "seed": seed,
        "run_id": f"{aug}-{'-'.join(f'{k}{v}' for k, v in args.items())}-{seed}-{target}",
        "split": {"name": target, "index": TARGETS.index(target)},
        "config": {"data": {"name": "toy"}, "protocol": {"name": protocol, "targets": [target]},
                   "model": {"backbone": "resnet18"}, "seeds": [seed], "train": {"epochs": 1},
                   "aug": {"names": [aug], "args": dict(args), "insert": ["layer1"]}},
        "dataset": {"titles": {}},
        "history": [{"epoch": 1, "val_acc": 0.5, "score": acc, "test_acc": {target: acc}}],
        "final": {"score": acc, "test": {target: {"acc": acc}}},
    }


def shifted(shift: float, seeds: int = 5, noise: float = 0.01, rng_seed: int = 0,
            aug: str = "efdmix") -> tuple[list[dict], np.ndarray]:
    """Baseline ``none`` and ``aug`` records; ``aug`` = none + ``shift`` + noise (fractions).
    Also the differences in %, target-major, seed-minor."""
    rng = np.random.default_rng(rng_seed)
    recs, diffs = [], []
    for t in TARGETS:
        for s in range(seeds):
            base = 0.6 + 0.05 * rng.standard_normal()
            other = base + shift + noise * rng.standard_normal()
            recs += [record("none", s, t, base), record(aug, s, t, other)]
            diffs.append(100 * other - 100 * base)
    return recs, np.array(diffs)


def test_a_known_shift_is_detected_with_the_right_sign():
    recs, diffs = shifted(0.03)
    found = compare(frame(recs), baseline="none", n_boot=2000)
    pooled = found.get("efdmix")
    assert pooled.n == 15 and pooled.wins == 15 and pooled.losses == pooled.ties == 0
    assert pooled.mean == pytest.approx(diffs.mean()) and pooled.mean > 0
    assert 0 < pooled.ci[0] < pooled.mean < pooled.ci[1]
    assert pooled.wilcoxon < 0.001 and pooled.sign < 0.001
    assert pooled.wilcoxon == pytest.approx(S.wilcoxon(diffs).pvalue)
    assert pooled.sign == pytest.approx(S.binomtest(15, 15).pvalue)
    red = found.get("efdmix", "red")
    assert red.n == 5 and red.mean == pytest.approx(diffs[:5].mean())
    assert red.wilcoxon == pytest.approx(S.wilcoxon(diffs[:5]).pvalue)  # 2 / 2**5
    assert "(here as few as 5) a percentile-bootstrap CI runs too narrow" in caption(found)
    worse = compare(frame(shifted(-0.03)[0]), n_boot=500).get("efdmix")
    assert worse.mean < 0 and worse.ci[1] < 0 and worse.losses == 15


def test_no_shift_is_not_detected():
    recs, diffs = shifted(0.0, seeds=8, noise=0.01, rng_seed=3)
    pooled = compare(frame(recs), n_boot=2000).get("efdmix")
    assert pooled.n == 24 and pooled.ci[0] < 0 < pooled.ci[1]
    assert pooled.wilcoxon > 0.2 and pooled.sign > 0.2
    assert pooled.wilcoxon == pytest.approx(S.wilcoxon(diffs).pvalue)


def test_bootstrap_ci_covers_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(12345)
    hits = 0
    for sim in range(200):
        diffs = 1.0 + 2.0 * rng.standard_normal(30)
        low, high = bootstrap_ci(diffs, seed=sim, n_boot=2000)
        hits += low <= 1.0 <= high
    assert 0.90 <= hits / 200 <= 0.99


def test_bootstrap_is_seeded_and_a_percentile_interval():
    d = np.array([0.5, 1.5, -0.2, 2.0, 1.1, 0.7])
    assert bootstrap_ci(d, seed=7) == bootstrap_ci(d, seed=7)
    assert bootstrap_ci(d, seed=7) != bootstrap_ci(d, seed=8)
    rng = np.random.default_rng(7)  # the same resamples, by hand
    means = d[rng.integers(0, len(d), size=(1000, len(d)))].mean(axis=1)
    assert bootstrap_ci(d, seed=7, n_boot=1000) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))


def test_sign_and_wilcoxon_equal_scipys_on_hand_data():
    d = [1.5, -0.5, 2.0, 3.0, 0.0, 1.0, -1.0, 2.5, 4.0]
    r = paired(d, n_boot=0)
    assert (r.n, r.wins, r.losses, r.ties) == (9, 6, 2, 1)
    assert r.mean == pytest.approx(np.mean(d))
    assert r.wilcoxon == pytest.approx(S.wilcoxon(d).pvalue)
    assert r.sign == pytest.approx(S.binomtest(6, 8, 0.5).pvalue)
    assert np.isnan(r.ci[0])  # no bootstrap asked for


def test_degenerate_pairs_give_a_reason_and_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zeros = paired([0.0, 0.0, 0.0])
        one = paired([2.0])
        none = paired([])
    assert zeros.wilcoxon == 1.0 and zeros.sign == 1.0 and zeros.ties == 3
    assert "every difference is zero" in zeros.note and zeros.ci == (0.0, 0.0)
    assert np.isnan(one.wilcoxon) and np.isnan(one.sign) and np.isnan(one.ci[0])
    assert "fewer than two pairs" in one.note and one.mean == 2.0
    assert none.n == 0 and np.isnan(none.mean) and none.note == "no matched pairs"


def test_unmatched_runs_are_listed_by_name_and_not_paired():
    recs, _ = shifted(0.02)
    recs = [r for r in recs if r["run_id"] not in ("none--4-green", "efdmix--0-blue")]
    found = compare(frame(recs), n_boot=100)
    assert found.get("efdmix").n == 13
    assert found.unmatched == ["efdmix, seed 4, green (no none run to pair with)",
                               "none, seed 0, blue (no efdmix run to pair with)"]
    assert found.get("efdmix", "red").unmatched == []
    text = render_comparison(found)
    assert "unmatched runs (2), not compared: efdmix, seed 4, green" in text
    assert "none, seed 0, blue (no efdmix run" in render_comparison(found, "csv")


def test_compared_values_are_the_tables_cells():
    recs, _ = shifted(0.02, noise=0.02)
    table = build_table(frame(recs))
    found = compare(frame(recs), n_boot=0)
    for col in TARGETS:
        gap = table.stats("efdmix", col)[0] - table.stats("none", col)[0]
        assert found.get("efdmix", col).mean == pytest.approx(gap)
    assert found.get("efdmix").mean == pytest.approx(table.average("efdmix") - table.average("none"))
    assert [r.column for r in compare(frame(recs), per_target=False).results] == ["Avg"]


def test_baseline_by_augmenter_or_label_and_a_clear_error_otherwise():
    recs = [record("none", 0, "red", 0.5), record("efdmix", 0, "red", 0.6, alpha=0.1),
            record("efdmix", 0, "red", 0.7, alpha=0.3)]
    df = frame(recs)
    assert compare(df, "efdmix (alpha=0.3)", n_boot=0).baseline == "efdmix (alpha=0.3)"
    assert {r.variant for r in compare(df, "none", n_boot=0).results} == {
        "efdmix (alpha=0.1)", "efdmix (alpha=0.3)"}
    with pytest.raises(DataError, match="names several variants"):
        compare(df, "efdmix")
    with pytest.raises(DataError, match=r"no variant 'mixstyle'.*none; efdmix \(alpha=0.1\)"):
        compare(df, "mixstyle")
    with pytest.raises(DataError, match="only the baseline"):
        compare(frame(recs[:1]))


def test_estimators_equal_numpy_and_scipy():
    values = [0.61, 0.64, 0.625, 0.66]
    recs = [record("none", s, "red", v) for s, v in enumerate(values)]
    pct = 100 * np.array(values)
    n = len(pct)
    expect = {"std": np.std(pct), "sd": np.std(pct, ddof=1), "se": np.std(pct) / np.sqrt(n),
              "ci95": S.t.ppf(0.975, n - 1) * S.sem(pct)}
    for error, value in expect.items():
        mean, spread, count = build_table(recs, error=error).stats("none", "red")
        assert (mean, count) == (pytest.approx(pct.mean()), n)
        assert spread == pytest.approx(value), error
    low, high = S.t.interval(0.95, n - 1, loc=pct.mean(), scale=S.sem(pct))
    assert expect["ci95"] == pytest.approx((high - low) / 2)
    single = build_table(recs[:1], error="sd")
    assert np.isnan(single.stats("none", "red")[1]) and "| 61.0  |" in render(single)
    assert "sample std (ddof=1)" in single.caption()


def test_bold_marks_the_best_mean_of_each_column():
    recs = [record("none", 0, "red", 0.50), record("none", 0, "green", 0.70),
            record("efdmix", 0, "red", 0.60), record("efdmix", 0, "green", 0.65)]
    table = build_table(recs)
    md = render(table)
    assert "| **60.0** |" in md and "| **70.0** |" in md and "| **62.5**" in md  # one run each
    assert "| 50.0 " in md and "Bold: the best mean of its column." in md
    assert "**" not in render(table, bold=False) and "Bold" not in render(table, bold=False)
    assert "\\textbf{60.0}" in render(table, "latex")
    assert "**" not in render(build_table(recs[:2]))  # one row: nothing to pick out


def test_mark_significant_marks_cells_and_says_how_in_the_caption():
    recs, _ = shifted(0.03, seeds=8)
    recs += shifted(0.0, seeds=8, rng_seed=3, aug="mixstyle")[0][1::2]
    table = build_table(frame(recs))
    found = mark_significant(table, "none", "wilcoxon", 0.05)
    assert found.get("efdmix", "red").wilcoxon == pytest.approx(2 / 2 ** 8)
    md = render(table)
    row = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert row["efdmix"].count("↑") == 4 and "↑" not in row["none"]  # three targets and Avg
    assert "↑" not in row["mixstyle"] and "↓" not in row["mixstyle"] + row["efdmix"]
    assert "two-sided Wilcoxon signed-rank test" in md and "p < 0.05" in md
    assert "8 pairs per column, 24 pairs pooled for Avg" in md
    assert "$^\\uparrow$" in render(table, "latex")
    assert render(table, "csv").splitlines()[0].endswith(",p,significant,direction")

    few = build_table(frame(shifted(0.03, seeds=3)[0]))
    mark_significant(few, test="sign", alpha=0.05)
    text = render(few)
    assert "sign test" in text and "With 3 pairs no column can reach p < 0.05" in text
    assert text.count("↑") == 2  # Avg (9 pairs) only: the caption's and the cell's


def test_domainbed_format():
    recs, _ = shifted(0.02)
    table = build_table(frame(recs), error="se")
    lines = render(table, "domainbed").splitlines()
    assert lines[0] == ("-------- Dataset: toy (lodo), model selection method: last epoch "
                        "(no model selection)")
    assert lines[1].split() == ["Algorithm", "red", "green", "blue", "Avg"]
    assert lines[2].split()[:4] == ["none", f"{table.stats('none', 'red')[0]:.1f}", "+/-",
                                    f"{table.stats('none', 'red')[1]:.1f}"]
    assert lines[3].startswith("efdmix ") and "**" not in "\n".join(lines)
    assert "standard error" in lines[5]


def write(folder: Path, recs: list[dict]) -> Path:
    for r in recs:
        run = folder / r["run_id"]
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps(r["config"]))
        (run / "record.json").write_text(json.dumps(r))
        (run / "done").touch()
    return folder


def test_cli_compare_and_table_options(tmp_path, capsys):
    folder = write(tmp_path / "exp", shifted(0.03)[0])
    assert main(["compare", str(folder), "--bootstrap", "500", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in out.splitlines()
             if line.startswith("| efdmix")]
    assert cells[0][:3] == ["efdmix", "all (pooled)", "15"] and len(cells) == 4
    assert "(500 resamples of the pairs, numpy seed 3)" in out
    assert main(["compare", str(folder), "--format", "csv", "--pooled-only"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("efdmix,Avg,15,")
    assert main(["compare", str(folder), "--format", "latex", "--output", str(tmp_path / "c.tex")]) == 0
    assert (tmp_path / "c.tex").read_text().startswith("\\begin{table}")
    assert main(["table", str(folder), "--format", "domainbed", "--mark-significant"]) == 0
    out = capsys.readouterr().out
    assert "+/-" in out and "standard error" in out and "↑" in out
    assert main(["table", str(folder), "--error", "ci95", "--no-bold"]) == 0
    out = capsys.readouterr().out
    assert "95% confidence-interval" in out and "**" not in out


def exit_status(argv: list[str]) -> int:
    """``main``'s status, also where argparse exits by itself (a bad choice)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


@pytest.mark.parametrize("args, says", [
    (["--baseline", "mixstyle"], "no variant 'mixstyle' in these results"),
    (["--bootstrap", "-1"], "bootstrap resamples must be an integer >= 0"),
    (["--seed", "-2"], "seed must be an integer >= 0"),
    (["--format", "xml"], "invalid choice: 'xml'"),
])
def test_cli_compare_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, says):
    folder = write(tmp_path / "exp", shifted(0.03, seeds=2)[0])
    assert exit_status(["compare", str(folder), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dgbench: error: ") and says in err and err.count("\n") == 1


def test_cli_compare_refuses_empty_folders_and_mixed_protocols(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    assert "no run records under" in capsys.readouterr().err
    mixed = write(tmp_path / "mixed", [record("none", 0, "red", 0.5),
                                       record("efdmix", 0, "red", 0.6, protocol="single")])
    assert main(["compare", str(mixed)]) == 2
    assert "mix protocols" in capsys.readouterr().err
    folder = write(tmp_path / "exp", shifted(0.03, seeds=2)[0])
    for bad in (["--alpha", "2"], ["--baseline", "nope"], ["--test", "t"]):
        assert exit_status(["table", str(folder), "--mark-significant", *bad]) == 2
        assert capsys.readouterr().err.startswith("dgbench: error: ")


def test_a_significant_loss_is_marked_worse_not_better():
    recs, _ = shifted(-0.03, seeds=8)
    table = build_table(frame(recs))
    mark_significant(table, "none", "wilcoxon", 0.05)
    md = render(table)
    row = next(line for line in md.splitlines() if line.startswith("| efdmix"))
    assert row.count("↓") == 4 and "↑" not in row  # three targets and Avg, all worse
    assert "↓ one significantly worse" in md
    assert render(table, "latex").count("$^\\downarrow$") == 4
    assert render(table, "domainbed").count("↓") == 5  # four cells and the legend
    lines = render(table, "csv").splitlines()
    assert {line.rsplit(",", 1)[1] for line in lines if line.startswith("efdmix")} == {"worse"}
    assert all(line.endswith(",False,") for line in lines if line.startswith("none"))
    gain = build_table(frame(shifted(0.03, seeds=8)[0]))
    mark_significant(gain)
    assert gain.direction("efdmix", "red") == "better"
    assert table.direction("efdmix", "red") == "worse"


@pytest.mark.parametrize("error", ["std", "sd", "se", "ci95"])
def test_a_cell_of_one_run_shows_no_error_bar_and_says_why(error):
    recs = [record(aug, 1, t, acc) for aug, acc in (("none", 0.6), ("efdmix", 0.7))
            for t in TARGETS]
    table = build_table(frame(recs), error=error)
    mark_significant(table)
    for fmt in ("markdown", "latex", "domainbed", "csv"):
        text = render(table, fmt)
        for bar in ("± 0.0", "± -", "+/- 0.0", "+/- -", "$\\pm$ 0.0", "$\\pm$ -"):
            assert bar not in text, (fmt, bar)
        if fmt != "csv":
            assert "A cell of one run shows its mean alone: one run has no error bar." in text
    assert "| 60.0 " in render(table) and "60.0 $\\pm$" not in render(table, "latex")
    assert render(table, "csv").splitlines()[1] == "none,red,60.00,,1,60.00,,False,"
    assert "1 pair per column, 3 pairs pooled for Avg" in render(table)
    assert "With 1 pair no column can reach" in render(table)
    assert "over seed 1 of" in render(table) and "seeds 1" not in render(table)
    two = build_table(frame(shifted(0.03, seeds=2)[0]), error=error)
    assert "one run has no error bar" not in render(two)
