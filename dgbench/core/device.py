"""Where and in what precision a run computes: the device, autocast and the memory format."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Any

import torch

from dgbench.core.errors import ConfigError


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when CUDA is available, else ``cpu``; a CUDA device must exist."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available here")
    return device


@dataclass(frozen=True)
class Env:
    """A run's device, its autocast dtype (None: full precision) and memory format."""

    device: torch.device
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False

    @classmethod
    def from_config(cls, cfg: Any) -> "Env":
        """The run's device resolved on this machine (``auto``: CUDA when it is here); CUDA
        runs use autocast and channels_last as configured, CPU runs both only with
        ``train.cpu_amp`` (bfloat16)."""
        device = torch.device(resolve_device(cfg.device))
        if device.type == "cpu":
            on = cfg.train.cpu_amp
            return cls(device, torch.bfloat16 if on else None, on)
        cuda = device.type == "cuda"
        amp = getattr(torch, cfg.train.amp_dtype) if (cuda and cfg.train.amp) else None
        return cls(device, amp, cuda and cfg.train.channels_last)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision in ``amp_dtype``, or nothing when it is None."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def images(self, images: torch.Tensor) -> torch.Tensor:
        """A batch of images on the device, channels_last when asked."""
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def effective(self, cfg: Any) -> Any:
        """A copy of the run config ``cfg`` saying what this run used: the resolved device,
        and CUDA's autocast and channels_last as they were (off on the CPU)."""
        used = copy.deepcopy(cfg)
        used.device = str(self.device)
        if not self.cuda:
            used.train.amp = used.train.channels_last = False
        return used

    def describe(self) -> dict[str, Any]:
        """The record's ``device`` block."""
        return {"type": self.device.type,
                "name": torch.cuda.get_device_name(self.device) if self.cuda else "cpu",
                "amp": str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else None,
                "channels_last": self.channels_last,
                "cudnn_benchmark": False if self.cuda else None}


def cpu_has_bf16() -> bool:
    """Whether oneDNN finds native bfloat16 support on this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # another torch build: judge by the kernel set
        return "AVX512" in torch.backends.cpu.get_cpu_capability()
