"""The shipped demo models: they load, are small, classify the shipped clips, and look at the actor."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tdn.assets import DEMO_CHECKPOINT, DEMO_TSN_CHECKPOINT, sample_clips
from tdn.cli.samples import slug
from tdn.inference import predict
from tdn.interpret.faithfulness import clip_mask, load_mask_for, mask_energy
from tdn.interpret.gradcam import explain
from tdn.network.checkpoint import load_checkpoint
from tdn.training.synth import CLASSES
from tdn.video.clip import load_clip


@pytest.fixture(scope="module")
def demo():
    return load_checkpoint(DEMO_CHECKPOINT, device="cpu")


def test_shipped_files_are_small_and_described(demo):
    model, info = demo
    assert DEMO_CHECKPOINT.stat().st_size <= 20 * 2**20
    assert (
        info.class_names == CLASSES
        and info.config.variant == "tdn"
        and info.config.s_tdm
        and info.config.l_tdm
    )
    assert info.metadata["provenance"]["command"].startswith("python -m tdn train")
    twin, twin_info = load_checkpoint(DEMO_TSN_CHECKPOINT, device="cpu")
    assert twin_info.config.variant == "tsn" and twin_info.class_names == CLASSES
    recipe = ("data", "val_data", "arch", "width", "segments", "size", "epochs", "batch_size", "lr", "seed")
    for key in recipe:  # the same recipe: only the temporal modules differ
        assert twin_info.metadata["training"][key] == info.metadata["training"][key], key


def test_one_sample_per_class_and_the_recorded_answers_are_the_demos(demo):
    model, info = demo
    clips = sample_clips()
    recorded = json.loads((clips[0].parent / "samples.json").read_text())["clips"]
    assert sorted(slug(n) for n in info.class_names) == sorted(p.stem for p in clips)  # all 14 classes
    correct = 0
    for path in clips:
        pred = predict(model, load_clip(path, spec=info.spec), info.class_names)
        assert recorded[path.name]["predicted"] == pred.top1, path.name  # what the picker marks is true
        correct += info.class_names[pred.top1] == recorded[path.name]["label_name"]
    assert correct >= 11, correct


def test_gradcam_energy_concentrates_on_the_acting_object(demo):
    """A planted case with a known answer: the class is decided by one object's motion, and its mask is
    known. Over the shipped clips, the CAM's energy on the (dilated) mask exceeds the mask's area share."""
    model, info = demo
    shares, areas = [], []
    for path in sample_clips():
        clip = load_clip(path, spec=info.spec)
        ex = explain(model, clip, layer="res4")
        share, area = mask_energy(ex.cam, clip_mask(load_mask_for(path), clip))
        shares.append(share)
        areas.append(area)
    assert np.nanmean(shares) > 2 * np.mean(areas), (shares, areas)
