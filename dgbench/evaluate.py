"""Evaluation: classification accuracy with the model in eval mode (augmenters off)."""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.utils.data import DataLoader


def to_device(
    images: torch.Tensor, labels: torch.Tensor, device: torch.device, channels_last: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move a batch to ``device`` (channels_last images when asked)."""
    images = images.to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, labels.to(device, non_blocking=True)


def autocast(device: torch.device, amp_dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision in ``amp_dtype``, or nothing when it is None."""
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=amp_dtype)


@torch.no_grad()
def count_correct(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> tuple[int, int]:
    """(correct, total) of ``model``'s top-1 predictions over ``loader``."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    total = 0
    for images, labels, _ in loader:
        images, labels = to_device(images, labels, device, channels_last)
        with autocast(device, amp_dtype):
            logits = model(images)
        correct += (logits.argmax(dim=1) == labels).sum()
        total += labels.numel()
    return int(correct), total


def evaluate_tests(
    model: nn.Module,
    loaders: dict[str, DataLoader],
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> tuple[dict[str, dict[str, float | int]], float]:
    """Accuracy on each test set, and pooled over their union (correct / images, not a mean
    of accuracies: the single-source number the papers publish)."""
    test: dict[str, dict[str, float | int]] = {}
    for name, loader in loaders.items():
        correct, total = count_correct(model, loader, device, amp_dtype, channels_last)
        test[name] = {"acc": correct / max(total, 1), "correct": correct, "n": total}
    pooled = sum(t["correct"] for t in test.values()) / max(sum(t["n"] for t in test.values()), 1)
    return test, pooled
