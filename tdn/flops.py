"""Parameter and multiply-add counts, per stage, with torch's FlopCounterMode.

FlopCounterMode counts 2 FLOPs per multiply-add (conv and matmul only); the paper's "FLOPs" are
multiply-adds, so everything here is reported as MACs = FLOPs / 2 (spec §8).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from tdn.model import CHANNELS_PER_SEGMENT, TDN
from tdn.temporal import TemporalShift

# user-facing stage name -> module path prefixes inside TDN (official attribute names)
STAGES: dict[str, tuple[str, ...]] = {
    "stem (RGB conv1)": ("base_model.conv1",),
    "S-TDM stem (conv1_5)": ("base_model.conv1_5",),
    "S-TDM res2 (resnext_layer1)": ("base_model.resnext_layer1",),
    "res2 (layer1)": ("base_model.layer1_bak",),
    "res3 (layer2)": ("base_model.layer2_bak",),
    "res4 (layer3)": ("base_model.layer3_bak",),
    "res5 (layer4)": ("base_model.layer4_bak",),
    "classifier (new_fc)": ("new_fc",),
}


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


def count_gmacs(model: TDN, size: int = 224) -> tuple[float, dict[str, float], float, float]:
    """Total GMACs of one view at ``size``², the per-stage split, and the L-TDM and shift totals."""
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
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    per_module = {
        name.removeprefix("TDN."): sum(ops.values()) for name, ops in counter.get_flop_counts().items()
    }
    for name, macs in shift_macs.items():
        for prefix in _prefixes(name):
            per_module[prefix] = per_module.get(prefix, 0) + 2 * macs
    total = counter.get_total_flops() / 2e9 + sum(shift_macs.values()) / 1e9
    stages = {stage: sum(per_module.get(p, 0) for p in prefixes) / 2e9 for stage, prefixes in STAGES.items()}
    stages = {k: v for k, v in stages.items() if v > 0}
    ltdm = sum(v for k, v in per_module.items() if k.endswith(".mse")) / 2e9
    shift = sum(shift_macs.values()) / 1e9
    return total, stages, ltdm, shift


def _prefixes(name: str) -> list[str]:
    """'a.b.c' → ['a', 'a.b', 'a.b.c'] (FlopCounterMode reports every enclosing module)."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@torch.inference_mode()
def measure_latency(model: TDN, size: int = 224, batch: int = 1, runs: int = 5, warmup: int = 2) -> float:
    """Median wall-clock milliseconds of one eval forward on the model's device."""
    device = next(model.parameters()).device
    x = torch.randn(batch, model.num_segments * CHANNELS_PER_SEGMENT, size, size, device=device)
    model.eval()
    times = []
    for i in range(warmup + runs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
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
