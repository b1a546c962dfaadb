"""docs/fidelity.md is generated from the code and presets, every item marked same holds, and
every departure is in the README and recorded in the runs it affects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dgbench.run import deviations as D
from dgbench.report.fidelity import _UNSET, ITEMS, Item, markdown

REPO = Path(__file__).resolve().parents[1]


def test_the_committed_table_is_current():
    assert (REPO / "docs" / "fidelity.md").read_text() == markdown(), (
        "docs/fidelity.md is stale: run 'dgbench list fidelity > docs/fidelity.md'")


@pytest.mark.parametrize("item", [i for i in ITEMS if i.expected is not _UNSET],
                         ids=lambda i: i.what)
def test_items_read_from_the_code_equal_the_official_value(item):
    assert item.status == "same"
    assert item.value() == item.expected


def test_every_section_of_the_reference_is_covered():
    sections = {i.section for i in ITEMS}
    assert sections == {"1. Augmenters", "2. PACS", "3. Re-identification", "4. Tables",
                        "5. DomainBed's protocol"}
    assert {i.status for i in ITEMS} <= {"same", "departure (recorded)",
                                         "departure (documented)", "missing"}


def test_every_documented_departure_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Where dgbench departs"):]
    section = " ".join(section[:section.index("\n## ", 3)].split())
    for item in ITEMS:
        if item.status == "departure (documented)":
            words = item.what.split(" (")[0].split(":")[0]
            assert words.lower() in section.lower(), f"the README does not list {words!r}"


def test_every_recorded_departure_is_in_the_readme_and_in_the_runs_it_affects():
    from dgbench.config import Config
    from dgbench.augmenters import AUGMENTERS
    from dgbench.tasks._base import get_task

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Where dgbench departs"):]
    section = section[:section.index("\n## ", 3)]
    recorded = set()
    for aug in AUGMENTERS.names():
        for sampler, epoch, batch in (("random", "fixed", 64), ("domain", "fixed", 7),
                                      ("domain", "dassl", 128)):
            cfg = Config()
            cfg.aug.names, cfg.train.sampler, cfg.train.domain_epoch = [aug], sampler, epoch
            cfg.data.batch_size, cfg.aug.args = batch, {"mix": "crossdomain"}
            for task in ("classification", "reid"):
                recorded |= set(D.for_run(cfg, get_task(task), AUGMENTERS.get(aug), cache=True))
    for recipe in ("domainbed", "domainbed-2020"):  # DomainBed's protocol, step-based
        cfg = Config()
        cfg.train.steps, cfg.train.checkpoint_freq, cfg.protocol.recipe = 5001, 300, recipe
        recorded |= set(D.for_run(cfg, get_task("classification"), AUGMENTERS.get("none"),
                                  cache=False))
    constants = {v for k, v in vars(D).items() if k.isupper() and isinstance(v, str)}
    assert constants <= recorded  # each can reach a record
    for text in recorded:
        name = text.split(":")[0].split(" (")[0]  # e.g. "Domain sampler", "MixStyle/AdaIN"
        assert name.lower() in section.lower(), f"the README does not list {name!r}"


def test_dgbench_column_says_what_each_value_is():
    """A value read from code is shown with what it is (the setting, default or preset it
    comes from), never as a bare ``(0.5, 0.5)`` or ``False``."""
    for item in ITEMS:
        if not callable(item.ours):
            continue
        said, bare = item.said(), str(item.value())
        words = [len(re.findall(r"[A-Za-z]{3,}", text)) for text in (said, bare)]
        assert words[0] > words[1], f"{item.what}: {said}"
    with pytest.raises(ValueError, match="say what its value is"):
        Item("x", "y", "z", lambda: 1).said()
