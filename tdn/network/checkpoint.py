"""The one checkpoint loader: official TDN files (torch pickles, read with ``weights_only=True``) and our own
format (a single safetensors file whose header metadata carries the model's JSON description).

Nothing here ever unpickles arbitrary objects, and nothing falls back to an unsafe load.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from tdn.contract import CHANNELS_PER_SEGMENT, IMAGENET_MEAN, IMAGENET_STD, ClipSpec
from tdn.filetypes import sniff
from tdn.network.labels import SYNTHETIC_DATASET
from tdn.network.model import TDN, TDNConfig, make_config
from tdn.util import atomic_path

FORMAT = "tdn-lens-v1"
METADATA_KEY = "tdn_lens"
_LAYER3_BLOCKS_TO_ARCH = {6: "resnet50", 23: "resnet101"}


CHECKPOINT_ERROR_KINDS: dict[str, str] = {
    "missing": "no file at the path",
    "not_checkpoint": "the file is not a PyTorch or safetensors checkpoint (e.g. a renamed video or archive)",
    "unsafe": "the pickle asks to run code or build objects beyond tensors; it is never loaded",
    "corrupt": "the file is truncated or damaged",
    "version": "a TDN Lens file of another format version, or an unreadable model description",
    "unknown_arch": "the weights are not those of a TDN this build can construct",
    "keys": "the state dict's keys do not match the network's (missing or unexpected entries)",
    "shape": "a tensor's shape does not match the network's (e.g. another class count)",
    "segments": "an official file was given without its number of segments",
    "labels": "the class names do not match the model's class count",
}
"""Every ``CheckpointError.kind``, with what it means: callers branch on the kind, people read the message."""


class CheckpointError(Exception):
    """A checkpoint that cannot be used, with ``kind`` naming why (for programs) and a message for people."""

    def __init__(self, kind: str, message: str) -> None:
        if kind not in CHECKPOINT_ERROR_KINDS:
            raise ValueError(f"unknown checkpoint error kind {kind!r}")
        super().__init__(message)
        self.kind = kind


class DeviceError(ValueError):
    """A device that does not exist on this machine (``cuda`` without a GPU, ``cuda:3`` with two...)."""


@dataclass
class CheckpointInfo:
    """What we know about a loaded checkpoint."""

    path: str
    format: str  # "official" or FORMAT
    config: TDNConfig
    class_names: list[str]
    device: str
    dataset: str | None = None
    input_size: int = 224
    scale_size: int = 256
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    sha256: str = ""

    @property
    def name(self) -> str:
        """The model's stored name, else the file name without its checkpoint suffixes (``X.pth.tar`` → X)."""
        if self.metadata.get("name"):
            return str(self.metadata["name"])
        name = Path(self.path).name
        for suffix in (".tar", ".pth", ".pt", ".safetensors", ".ckpt"):
            name = name.removesuffix(suffix)
        return name or Path(self.path).name

    @property
    def spec(self) -> ClipSpec:
        """The input this model expects: pass it to ``load_clip(source, spec=info.spec)``."""
        norm = self.metadata.get("normalisation") or {}
        mean = tuple(float(v) for v in norm.get("mean", IMAGENET_MEAN))
        std = tuple(float(v) for v in norm.get("std", IMAGENET_STD))
        return ClipSpec(self.config.num_segments, self.input_size, self.scale_size, mean, std)

    @property
    def synth_version(self) -> int | None:
        """The ``tdn.training.synth`` version of the training clips; checkpoints from before versioning are version 2."""
        if "synth_version" in self.metadata:
            return self.metadata["synth_version"]
        return 2 if self.dataset == SYNTHETIC_DATASET else None


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' → this process's GPU when there is one (``cuda:LOCAL_RANK`` under torchrun), else the CPU. 'cpu', 'cuda' and 'cuda:N' are checked against this machine
    and raise :class:`DeviceError` naming what is there instead."""
    name = str(device).strip().lower()
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        # Under torchrun each local rank has its own GPU; elsewhere the current one (cuda:0 unless set).
        local = os.environ.get("LOCAL_RANK")
        index = int(local) % torch.cuda.device_count() if local else torch.cuda.current_device()
        return torch.device("cuda", index)
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise DeviceError(f"device {device!r} is not supported; use auto, cpu, cuda or cuda:N")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise DeviceError("CUDA was requested but no GPU is available on this machine")
    if dev.index is not None and dev.index >= count:
        raise DeviceError(
            f"{name} does not exist: this machine has {count} GPU(s), cuda:0 … cuda:{count - 1}"
        )
    return dev


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_safetensors(head: bytes) -> bool:
    if len(head) < 10:
        return False
    n = int.from_bytes(head[:8], "little")
    return 0 < n < (100 << 20) and head[8:9] == b"{"


def _torch_load_safely(path: Path) -> Any:
    """torch.load with weights_only=True; harmless containers used by official files are allow-listed."""
    try:
        with torch.serialization.safe_globals([collections.Counter, collections.OrderedDict]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if "Weights only load failed" in msg or "Unsupported global" in msg or "GLOBAL" in msg:
            found = re.search(r"GLOBAL ([\w.]+)", msg)
            what = f" (it references {found.group(1)})" if found else ""
            raise CheckpointError(
                "unsafe",
                f"refused to load {path.name}: it contains Python objects other than tensors{what}. "
                "Loading it could run code, so it is not unpickled. Re-save the state dict with "
                "torch.save(model.state_dict(), ...) or convert it to safetensors.",
            ) from None
        raise CheckpointError("corrupt", f"{path.name} is not a readable PyTorch checkpoint: {msg}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(
            "corrupt", f"{path.name} is truncated or corrupt and cannot be read ({type(e).__name__}: {e})"
        ) from None


def _extract_state_dict(obj: Any, name: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError("not_checkpoint", f"{name} holds no state dict (found {type(obj).__name__})")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(
            "not_checkpoint",
            f"{name} holds a dict without tensors (keys: {', '.join(map(str, list(obj)[:8]))})",
        )
    return tensors


def clean_official_state_dict(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Apply the official loader's renames (docs/architecture.md §7): strip ``module.``, the legacy classifier name, and the
    Dec-2020 ``conv1_temp1`` marker. Returns the cleaned dict and warnings."""
    warnings: list[str] = []
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        key = key.removeprefix("module.")
        if key.startswith("base_model.classifier."):
            key = "new_fc." + key.removeprefix("base_model.classifier.")
        out[key] = value
    legacy = [k for k in out if k.startswith("base_model.conv1_temp1.")]
    if legacy:
        for k in legacy:
            del out[k]
        warnings.append(
            "this checkpoint has the Dec-2020 layout (base_model.conv1_temp1); it may have been trained with the "
            "pre-March-2021 L-TDM bug, so its outputs can differ from the released models"
        )
    return out, warnings


