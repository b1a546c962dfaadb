"""``dgbench report``: one self-contained HTML page, checked as a reader would see it: rendered in
headless Chromium (skipped where Chromium is absent; .ci/run installs it), the screenshot is
not blank and no image is broken."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dgbench.cli import main


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Two augmenters x two seeds x four targets of the toy dataset (2 epochs: curves), one
    failed run and one damaged record beside them."""
    out = tmp_path_factory.mktemp("report")
    assert main(["run", "--dataset", "toy", "--aug", "none,efdmix", "--seeds", "1,2",
                 "--epochs", "2", "--out", str(out), "--no-progress", "--threads", "1"]) == 0
    with pytest.warns(UserWarning):
        assert main(["run", "--dataset", "toy", "--aug", "mixstyle", "--targets", "red",
                     "train.lr=1e30", "--out", str(out), "--no-progress"]) == 2
    broken = out / "toy-lodo" / "deadbeef0000"
    broken.mkdir()
    shutil.copy(next(out.rglob("config.json")), broken / "config.json")
    (broken / "record.json").write_text("{not json")
    (broken / "done").write_text("")
    return out


def _report(results: Path, tmp_path: Path, *flags: str) -> str:
    page = tmp_path / "report.html"
    assert main(["report", str(results), "-o", str(page), *flags]) == 0
    return page.read_text()


def test_the_report_holds_every_part_and_needs_no_network(results, tmp_path):
    text = _report(results, tmp_path)
    for part in ("<h2 id='toy-lodo'>toy-lodo</h2>", "Paired comparison with the baseline none",
                 "Wilcoxon p", "What differs between the compared configs", "aug.names",
                 "<h2>Environment</h2>", "environment.torch", "Deviations from the reference code",
                 "Failed (1)", "the training loss was not finite", "Files not read as results (",
                 "deadbeef0000"):
        assert part in text, part
    images = re.findall(r"<img [^>]*src='([^']*)'", text)
    assert len(images) == 2 and all(i.startswith("data:image/png;base64,") for i in images)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing fetched
    assert "<script" not in text


def test_report_refuses_what_it_cannot_read(tmp_path, capsys):
    assert main(["report", str(tmp_path / "none"), "-o", str(tmp_path / "r.html")]) == 2
    assert "is not a results folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "-o", str(tmp_path / "r.html")]) == 2
    assert "no run records under" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


CHECK = """<script>window.addEventListener('load', () => { const imgs = [...document.images];
const bad = imgs.filter(i => !i.complete || i.naturalWidth === 0).length;
document.body.insertAdjacentHTML('beforeend',
  '<p id="dgcheck">images=' + imgs.length + ' broken=' + bad + '</p>'); });</script>"""


