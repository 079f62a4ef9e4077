"""What the Dataset page reads and where it may read it: stored evaluations, the data root, thumbnails, and the
hand-over of a clip to the Inspect page.

Settings (environment variables, like ``app.settings``):

* ``TDN_LENS_EVAL_DIR``: a folder of evaluations (``*.jsonl`` + ``*.summary.json``) listed beside the shipped ones
  in ``assets/eval/evaluations``; evaluations run from the page are written there (default: ``runs/eval`` in the
  checkout), with their results rows in ``results.csv`` there.
* ``TDN_LENS_DATA_ROOT``: the server folder under which the page may run new evaluations. Unset (the default),
  running is off: it would let anyone who reaches the page read any video the server can. Paths typed on the page
  are resolved (``..`` and symbolic links included) and refused unless they stay under this root; entries of a
  list that resolve outside it are counted as missing.

Opening a clip in Inspect (:func:`inspect_route`): the Inspect page picks its source from session state
(``clip_mode`` and ``sample_clip`` or ``clip_path``). A clip that is one of the bundled samples opens as that
sample; any other clip opens as a server path when ``TDN_LENS_ALLOW_SERVER_PATHS`` is on. Otherwise the clip is
left in ``st.session_state[INSPECT_REQUEST]`` (and the page is opened with ``?clip=`` naming it), which the
Inspect page reads through :func:`pending_inspect_source` once it is wired to; until then
:data:`INSPECT_ACCEPTS_REQUESTS` is False and the page offers no button that would open the wrong clip.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from app import cached
from app.settings import Settings, sample_clip_files
from tdn import assets
from tdn.contract import ClipSpec
from tdn.datasets import Evaluation, load_evaluation, summary_path
from tdn.video.frames import is_frame_folder, load_frame_folder

ENV_EVAL_DIR = "TDN_LENS_EVAL_DIR"
ENV_DATA_ROOT = "TDN_LENS_DATA_ROOT"
SHIPPED_EVALUATIONS = assets.ASSETS / "eval" / "evaluations"
DEFAULT_EVAL_DIR = assets.ASSETS.parent / "runs" / "eval"
INSPECT_REQUEST = (
    "inspect_request"  # session-state key: {"path": str, "name": str} of a clip to open in Inspect
)
INSPECT_ACCEPTS_REQUESTS = True  # app/pages/inspect.py opens pending_inspect_source() as "From Dataset"
MAX_LISTED_EVALUATIONS = 500
DEFAULT_EVALUATION = "demo-tdn_synth-val_ss-1crop.jsonl"  # what the page opens on: the demo TDN on 56 clips


@dataclass(frozen=True)
class DatasetSettings:
    eval_dir: Path
    data_root: Path | None


def dataset_settings() -> DatasetSettings:
    root = os.environ.get(ENV_DATA_ROOT, "").strip()
    return DatasetSettings(
        eval_dir=Path(os.environ.get(ENV_EVAL_DIR) or DEFAULT_EVAL_DIR).expanduser(),
        data_root=Path(root).expanduser() if root else None,
    )


def evaluation_files(config: DatasetSettings) -> list[Path]:
    """Stored evaluations: the shipped ones first (the default first of all), then the evaluation folder's, by name."""
    found: list[Path] = []
    for folder in (SHIPPED_EVALUATIONS, config.eval_dir):
        if folder.is_dir():
            listed = sorted(p for p in folder.glob("*.jsonl") if p.is_file())[:MAX_LISTED_EVALUATIONS]
            found += sorted(listed, key=lambda p: p.name != DEFAULT_EVALUATION)
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns if path.exists() else 0


@st.cache_resource(show_spinner=False, max_entries=16)
def _load(path: str, jsonl_mtime: int, summary_mtime: int) -> Evaluation:
    return load_evaluation(path)


def evaluation(path: Path) -> Evaluation:
    """A stored evaluation, cached on its files' times (shared, treat as read-only)."""
    return _load(str(path), _mtime(path), _mtime(summary_path(path)))


FAITHFULNESS_SUFFIX = ".faithfulness.json"


def faithfulness_path(evaluation_path: Path) -> Path:
    """Where the per-class faithfulness of an evaluation's clips lives: ``<stem>.faithfulness.json`` beside its
    JSONL (``OUT/faithfulness.json`` of ``python -m tdn explain DIR --summary --out OUT``, copied there)."""
    return evaluation_path.with_name(evaluation_path.stem + FAITHFULNESS_SUFFIX)


