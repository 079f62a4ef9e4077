"""TDN Lens library: the Temporal Difference Network, its checkpoints, clip input and explanations.

Importable without Streamlit. Heavy submodules load on first use of their names.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "build_model": "tdn.model",
    "TDN": "tdn.model",
    "TDNConfig": "tdn.model",
    "VARIANTS": "tdn.model",
    "load_checkpoint": "tdn.checkpoint",
    "save_checkpoint": "tdn.checkpoint",
    "CheckpointError": "tdn.checkpoint",
    "CheckpointInfo": "tdn.checkpoint",
    "load_clip": "tdn.video",
    "Clip": "tdn.video",
    "ClipError": "tdn.video",
    "explain": "tdn.explain",
    "Explanation": "tdn.explain",
    "predict": "tdn.inference",
    "Prediction": "tdn.inference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tdn' has no attribute {name!r}")
