"""Sharing one model between threads (Streamlit sessions, batch workers).

Explanations attach hooks and flip ``requires_grad`` flags on the model for the length of one call; any other
forward running at that moment would see those hooks and corrupt the maps (the concurrency test shows it without a
lock). So every forward of a shared model goes through ``model_lock(model)``. torch already spreads one
forward over every core, so serialising calls costs little throughput on CPU (see bench/bench_explain.py).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

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
