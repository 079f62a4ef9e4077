"""Class names for a checkpoint's output rows, from the lists shipped in ``assets/labels/``.

Line i of a label file names class index i (see ``assets/labels/PROVENANCE.md`` for where each order
comes from). A checkpoint only tells us its class count, so the list is chosen by that count, by the
dataset named in the checkpoint's metadata, or by a file the user supplies.
"""

from __future__ import annotations

from pathlib import Path

from tdn.assets import LABELS as LABELS_DIR

SYNTHETIC_DATASET = "synthetic-motion"
"""The dataset name our checkpoints record when they were trained on ``tdn.training.synth`` clips."""

LABEL_FILES: dict[str, str] = {
    "kinetics400": "kinetics400.txt",
    "something_something_v1": "something_something_v1.txt",
    "something_something_v2": "something_something_v2.txt",
}

# Spellings a checkpoint's metadata (or the official scripts' ``dataset`` argument) may use.
_DATASET_ALIASES: dict[str, str] = {
    "kinetics": "kinetics400",
    "kinetics400": "kinetics400",
    "kinetics-400": "kinetics400",
    "k400": "kinetics400",
    "something": "something_something_v1",
    "somethingv1": "something_something_v1",
    "something-something-v1": "something_something_v1",
    "something_something_v1": "something_something_v1",
    "sthv1": "something_something_v1",
    "ssv1": "something_something_v1",
    "somethingv2": "something_something_v2",
    "something-something-v2": "something_something_v2",
    "something_something_v2": "something_something_v2",
    "sthv2": "something_something_v2",
    "ssv2": "something_something_v2",
}


class LabelError(ValueError):
    """A label list that does not fit the checkpoint, or a dataset name we do not know."""


def load_labels(path: str | Path) -> list[str]:
    """The class names in a UTF-8 text file, one per line (index = line number, from 0)."""
    names = Path(path).read_text(encoding="utf-8").splitlines()
    if not names:
        raise LabelError(f"label file {path} is empty")
    return names


def canonical_dataset(dataset: str) -> str | None:
    """Map a spelling such as ``'somethingv2'`` or ``'K400'`` to a key of ``LABEL_FILES``; None if unknown."""
    return _DATASET_ALIASES.get(dataset.strip().lower().replace(" ", "_"))


def labels_for(num_classes: int, dataset: str | None = None, override: str | Path | None = None) -> list[str]:
    """Class names for a ``num_classes``-way classifier.

    An ``override`` file wins and must have exactly ``num_classes`` lines. Otherwise a known
    ``dataset`` picks its shipped list (which must match the count). Otherwise (no dataset, or one we
    ship no list for) the count decides: 174 classes get the Something-Something V2 list (its order
    also equals sorted V1), 400 get Kinetics-400, and any other count gets generic names
    ``"class 0"``, ``"class 1"``, ...
    """
    if num_classes < 1:
        raise LabelError(f"num_classes must be positive, got {num_classes}")
    if override is not None:
        names = load_labels(override)
        if len(names) != num_classes:
            raise LabelError(
                f"label file {override} has {len(names)} lines but the checkpoint has {num_classes} "
                "classes; use a file with one class name per line, in the checkpoint's class order"
            )
        return names
    key = canonical_dataset(dataset) if dataset else None
    if key is not None:
        names = load_labels(LABELS_DIR / LABEL_FILES[key])
        if len(names) != num_classes:
            raise LabelError(
                f"dataset {dataset!r} has {len(names)} classes but the checkpoint has {num_classes}"
            )
        return names
    if num_classes == 174:
        return load_labels(LABELS_DIR / LABEL_FILES["something_something_v2"])
    if num_classes == 400:
        return load_labels(LABELS_DIR / LABEL_FILES["kinetics400"])
    return [f"class {i}" for i in range(num_classes)]
