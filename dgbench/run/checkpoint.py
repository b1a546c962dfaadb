"""A run's checkpoint: everything its next epoch depends on, written at the end of every epoch.

The model, the optimizer, the gradient scaler, the training loader's generator and its
sampler's state, the image cache's augmentation generator, every random number generator
(Python, NumPy, torch on the CPU and every CUDA device) and the history so far. It is written
to a temporary file and renamed over the previous one, so a run killed at any line (even
during the write) finds a complete checkpoint of its last finished epoch, and resumes from it:
on the CPU the finished record equals an uninterrupted run's in every metric.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dgbench.core.files import atomic_write
from dgbench.store.layout import CHECKPOINT


class Checkpoint:
    """Saves and restores the state of one run's training (``parts``: the objects whose
    ``state_dict`` / ``get_state`` the next epoch depends on; None entries are skipped)."""

    def __init__(self, run_dir: Path | None, model: torch.nn.Module, optimizer: Any,
                 scaler: Any, loader: Any, augment_gen: torch.Generator | None) -> None:
        self.path = run_dir / CHECKPOINT if run_dir is not None else None
        self.epoch = 0  # the epochs the checkpoint on disk holds (0: none)
        self.model, self.optimizer, self.scaler = model, optimizer, scaler
        self.loader, self.augment_gen = loader, augment_gen

    def save(self, epoch: int, history: list[dict[str, Any]], counters: list[float]) -> None:
        """The state after ``epoch`` epochs, with ``counters`` (images trained on, seconds
        spent training), atomically: the previous file stays until this one is complete."""
        if self.path is None:
            return
        sampler = getattr(self.loader, "batch_sampler", None)
        state = {
            "epoch": epoch, "history": history, "counters": counters,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "loader": self.loader.generator.get_state(),
            "sampler": sampler.state_dict() if hasattr(sampler, "state_dict") else None,
            "augment": self.augment_gen.get_state() if self.augment_gen is not None else None,
            "rng": {"python": random.getstate(), "numpy": np.random.get_state(),
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        }
        atomic_write(self.path, lambda f: torch.save(state, f))
        self.epoch = epoch

    def restore(self) -> dict[str, Any] | None:
        """Load the checkpoint into every part, if there is one: ``epoch``, ``history`` and
        ``counters`` to continue from; None for a fresh start."""
        if self.path is None or not self.path.is_file():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=False)  # our own file
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.loader.generator.set_state(state["loader"])
        if state["sampler"] is not None:
            self.loader.batch_sampler.load_state_dict(state["sampler"])
        if self.augment_gen is not None:
            self.augment_gen.set_state(state["augment"])
        self.epoch = state["epoch"]
        rng = state["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"]:
            torch.cuda.set_rng_state_all(rng["cuda"])
        return {k: state[k] for k in ("epoch", "history", "counters")}