def infer_official_config(sd: dict[str, torch.Tensor], num_segments: int) -> TDNConfig:
    """Depth from the number of layer3 blocks, class count from ``new_fc.weight``."""
    if "new_fc.weight" not in sd:
        raise CheckpointError(
            "unknown_arch",
            "no classifier weight 'new_fc.weight' (or legacy 'base_model.classifier.weight'): "
            "this is not a TDN checkpoint",
        )
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"base_model\.layer3_bak\.(\d+)\.", k))}
    arch = _LAYER3_BLOCKS_TO_ARCH.get(len(blocks))
    if arch is None:
        raise CheckpointError(
            "unknown_arch",
            f"layer3 has {len(blocks)} blocks; official TDN checkpoints have 6 (ResNet-50) or 23 (ResNet-101)",
        )
    return make_config(arch, num_segments, int(sd["new_fc.weight"].shape[0]))


def _load_strict(model: TDN, sd: dict[str, torch.Tensor], name: str) -> None:
    """Strict load with every missing, unexpected or mis-shaped key named."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k}: file {tuple(sd[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in sd and sd[k].shape != v.shape
    ]

    def listing(keys: list[str]) -> str:
        return ", ".join(keys[:10]) + (f" … and {len(keys) - 10} more" if len(keys) > 10 else "")

    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {listing(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {listing(unexpected)}")
        raise CheckpointError("keys", f"{name} does not match the model: " + "; ".join(parts))
    if shapes:
        raise CheckpointError("shape", f"{name} has {len(shapes)} mis-shaped tensors: {listing(shapes)}")
    model.load_state_dict(sd, strict=True)


def _read_metadata(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
    if METADATA_KEY not in header:
        raise CheckpointError(
            "not_checkpoint",
            f"{path.name} is a safetensors file without TDN Lens metadata (key {METADATA_KEY!r})",
        )
    meta = json.loads(header[METADATA_KEY])
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            "version", f"{path.name} has format {meta.get('format')!r}; this build reads {FORMAT}"
        )
    return meta


def load_checkpoint(
    path: str | os.PathLike,
    num_segments: int | None = None,
    device: str | torch.device = "auto",
    class_names: list[str] | None = None,
) -> tuple[TDN, CheckpointInfo]:
    """Load an official or TDN Lens checkpoint into an eval-mode model on ``device``.

    Official files cannot tell the number of segments (no parameter depends on it), so ``num_segments`` is
    required for them; for our files it defaults to the stored value.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("missing", f"no checkpoint file at {path}")
    dev = resolve_device(device)
    with path.open("rb") as f:
        head = f.read(512)
    warnings: list[str] = []
    if _is_safetensors(head):
        try:
            meta = _read_metadata(path)
            sd = load_file(str(path))
        except (SafetensorError, json.JSONDecodeError, OSError) as e:
            raise CheckpointError("corrupt", f"{path.name} is a damaged safetensors file ({e})") from None
        try:
            cfg = TDNConfig(**meta["config"])
        except TypeError as e:
            raise CheckpointError("version", f"{path.name} has an unreadable model config ({e})") from None
        if num_segments is not None and num_segments != cfg.num_segments:
            warnings.append(f"trained with {cfg.num_segments} segments, run with {num_segments}")
            cfg = TDNConfig(**{**cfg.to_dict(), "num_segments": int(num_segments)})
        fmt, dataset = FORMAT, meta.get("dataset")
        names = class_names or meta.get("class_names")
        input_size, scale_size = int(meta.get("input_size", 224)), int(meta.get("scale_size", 256))
    elif head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        sd, warnings = clean_official_state_dict(_extract_state_dict(_torch_load_safely(path), path.name))
        if num_segments is None:
            raise CheckpointError(
                "segments",
                f"{path.name} is an official checkpoint, which does not record its number of segments; "
                "say whether it is an 8- or 16-segment model (the file name of the zoo release usually tells)",
            )
        cfg = infer_official_config(sd, num_segments)
        fmt, dataset, meta, names = "official", None, {}, class_names
        input_size, scale_size = 224, 256
    else:
        found = sniff(head)
        what = found.description if found.kind != "unknown" else "neither a PyTorch nor a safetensors file"
        raise CheckpointError("not_checkpoint", f"{path.name} is not a checkpoint: it looks like {what}")
    if names is None:
        from tdn.network.labels import labels_for

        names = labels_for(cfg.num_classes, dataset)
    if len(names) != cfg.num_classes:
        raise CheckpointError(
            "labels", f"{len(names)} class names given for a model with {cfg.num_classes} classes"
        )
    model = TDN(cfg)
    _load_strict(model, sd, path.name)
    model.to(dev).eval()
    info = CheckpointInfo(
        path=str(path),
        format=fmt,
        config=cfg,
        class_names=list(names),
        device=str(dev),
        dataset=dataset,
        input_size=input_size,
        scale_size=scale_size,
        metadata=meta,
        warnings=warnings,
        sha256=_sha256(path),
    )
    return model, info


def save_checkpoint(
    model: TDN,
    path: str | os.PathLike,
    class_names: list[str],
    *,
    dataset: str | None = None,
    input_size: int = 224,
    scale_size: int = 256,
    **extra: Any,
) -> Path:
    """Write our format atomically: weights as safetensors, the model description as JSON in its header.

    ``extra`` (e.g. name, provenance, metrics, training) is stored as given; it must be JSON-serialisable.
    """

    cfg = model.config
    if len(class_names) != cfg.num_classes:
        raise ValueError(f"{len(class_names)} class names for {cfg.num_classes} classes")
    meta = {
        "format": FORMAT,
        "config": cfg.to_dict(),
        "class_names": list(class_names),
        "dataset": dataset,
        "input_size": input_size,
        "scale_size": scale_size,
        "normalisation": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "scale": 1 / 255},
        "input_layout": f"(B, T*{CHANNELS_PER_SEGMENT}, H, W), channel = segment*{CHANNELS_PER_SEGMENT} + frame*3 + rgb",
        **extra,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})
    return path
