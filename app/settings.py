"""Where the app finds checkpoints and sample clips, and what it lets users do, from environment variables.

* ``TDN_LENS_MODELS_DIR``: folder of checkpoints offered in the model picker (default ``assets/models``);
  ``*.pth``, ``*.pth.tar`` and ``*.safetensors`` files are listed.
* ``TDN_LENS_CLIPS_DIR``: folder of sample ``*.mp4`` clips (default: the bundled ``assets/clips``).
* ``TDN_LENS_PRECISION``: ``fp32`` (IEEE float32, the official logits), ``tf32`` (default: TF32 tensor cores
  on CUDA; the CPU computes float32 anyway) or ``bf16`` (autocast); the Model page shows it.
* ``TDN_LENS_ALLOW_SERVER_PATHS=1``: also accept a video path on the server. Off by default, because it lets
  anyone who reaches the page read any video the server process can read.
* ``TDN_LENS_DECODE_TIMEOUT_S``: the longest one video may take to decode (default 60 s). ``tdn.video.load_clip``
  reads it whenever it is not given ``timeout_s``, so it sets the app's limit; its time-out message names it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tdn import assets
from tdn.network.runtime import DEFAULT_PRECISION, PRECISIONS

ENV_MODELS_DIR = "TDN_LENS_MODELS_DIR"
ENV_CLIPS_DIR = "TDN_LENS_CLIPS_DIR"
ENV_ALLOW_SERVER_PATHS = "TDN_LENS_ALLOW_SERVER_PATHS"
ENV_PRECISION = "TDN_LENS_PRECISION"
CHECKPOINT_SUFFIXES: tuple[str, ...] = (".pth", ".pth.tar", ".safetensors")
MAX_LISTED_CHECKPOINTS = 200
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    models_dir: Path
    clips_dir: Path
    allow_server_paths: bool
    precision: str = DEFAULT_PRECISION


def settings() -> Settings:
    """The current settings (read on every run, so a test or a restart with new variables takes effect)."""
    return Settings(
        models_dir=Path(os.environ.get(ENV_MODELS_DIR) or assets.MODELS).expanduser(),
        clips_dir=Path(os.environ.get(ENV_CLIPS_DIR) or assets.CLIPS).expanduser(),
        allow_server_paths=os.environ.get(ENV_ALLOW_SERVER_PATHS, "").strip().lower() in _TRUE,
        precision=_precision(os.environ.get(ENV_PRECISION, "")),
    )


def _precision(value: str) -> str:
    value = value.strip().lower()
    return value if value in PRECISIONS else DEFAULT_PRECISION


def is_checkpoint_name(name: str) -> bool:
    return name.lower().endswith(CHECKPOINT_SUFFIXES)


def demo_checkpoint(config: Settings) -> Path | None:
    """The demo TDN: in the models folder when it holds one by that name, else the bundled file."""
    for path in (config.models_dir / assets.DEMO_CHECKPOINT.name, assets.DEMO_CHECKPOINT):
        if path.is_file():
            return path
    return None


def twin_of(path: Path) -> Path | None:
    """The TSN twin shipped beside the demo TDN (same data, same recipe), when ``path`` is that demo."""
    if path.name != assets.DEMO_CHECKPOINT.name:
        return None
    twin = path.with_name(assets.DEMO_TSN_CHECKPOINT.name)
    return twin if twin.is_file() else None


def checkpoint_files(config: Settings) -> list[Path]:
    """Checkpoints on offer: the demo first, then every checkpoint in the models folder by name."""
    found: list[Path] = []
    demo = demo_checkpoint(config)
    if demo is not None:
        found.append(demo)
    if config.models_dir.is_dir():
        listed = sorted(p for p in config.models_dir.iterdir() if p.is_file() and is_checkpoint_name(p.name))
        found += [p for p in listed[:MAX_LISTED_CHECKPOINTS] if demo is None or p.resolve() != demo.resolve()]
    return found


def sample_clip_files(config: Settings) -> list[Path]:
    if config.clips_dir.resolve() == assets.CLIPS.resolve():
        return assets.sample_clips()
    return sorted(config.clips_dir.glob("*.mp4")) if config.clips_dir.is_dir() else []


def default_sample(names: list[str]) -> str:
    """The sample selected before the user picks one: the bundled default when offered, else the first."""
    return assets.DEFAULT_SAMPLE if assets.DEFAULT_SAMPLE in names else names[0]


def default_first(paths: list[Path]) -> list[Path]:
    """``paths`` with the one :func:`default_sample` picks moved to the front (what a fresh page shows)."""
    if not paths:
        return []
    first = default_sample([p.name for p in paths])
    return sorted(paths, key=lambda p: p.name != first)


def sample_label(path: Path) -> str:
    """How a sample is named on its button: ``moving_something_up.mp4`` → ``Moving something up``."""
    words = path.stem.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:]


def sample_answers(config: Settings) -> dict[str, dict]:
    """What the demo TDN answers on each bundled sample (``samples.json``, written by ``tdn samples``)."""
    path = config.clips_dir / "samples.json"
    try:
        return dict(json.loads(path.read_text())["clips"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def guess_segments(path: Path) -> int:
    """8 or 16 from an official file's name (zoo files say e.g. ``..._16f...`` or ``16x1``); 8 otherwise."""
    return 16 if re.search(r"(?<!\d)16(?!\d)", path.name) else 8
