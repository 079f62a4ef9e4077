"""The input contract between video input and the network (docs/architecture.md, "Input contract").

Both sides import these facts from here, so neither needs to know the other: a segment is a *snippet* of
``FRAMES_PER_SNIPPET`` consecutive RGB frames, stacked on the channel axis; the appearance stream reads the
snippet's ``CENTRE_FRAME``; frames are normalised with the ImageNet statistics. :class:`ClipSpec` is the
preprocessing one checkpoint expects; :class:`tdn.network.checkpoint.CheckpointInfo` carries one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

FRAMES_PER_SNIPPET = 5
CENTRE_FRAME = FRAMES_PER_SNIPPET // 2
CHANNELS_PER_SEGMENT = 3 * FRAMES_PER_SNIPPET  # channel = frame * 3 + rgb, within a segment

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

SCALE_SIZE = 256  # short side before the centre crop (official test: 256 → centre 224)
CROP_SIZE = 224


@dataclass(frozen=True)
class ClipSpec:
    """What a checkpoint expects of its input: segments, crop size, short-side size, normalisation."""

    num_segments: int = 8
    input_size: int = CROP_SIZE
    scale_size: int = SCALE_SIZE
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def describe(self) -> str:
        """One line for people, e.g. ``8 segments, short side 256 → centre 224``."""
        return f"{self.num_segments} segments, short side {self.scale_size} → centre {self.input_size}"


# Numerical precision modes (set by tdn.network.runtime.set_precision); here so that parsing needs no torch.
PRECISIONS: dict[str, str] = {
    "fp32": "IEEE float32 everywhere: the fidelity checks' mode (logits as the official network's)",
    "tf32": "float32 tensors, TF32 tensor-core convolutions and matmuls on CUDA (default: fast, ~1e-3 off)",
    "bf16": "bfloat16 autocast for convolutions and matmuls; maps and logits returned in float32",
}
DEFAULT_PRECISION = "tf32"
"""On the CPU every mode but bf16 computes in IEEE float32: TF32 exists only on CUDA GPUs."""

OPENMP_WAIT_POLICY = "PASSIVE"
"""``OMP_WAIT_POLICY`` that :func:`prepare_process` sets (unless the user did) before torch loads: idle OpenMP
threads sleep, so a busy machine does not stall torch's intra-op threads (see
``tdn.network.runtime.PASSIVE_WAIT``)."""


MEMORY_POLICY = {"mmap_threshold": 32 << 20, "trim_threshold": 256 << 20}
"""glibc ``malloc`` settings :func:`prepare_process` makes (unless the user set ``MALLOC_*_`` or ``GLIBC_TUNABLES``,
or ``TDN_MALLOC=default``): maps up to 32 MiB come from the heap and up to 256 MiB of freed heap stays mapped, so a
forward's activations reuse pages already faulted in instead of fresh ``mmap`` pages each time (on the 2-core
test machine, TDN-R50 8f on the predict path 532 → 503 ms at batch 1, 2366 → 1897 ms at batch 4; README).
PyTorch's ``THP_MEM_ALLOC_ENABLE`` (transparent huge pages for CPU tensors of 2 MB and more) is set as well."""


def _set_malloc_policy() -> bool:
    """Apply :data:`MEMORY_POLICY` through ``mallopt``; False where this is not glibc or the user tuned malloc."""
    import ctypes
    import platform

    if (
        platform.libc_ver()[0] != "glibc"
        or "GLIBC_TUNABLES" in os.environ
        or any(k.startswith("MALLOC_") for k in os.environ)
    ):
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    ok = libc.mallopt(m_mmap_threshold, MEMORY_POLICY["mmap_threshold"]) == 1
    return libc.mallopt(m_trim_threshold, MEMORY_POLICY["trim_threshold"]) == 1 and ok


def prepare_process() -> bool:
    """What ``python -m tdn``, the app's launcher and ``streamlit_app.py`` set before torch loads:
    ``OMP_WAIT_POLICY`` = :data:`OPENMP_WAIT_POLICY` and ``THP_MEM_ALLOC_ENABLE=1`` unless the user set them, and
    the glibc heap policy :data:`MEMORY_POLICY`. Returns whether the heap policy was applied."""
    os.environ.setdefault("OMP_WAIT_POLICY", OPENMP_WAIT_POLICY)
    if os.environ.get("TDN_MALLOC", "").strip().lower() == "default":
        return False
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    return _set_malloc_policy()
