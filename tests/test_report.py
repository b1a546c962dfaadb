"""``dgbench report``: one self-contained HTML page, checked as a reader would see it: rendered in
headless Chromium (skipped where Chromium is absent; .ci/run installs it), the screenshot is
not blank and no image is broken."""

from __future__ import annotations

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
