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
import time
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

from tdn.contract import DEFAULT_PRECISION, PRECISIONS  # noqa: E402 (torch-free, for argument parsing)
from tdn.util import usable_cores  # noqa: E402

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
        cores = usable_cores()
    if gmacs_per_view < SMALL_MODEL_GMACS:
        return ThreadPolicy(
            1, cores, f"{gmacs_per_view:.2f} GMACs a view: one thread (a second gains little)"
        )
    return ThreadPolicy(cores, cores, f"{gmacs_per_view:.1f} GMACs a view: all {cores} cores")


def apply_thread_policy(policy: ThreadPolicy) -> None:
    """Set torch's intra-op threads (process-wide) to the policy's count."""
    _set_threads(policy.threads)


def _set_threads(count: int) -> None:
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


class _LoadSampler:
    """How many cores *other* processes keep busy, sampled in the background from ``/proc/stat`` (all CPUs'
    busy ticks) minus this process's own CPU time (``/proc/self/stat``), over the last ``interval_s``.

    Torch's intra-op threads wait for each other at every operator; when other processes hold the cores, a thread
    that was descheduled stalls the rest (measured here: 2 threads with two busy processes on 2 cores ran 5-6×
    slower than quiet, where a fair share is 2×). One thread per core that is actually free avoids that."""

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self._busy: float | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    @staticmethod
    def _read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as handle:
                fields = handle.readline().split()
            with open("/proc/self/stat") as handle:
                mine = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
        busy = sum(ticks) - ticks[3] - ticks[4]
        return busy, int(mine[11]) + int(mine[12])  # utime + stime of this process (all threads)

    def _run(self) -> None:
        last, then = self._read(), time.monotonic()
        while last is not None:
            time.sleep(self.interval_s)
            now, at = self._read(), time.monotonic()
            if now is None:
                break
            others = (now[0] - last[0]) - (now[1] - last[1])
            with self._lock:
                self._busy = max(0.0, others / (self._hz * (at - then)))
            last, then = now, at

    def busy_cores(self) -> float | None:
        """Cores others kept busy over the last interval; None until the first sample (or without /proc)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tdn-load-sampler", daemon=True)
                self._thread.start()
            return self._busy


_sampler = _LoadSampler()
_policies: weakref.WeakKeyDictionary[nn.Module, ThreadPolicy] = weakref.WeakKeyDictionary()


def busy_cores() -> float | None:
    """Cores other processes keep busy right now (a background sample; None until there is one)."""
    return _sampler.busy_cores()


def set_thread_policy(model: nn.Module, policy: ThreadPolicy) -> None:
    """Run ``model``'s CPU forwards under ``policy``, capped at the cores free when each call starts
    (:func:`threads_now`); applies it now."""
    _policies[model] = policy
    apply_thread_policy(policy)


PASSIVE_WAIT = os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"
"""Whether OpenMP's idle threads sleep instead of spinning (the variable is read when torch loads its OpenMP
runtime, i.e. before this module's ``import torch`` took effect; ``python -m tdn`` and the app set it). Measured on
this 2-core machine with two busy processes, TDN-R50 8f: spinning, 2 threads 3.7x their quiet time and 1 thread
3.1x; passive, 2 threads 2.0x (the fair share) and 1 thread 2.8x. So the cap applies only to spinning threads."""


def threads_now(policy: ThreadPolicy) -> int:
    """The policy's threads; when OpenMP threads spin (:data:`PASSIVE_WAIT` false), fewer while other processes
    hold cores: one per core they leave free (at least 1)."""
    if policy.threads <= 1:
        return 1
    if PASSIVE_WAIT:
        return policy.threads
    busy = busy_cores()
    if busy is None:
        return policy.threads
    return max(1, min(policy.threads, int(policy.cores - busy + 0.5)))


def use_thread_policy(model: nn.Module) -> int:
    """Before a CPU forward of ``model``: set torch's threads as its registered policy says for the current load
    (nothing when none is registered); returns the thread count in use."""
    policy = _policies.get(model)
    if policy is not None:
        _set_threads(threads_now(policy))
    return torch.get_num_threads()
