"""Parameter and multiply-add counts, per stage, with torch's FlopCounterMode.

FlopCounterMode counts 2 FLOPs per multiply-add (conv and matmul only); the paper's "FLOPs" are
multiply-adds, so everything here is reported as MACs = FLOPs / 2 (docs/architecture.md §8).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch.utils.flop_counter import FlopCounterMode

from tdn.contract import CHANNELS_PER_SEGMENT
from tdn.network.model import TDN
from tdn.network.runtime import eval_mode
from tdn.network.temporal import TemporalShift, as_written
from tdn.util import ms_since


@dataclass
class Profile:
    """The result of ``profile_model``; ``gmacs`` counts one view (one forward of batch 1)."""

    params: int
    gmacs: float
    stages: dict[str, float]
    ltdm_gmacs: float
    shift_gmacs: float
    latency_ms: float | None
    device: str
    input_shape: tuple[int, ...]

    def to_dict(self) -> dict:
        return asdict(self)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class MacCount(NamedTuple):
    """GMACs of one view: the total, the split by stage label, and the L-TDM and shift shares."""

    total: float
    stages: dict[str, float]
    ltdm: float
    shift: float


def count_gmacs(model: TDN, size: int = 224) -> MacCount:
    """Multiply-adds of one forward of batch 1 at ``size``², in GMACs."""
    t = model.num_segments
    device = next(model.parameters()).device
    x = torch.zeros(1, t * CHANNELS_PER_SEGMENT, size, size, device=device)
    # The shift runs as scaled slices, which FlopCounterMode does not see; count it as the official
    # depthwise kernel-3 Conv1d it is (3 multiply-adds per output element).
    shift_macs: dict[str, int] = {}
    handles = [
        module.register_forward_hook(
            lambda _m, inp, _out, name=name: shift_macs.__setitem__(name, 3 * inp[0].numel())
        )
        for name, module in model.named_modules()
        if isinstance(module, TemporalShift)
    ]
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad(), eval_mode(model), as_written():
            model(x)
    finally:
        for h in handles:
            h.remove()
    per_module = {
        name.removeprefix("TDN."): sum(ops.values()) for name, ops in counter.get_flop_counts().items()
    }
    for name, macs in shift_macs.items():
        for prefix in _prefixes(name):
            per_module[prefix] = per_module.get(prefix, 0) + 2 * macs
    total = counter.get_total_flops() / 2e9 + sum(shift_macs.values()) / 1e9
    stages = {s.label: sum(per_module.get(p, 0) for p in s.macs_of) / 2e9 for s in model.stages}
    stages = {k: v for k, v in stages.items() if v > 0}
    ltdm = sum(v for k, v in per_module.items() if k.endswith(".mse")) / 2e9
    shift = sum(shift_macs.values()) / 1e9
    return MacCount(total, stages, ltdm, shift)


def _prefixes(name: str) -> list[str]:
    """'a.b.c' → ['a', 'a.b', 'a.b.c'] (FlopCounterMode reports every enclosing module)."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@torch.inference_mode()
def measure_latency(model: TDN, size: int = 224, batch: int = 1, runs: int = 5, warmup: int = 2) -> float:
    """Median wall-clock milliseconds of one eval forward on the model's device."""
    device = next(model.parameters()).device
    x = torch.randn(batch, model.num_segments * CHANNELS_PER_SEGMENT, size, size, device=device)
    times = []
    with torch.inference_mode(), eval_mode(model):
        for i in range(warmup + runs):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(ms_since(start))
    return statistics.median(times)


def profile_model(model: TDN, size: int = 224, latency_runs: int = 5) -> Profile:
    """Params, GMACs (total and per stage) and, unless ``latency_runs`` is 0, measured latency."""
    total, stages, ltdm, shift = count_gmacs(model, size)
    latency = measure_latency(model, size, runs=latency_runs) if latency_runs > 0 else None
    device = next(model.parameters()).device
    return Profile(
        params=count_params(model),
        gmacs=total,
        stages=stages,
        ltdm_gmacs=ltdm,
        shift_gmacs=shift,
        latency_ms=latency,
        device=torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)",
        input_shape=(1, model.num_segments * CHANNELS_PER_SEGMENT, size, size),
    )