@st.cache_data(show_spinner=False, max_entries=16)
def _faithfulness(path: str, mtime_ns: int) -> dict | None:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("per_class"), list) or "overall" not in data:
        raise ValueError(f"{Path(path).name} is not a faithfulness summary (no per_class / overall)")
    return data


def faithfulness(evaluation_path: Path) -> dict | None:
    """The faithfulness summary beside an evaluation, or None; raises ValueError for a malformed file."""
    path = faithfulness_path(evaluation_path)
    if not path.is_file():
        return None
    try:
        return _faithfulness(str(path), _mtime(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path.name} is not valid JSON ({error})") from None


def resolve_under(root: Path, typed: str) -> Path:
    """``typed`` (relative to ``root``, or absolute) as a real path that stays under ``root``; ValueError else."""
    text = typed.strip()
    if not text:
        raise ValueError("no path given")
    real_root = root.resolve(strict=True)
    candidate = Path(text).expanduser()
    candidate = candidate if candidate.is_absolute() else real_root / candidate
    try:
        real = candidate.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise ValueError(f"{text} does not exist under the data root") from None
    if real != real_root and real_root not in real.parents:
        raise ValueError(f"{text} resolves outside the data root {root}; refused")
    return real


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "evaluation"


# ------------------------------------------------------------------------------------------- thumbnails


@st.cache_data(show_spinner=False, max_entries=512)
def _folder_thumbnail(path: str, mtime_ns: int) -> np.ndarray:
    clip = load_frame_folder(
        path, ClipSpec(1, 32, 32), display_size=cached.THUMBNAIL_SIDE, build_inputs=False
    )
    return clip.display_frames[0, 0]


def thumbnail(path: Path) -> np.ndarray:
    """The middle frame of a video or frame folder, short side ``cached.THUMBNAIL_SIDE``; raises ClipError."""
    if path.is_dir():
        return _folder_thumbnail(str(path), _mtime(path))
    return cached.thumbnail(str(path), _mtime(path))


# -------------------------------------------------------------------------------------------- to Inspect


@dataclass(frozen=True)
class InspectRoute:
    """How a clip reaches the Inspect page: ``state`` to set before switching, or why it cannot (``reason``)."""

    state: dict[str, object]
    query: dict[str, str]
    reason: str | None = None

    @property
    def possible(self) -> bool:
        return self.reason is None


def inspect_route(path: Path, config: Settings) -> InspectRoute:
    """The session state that makes the Inspect page open ``path`` (see the module docstring)."""
    query = {"clip": path.name}
    samples = {p.resolve(): p for p in sample_clip_files(config)}
    if path.resolve() in samples:
        return InspectRoute({"clip_mode": "sample", "sample_clip": samples[path.resolve()].name}, query)
    request = {INSPECT_REQUEST: {"path": str(path), "name": path.name}}
    if not (path.is_file() or is_frame_folder(path)):
        return InspectRoute(request, query, f"{path.name} is neither a video file nor a folder of frames")
    if config.allow_server_paths:
        return InspectRoute({"clip_mode": "path", "clip_path": str(path)}, query)
    if INSPECT_ACCEPTS_REQUESTS and allowed_clip(path):
        return InspectRoute(request, query)
    reason = (
        "set TDN_LENS_ALLOW_SERVER_PATHS=1 (or keep the clips under TDN_LENS_DATA_ROOT) to open the clips of "
        "an evaluation in Inspect"
    )
    return InspectRoute(request, query, reason)


def allowed_clip(path: Path) -> bool:
    """Whether the Inspect page may open ``path`` on request: under the shipped evaluation set or the data root."""
    roots = [assets.ASSETS / "eval"]
    root = dataset_settings().data_root
    if root is not None:
        roots.append(root)
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    return any(real == r.resolve() or r.resolve() in real.parents for r in roots if r.exists())


def pending_inspect_source() -> cached.ClipSource | None:
    """For the Inspect page: the clip the Dataset page asked it to open (and that it may open), else None."""
    request = st.session_state.get(INSPECT_REQUEST)
    if not isinstance(request, dict) or "path" not in request:
        return None
    path = Path(str(request["path"]))
    if not allowed_clip(path) or not (path.is_file() or is_frame_folder(path)):
        return None
    return cached.ClipSource.from_path(path, trusted=False)
