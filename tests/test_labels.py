"""Label lists: chosen by class count or dataset, and overrides checked against the count."""

from __future__ import annotations

from pathlib import Path

import pytest

from tdn.network.labels import LABELS_DIR, LabelError, canonical_dataset, labels_for, load_labels


def test_shipped_lists_have_the_documented_lengths() -> None:
    assert len(load_labels(LABELS_DIR / "kinetics400.txt")) == 400
    v1 = load_labels(LABELS_DIR / "something_something_v1.txt")
    v2 = load_labels(LABELS_DIR / "something_something_v2.txt")
    assert len(v1) == len(v2) == 174
    # the mirror pairs TDN swaps when flipping (PROVENANCE.md §2)
    assert (
        v2[86] == "Pulling something from left to right" and v2[87] == "Pulling something from right to left"
    )


def test_choice_by_class_count() -> None:
    assert labels_for(400)[0] == "abseiling"
    assert labels_for(174) == load_labels(LABELS_DIR / "something_something_v2.txt")
    assert labels_for(5) == ["class 0", "class 1", "class 2", "class 3", "class 4"]


def test_choice_by_dataset() -> None:
    assert labels_for(174, dataset="somethingv1") == load_labels(LABELS_DIR / "something_something_v1.txt")
    assert labels_for(400, dataset="Kinetics") == load_labels(LABELS_DIR / "kinetics400.txt")
    assert canonical_dataset("SSv2") == "something_something_v2"
    assert canonical_dataset("ucf101") is None
    assert labels_for(3, dataset="synthetic-motion") == ["class 0", "class 1", "class 2"]
    with pytest.raises(LabelError, match="400 classes"):
        labels_for(174, dataset="kinetics400")


def test_override_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text("run\nwalk\njump\n", encoding="utf-8")
    assert labels_for(3, override=path) == ["run", "walk", "jump"]
    with pytest.raises(LabelError, match="has 3 lines but the checkpoint has 174 classes"):
        labels_for(174, override=path)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(LabelError, match="empty"):
        load_labels(empty)
