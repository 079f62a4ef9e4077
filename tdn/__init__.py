"""TDN Lens library: the Temporal Difference Network, its checkpoints, clip input and explanations.

The flow, one subpackage a step (docs/architecture.md): ``tdn.video`` (file → Clip) → ``tdn.network``
(model, weights) → ``tdn.inference`` (predictions) → ``tdn.interpret`` (heatmaps, difference maps).
``tdn.training`` trains and evaluates; ``tdn.cli`` is the command line. Importable without Streamlit;
the names below load their subpackage on first use, and no submodule of ``tdn`` shares a name with them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_EXPORTS: dict[str, str] = {
    "build_model": "tdn.network.model",
    "TDN": "tdn.network.model",
    "TDNConfig": "tdn.network.model",
    "VARIANTS": "tdn.network.model",
    "load_checkpoint": "tdn.network.checkpoint",
    "save_checkpoint": "tdn.network.checkpoint",
    "CheckpointError": "tdn.network.checkpoint",
    "CheckpointInfo": "tdn.network.checkpoint",
    "DeviceError": "tdn.network.checkpoint",
    "ClipSpec": "tdn.contract",
    "load_clip": "tdn.video.clip",
    "Clip": "tdn.video.clip",
    "ClipError": "tdn.video.clip",
    "predict": "tdn.inference",
    "Prediction": "tdn.inference",
    "explain": "tdn.interpret.gradcam",
    "Explanation": "tdn.interpret.gradcam",
    "difference_maps": "tdn.interpret.tdmaps",
    "TDMaps": "tdn.interpret.tdmaps",
}

__all__ = [
    "CheckpointError",
    "CheckpointInfo",
    "Clip",
    "ClipError",
    "ClipSpec",
    "DeviceError",
    "Explanation",
    "Prediction",
    "TDMaps",
    "TDN",
    "TDNConfig",
    "VARIANTS",
    "build_model",
    "difference_maps",
    "explain",
    "load_checkpoint",
    "load_clip",
    "predict",
    "save_checkpoint",
]

if TYPE_CHECKING:
    from tdn.contract import ClipSpec
    from tdn.inference import Prediction, predict
    from tdn.interpret.gradcam import Explanation, explain
    from tdn.interpret.tdmaps import TDMaps, difference_maps
    from tdn.network.checkpoint import (
        CheckpointError,
        CheckpointInfo,
        DeviceError,
        load_checkpoint,
        save_checkpoint,
    )
    from tdn.network.model import TDN, VARIANTS, TDNConfig, build_model
    from tdn.video.clip import Clip, ClipError, load_clip


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # cached: later lookups never reach __getattr__ again
        return value
    raise AttributeError(f"module 'tdn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
