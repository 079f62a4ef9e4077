"""Training and evaluation data: a folder of videos with ``labels.csv`` (``file,label_index,label_name``).

Clips are sampled with ``tdn.video.sampling``: random TSN sampling plus augmentation for training, the
deterministic test formula for evaluation.

Evaluation has one preprocessing path, the one ``predict`` uses: :meth:`VideoClips.for_evaluation` takes a
checkpoint's :class:`tdn.contract.ClipSpec` (``info.spec``) and each item is
``tdn.video.load_clip(path, spec=spec, exact=True).inputs[0]``: the short side resized to
``spec.scale_size`` with PIL bilinear (``tdn.video.preprocess``), the centre crop of ``spec.input_size``,
the spec's normalisation (the official test: 256 then centre 224 for an official checkpoint). Clip warnings
(a truncated file...) are kept in :attr:`VideoClips.warnings`.

Training resizes the short side to ``scale_size`` the same way (``tdn.video.preprocess.resize_short_side``),
then takes a random multi-scale crop; ``scale_size`` defaults to ``size`` (the synthetic data is made at that
size, so the resize then changes nothing). Frames are decoded on demand with the exact reader of
``tdn.video.decode`` (only the sampled frames, the same pixels as decord and as ``load_clip``), or all at once
by :meth:`VideoClips.preload` with decord.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from tdn.contract import IMAGENET_MEAN, IMAGENET_STD, ClipSpec
from tdn.video.decode import PyAVReader, probe
from tdn.video.preprocess import center_crop, resize_short_side, to_model_input
from tdn.video.sampling import test_indices, train_indices


@dataclass(frozen=True)
class VideoRecord:
    path: Path
    label: int
    name: str


def read_labels_csv(folder: str | Path) -> tuple[list[VideoRecord], list[str]]:
    """Records of ``folder/labels.csv`` and the class names indexed by label (gaps named ``class i``)."""
    folder = Path(folder)
    csv_path = folder / "labels.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(f"{folder} has no labels.csv (columns file,label_index,label_name)")
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"file", "label_index", "label_name"} <= set(rows[0]):
        raise ValueError(f"{csv_path} must have the columns file,label_index,label_name")
    records = []
    for line, r in enumerate(rows, start=2):
        try:
            label = int(r["label_index"])
        except (TypeError, ValueError):
            raise ValueError(
                f"{csv_path}, line {line}: label_index {r['label_index']!r} is not a whole number"
            ) from None
        if label < 0:
            raise ValueError(f"{csv_path}, line {line}: label_index {label} is negative")
        records.append(VideoRecord(folder / (r["file"] or ""), label, r["label_name"] or ""))
    names: dict[int, str] = {r.label: r.name for r in records}
    return records, [names.get(i, f"class {i}") for i in range(max(names) + 1)]


class VideoClips(Dataset):
    """(input (T·15, S, S) float tensor, label) per video; ``train=True`` samples randomly and augments.

    S is ``size``; frames are first resized to short side ``scale_size`` (default: ``size``) and normalised
    with ``mean`` and ``std``. For evaluation build it with :meth:`for_evaluation` from a checkpoint's spec.
    """

    def __init__(
        self,
        records: list[VideoRecord],
        num_segments: int,
        size: int,
        train: bool,
        seed: int = 0,
        hflip_label_map: dict[int, int] | None = None,
        scales: tuple[float, ...] = (1.0, 0.875, 0.75),
        scale_size: int | None = None,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        timeout_s: float | None = None,
    ) -> None:
        self.records = records
        self.num_segments = num_segments
        self.size = size
        self.scale_size = size if scale_size is None else scale_size
        if self.scale_size < size:
            raise ValueError(f"scale_size {self.scale_size} is smaller than the crop size {size}")
        self.train = train
        self.seed = seed
        self.epoch = 0
        self.hflip_label_map = hflip_label_map
        self.scales = scales
        self.mean, self.std = tuple(mean), tuple(std)
        self.timeout_s = timeout_s  # evaluation: per-video decoding limit (None: load_clip's default)
        self.warnings: dict[str, list[str]] = {}  # evaluation: clip warnings by path (workers=0 only)
        self._frames: list[np.ndarray] | None = None

    @classmethod
    def for_evaluation(
        cls, records: list[VideoRecord], spec: ClipSpec, timeout_s: float | None = None
    ) -> VideoClips:
        """The evaluation set of a checkpoint: its segments, sizes and normalisation (``info.spec``)."""
        return cls(
            records,
            spec.num_segments,
            spec.input_size,
            train=False,
            scale_size=spec.scale_size,
            mean=spec.mean,
            std=spec.std,
            timeout_s=timeout_s,
        )

    @property
    def spec(self) -> ClipSpec:
        return ClipSpec(self.num_segments, self.size, self.scale_size, self.mean, self.std)

    def preload(self, progress: bool = True) -> None:
        """Decode every video once into memory (uint8). DataLoader workers forked afterwards share the
        arrays copy-on-write, so an epoch then costs augmentation only, not decoding."""
        import decord  # imported on use only: imported before torch, it breaks torch's BLAS here (segfault)
        from tqdm import tqdm

        self._frames = [
            decord.VideoReader(str(r.path), num_threads=1).get_batch(list(range(_length(r.path)))).asnumpy()
            for r in tqdm(self.records, desc="decode", disable=not progress, leave=False)
        ]

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Re-seed augmentation per epoch so that a resumed run draws the same samples."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        rec = self.records[index]
        if not self.train and self._frames is None:
            return self._evaluation_item(rec)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self._frames is not None:
            all_frames = self._frames[index]
            num_frames = len(all_frames)
        else:
            reader = PyAVReader(str(rec.path), probe(str(rec.path), rec.path.name, None).rotation)
            num_frames = reader.num_frames
        if self.train:
            idx = train_indices(num_frames, self.num_segments, rng)
        else:
            idx = test_indices(num_frames, self.num_segments)
        if self._frames is not None:
            snippets = all_frames[idx]  # (T, 5, H, W, 3)
        else:
            unique, inverse = np.unique(idx, return_inverse=True)
            decoded = dict(reader.frames(unique.tolist()))
            snippets = np.stack([decoded[i] for i in unique.tolist()])[inverse.reshape(idx.shape)]
        t, f, h, w, c = snippets.shape
        snippets = resize_short_side(snippets.reshape(t * f, h, w, c), self.scale_size)
        snippets = snippets.reshape(t, f, *snippets.shape[1:])
        label = rec.label
        if self.train:
            snippets, label = self._augment(snippets, label, rng)
        else:
            snippets = center_crop(snippets, self.size)
        return to_model_input(np.ascontiguousarray(snippets), self.mean, self.std)[0], label

    def _evaluation_item(self, rec: VideoRecord) -> tuple[torch.Tensor, int]:
        """What ``predict`` gives for the video (exact PIL resize, centre crop): ``load_clip`` itself."""
        from tdn.video.clip import DEFAULT_TIMEOUT_S, load_clip

        timeout = DEFAULT_TIMEOUT_S if self.timeout_s is None else self.timeout_s
        clip = load_clip(rec.path, spec=self.spec, exact=True, timeout_s=timeout, source_name=str(rec.path))
        if clip.warnings:
            self.warnings[str(rec.path)] = list(clip.warnings)
        return clip.inputs[0][0], rec.label

    def _augment(self, snippets: np.ndarray, label: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """Multi-scale random crop resized to ``size`` (one crop for the whole clip), then a horizontal flip
        that swaps the labels of mirror-image classes, as the official Something-Something training."""
        t, f, h, w, c = snippets.shape
        side = int(round(min(h, w) * rng.choice(self.scales)))
        y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = snippets[:, :, y0 : y0 + side, x0 : x0 + side]
        if side != self.size:
            frames = np.ascontiguousarray(crop).reshape(t * f, side, side, c)
            resized = [
                cv2.resize(fr, (self.size, self.size), interpolation=cv2.INTER_LINEAR) for fr in frames
            ]
            crop = np.stack(resized).reshape(t, f, self.size, self.size, c)
        if self.hflip_label_map is not None and rng.random() < 0.5:
            crop = crop[:, :, :, ::-1]
            label = self.hflip_label_map.get(label, label)
        return np.ascontiguousarray(crop), label


def _length(path: Path) -> int:
    import decord

    return len(decord.VideoReader(str(path), num_threads=1))
