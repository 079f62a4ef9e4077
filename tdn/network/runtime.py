"""Sharing one model between threads (Streamlit sessions, batch workers).

Explanations attach hooks and flip ``requires_grad`` flags on the model for the length of one call; any other
forward running at that moment would see those hooks and corrupt the maps (the concurrency test shows it without a
lock). So every forward of a shared model goes through ``model_lock(model)``. torch already spreads one
forward over every core, so serialising calls costs little throughput on CPU (see bench/bench_explain.py).
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

_locks: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def model_lock(model: nn.Module) -> threading.RLock:
    """The one re-entrant lock that guards ``model``; created on first use."""
    with _registry_lock:
        lock = _locks.get(model)
        if lock is None:
            lock = _locks[model] = threading.RLock()
        return lock


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and restore its training flag afterwards, even on error."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


# ------------------------------------------------------------------------------------------ precision

PRECISIONS: dict[str, str] = {
    "fp32": "IEEE float32 everywhere: the fidelity checks' mode (logits as the official network's)",
    "tf32": "float32 tensors, TF32 tensor-core convolutions and matmuls on CUDA (default: fast, ~1e-3 off)",
    "bf16": "bfloat16 autocast for convolutions and matmuls; maps and logits returned in float32",
}
DEFAULT_PRECISION = "tf32"
"""On the CPU every mode but bf16 computes in IEEE float32: TF32 exists only on CUDA GPUs."""

_precision = DEFAULT_PRECISION


def set_precision(mode: str) -> None:
    """Choose the process-wide precision (one of :data:`PRECISIONS`); sets PyTorch's TF32 switches."""
    global _precision
    if mode not in PRECISIONS:
        raise ValueError(f"unknown precision {mode!r}; choose one of {', '.join(PRECISIONS)}")
    _precision = mode
    tf32 = mode != "fp32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def get_precision() -> str:
    return _precision


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when the precision is bf16, else nothing."""
    if _precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


_deterministic_lock = threading.Lock()
_deterministic_users = 0
_saved_cudnn: tuple[bool, bool] = (False, False)


@contextmanager
def deterministic_cudnn() -> Iterator[None]:
    """cuDNN in deterministic mode (and without autotuning) while any thread is inside the block.

    The switches are process-wide, so a count of users keeps one thread from turning them off under
    another; forwards elsewhere only run a little slower meanwhile."""
    global _deterministic_users, _saved_cudnn
    with _deterministic_lock:
        if _deterministic_users == 0:
            _saved_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        _deterministic_users += 1
    try:
        yield
    finally:
        with _deterministic_lock:
            _deterministic_users -= 1
            if _deterministic_users == 0:
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = _saved_cudnn


# -------------------------------------------------------------------------------------------- threads

SMALL_MODEL_GMACS = 1.0
"""Below this many GMACs a view, a second intra-op thread gains little and, when other processes hold the
cores, loses most: the threads wait for each other at every operator."""


@dataclass(frozen=True)
class ThreadPolicy:
    """How many intra-op threads a model runs with, and why (shown on the app's Model page)."""

    threads: int
    cores: int
    reason: str


def thread_policy(gmacs_per_view: float, cores: int | None = None) -> ThreadPolicy:
    """One thread for a sub-GMAC model; every usable core for a large one."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if gmacs_per_view < SMALL_MODEL_GMACS:
        return ThreadPolicy(
            1, cores, f"{gmacs_per_view:.2f} GMACs a view: one thread (a second gains little)"
        )
    return ThreadPolicy(cores, cores, f"{gmacs_per_view:.1f} GMACs a view: all {cores} cores")


def apply_thread_policy(policy: ThreadPolicy) -> None:
    """Set torch's intra-op threads (process-wide) to the policy's count."""
    if torch.get_num_threads() != policy.threads:
        torch.set_num_threads(policy.threads)