@pytest.mark.skipif(_chromium() is None, reason="no Chromium (Debian: apt-get install chromium)")
def test_the_report_renders_in_chromium(results, tmp_path):
    from PIL import Image

    browser = _chromium()
    _report(results, tmp_path)
    page = tmp_path / "report.html"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--virtual-time-budget=5000"]
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01  # text and plots, not a blank page
    probe = tmp_path / "probe.html"  # the same page with a check of every image after load
    probe.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
    dom = subprocess.run([*flags, "--dump-dom", probe.as_uri()], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    assert re.search(r'id="dgcheck">images=2 broken=0<', dom), dom[-500:]


STORED = Path(__file__).parent / "data" / "results"  # four experiments, a failed run, ReID


@pytest.fixture(scope="module")
def stored_page(tmp_path_factory) -> Path:
    page = tmp_path_factory.mktemp("stored") / "report.html"
    assert main(["report", str(STORED), "-o", str(page)]) == 0
    return page


def _sections(text: str) -> dict[str, str]:
    """The page's text per experiment (from its <h2> to the next)."""
    parts = re.split(r"<h2 id='([^']*)'>", text)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_rows_are_labelled_within_each_experiment(stored_page):
    sections = _sections(stored_page.read_text())
    assert set(sections) == {"digits-lodo", "digits-single", "grid-to-market1501",
                             "market1501-to-grid"}
    heads = {name: re.findall(r"<th scope='row'>([^<]*)</th>", s.split("<h3>Paired")[0])
             for name, s in sections.items()}
    assert heads["digits-lodo"] == ["none", "efdmix (alpha=0.1)", "efdmix (alpha=0.3)"]
    assert heads["digits-single"] == ["none", "mixstyle"]
    assert heads["market1501-to-grid"] == heads["grid-to-market1501"] == ["none", "efdmix"]
    # the failed runs are digits-lodo's: listed there, not under every experiment
    assert [name for name, s in sections.items() if "failed runs (4)" in s] == ["digits-lodo"]


def test_tables_scroll_and_plots_keep_their_drawn_size(stored_page):
    from dgbench.report.figures import DPI, png_size

    text = stored_page.read_text()
    assert text.count("<table>") == text.count("<div class='wide'><table>") > 10
    css = text.split("<style>")[1].split("</style>")[0]
    assert "div.wide { overflow-x: auto;" in css and "max-width: 100%; height: auto" in css
    assert not re.search(r"[^-]width: 100%", css)  # nothing is stretched to the page
    images = re.findall(r"<img alt='[a-z]+ plot' width='(\d+)' height='(\d+)' "
                        r"src='data:image/png;base64,([^']*)'>", text)
    assert len(images) == 6
    for width, height, data in images:
        drawn = png_size(base64.b64decode(data))
        assert (int(width), int(height)) == tuple(px * 96 // DPI for px in drawn)


def test_significant_cells_are_shaded_by_direction():
    from dgbench.report.html import comparison_section, table_section
    from dgbench.results.frame import frame
    from dgbench.results.tables import build_table

    def rec(aug, seed, target, acc):
        return {"schema": 3, "task": "classification", "aug": aug, "seed": seed, "searched": [],
                "run_id": f"{aug}-{seed}-{target}", "split": {"name": target, "index": 0},
                "config": {"data": {"name": "toy"},
                           "protocol": {"name": "lodo", "targets": [target]},
                           "model": {"backbone": "resnet18"}, "seeds": [seed],
                           "train": {"epochs": 1},
                           "aug": {"names": [aug], "args": {}, "insert": ["layer1"]}},
                "dataset": {"titles": {}}, "final": {"score": acc, "test": {target: {"acc": acc}}},
                "history": [{"epoch": 1, "val_acc": 0.5, "score": acc, "test_acc": {target: acc}}]}

    rng = np.random.default_rng(0)
    recs = [r for s in range(8) for base in [0.6 + 0.05 * rng.standard_normal()]
            for r in (rec("none", s, "red", base), rec("efdmix", s, "red", base - 0.03),
                      rec("mixstyle", s, "red", base + 0.03 + 0.001 * s))]
    html_text, found = table_section(build_table(frame(recs)), "none", "wilcoxon", 0.05)
    efdmix = next(r for r in html_text.split("<tr>") if "efdmix" in r)
    mixstyle = next(r for r in html_text.split("<tr>") if "mixstyle" in r)
    assert "class='worse'" in efdmix and "↓" in efdmix and "better" not in efdmix
    assert "class='better'" in mixstyle and "↑" in mixstyle and "worse" not in mixstyle
    assert "Shaded green (↑): significantly better than the baseline; red (↓)" in html_text
    shaded = comparison_section(found)
    rows = {r.split("</th>")[0]: r for r in shaded.split("<tr>") if "<th scope='row'>" in r}
    assert "class='worse'" in rows["<th scope='row'>efdmix"]
    assert "class='better'" in rows["<th scope='row'>mixstyle"]
    assert "green where the variant is better than the baseline, red where it is worse" in shaded


def test_one_run_reads_in_the_singular(tmp_path):
    run = next(p.parent for p in (STORED / "digits-single").glob("*/record.json"))
    shutil.copytree(run, tmp_path / "results" / "digits-single" / run.name)
    text = _report(tmp_path / "results", tmp_path)
    assert "1 finished run in 1 experiment: digits-single." in text
    assert "1 runs" not in text and "experiment(s)" not in text


@pytest.mark.skipif(_chromium() is None, reason="no Chromium (Debian: apt-get install chromium)")
def test_a_wide_table_scrolls_in_its_box_not_the_page(stored_page, tmp_path):
    probe = tmp_path / "probe.html"
    check = """<script>window.addEventListener('load', () => {
const page = document.documentElement.scrollWidth <= window.innerWidth;
const boxes = [...document.querySelectorAll('table')].map(t => t.parentElement);
const scroll = boxes.every(b => getComputedStyle(b).overflowX === 'auto');
const wide = boxes.filter(b => b.scrollWidth > b.clientWidth).length;
const stretched = [...document.images].filter(i => i.clientWidth > i.naturalWidth).length;
document.body.insertAdjacentHTML('beforeend', '<p id="dgcheck">page=' + page + ' scroll=' +
  scroll + ' wide=' + wide + ' stretched=' + stretched + '</p>'); });</script>"""
    probe.write_text(stored_page.read_text().replace("</body>", check + "</body>"))
    dom = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                          "--window-size=1000,2000", "--virtual-time-budget=5000", "--dump-dom",
                          probe.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    found = re.search(r'id="dgcheck">page=(\w+) scroll=(\w+) wide=(\d+) stretched=(\d+)<', dom)
    assert found, dom[-500:]
    page, scroll, wide, stretched = found.groups()
    assert (page, scroll, stretched) == ("true", "true", "0") and int(wide) >= 1
