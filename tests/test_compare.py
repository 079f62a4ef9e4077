"""Comparing two models on one clip: segment attribution on planted inputs, aligned strips, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tdn.__main__ import main
from tdn.cli.compare import checkpoint_paths
from tdn.interpret.comparison import compare, segment_importance
from tdn.interpret.faithfulness import clip_mask, dilate, load_mask_for
from tdn.network.checkpoint import FORMAT, CheckpointInfo, save_checkpoint
from tdn.network.model import build_model
from tdn.training.synth import CLASSES, generate_clip, video_codec, write_video
from tdn.video.clip import load_clip

pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")  # inside pytorch-grad-cam

T, SIZE, K = 4, 64, len(CLASSES)


def _model(variant: str, seed: int, segments: int = T):
    torch.manual_seed(seed)
    m = build_model("resnet18", segments, K, variant, width=0.25).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m


def _info(model, name: str, input_size: int = SIZE, scale_size: int = SIZE) -> CheckpointInfo:
    return CheckpointInfo(
        path=f"{name}.safetensors",
        format=FORMAT,
        config=model.config,
        class_names=list(CLASSES),
        device="cpu",
        input_size=input_size,
        scale_size=scale_size,
        metadata={"name": name},
    )


@pytest.fixture(scope="module")
def tdn():
    return _model("tdn", 0)


@pytest.fixture(scope="module")
def tsn():
    return _model("tsn", 1)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A generated clip written as the synthetic dataset does: mp4 plus <stem>_mask.npz."""
    folder = tmp_path_factory.mktemp("clip")
    clip = generate_clip(label=0, seed=5, size=SIZE, frames=32)
    path = folder / "synth_000000.mp4"
    write_video(path, clip.frames, 12, video_codec())
    np.savez_compressed(folder / "synth_000000_mask.npz", mask=clip.mask)
    return path


def _planted(moving: int) -> torch.Tensor:
    """(1, T·15, S, S): every snippet is 5 copies of one frame except segment ``moving``."""
    g = torch.Generator().manual_seed(7)
    snippets = torch.randn(T, 1, 3, SIZE, SIZE, generator=g).repeat(1, 5, 1, 1, 1)
    snippets[moving] = torch.randn(5, 3, SIZE, SIZE, generator=g)
    return snippets.reshape(1, T * 15, SIZE, SIZE)


def test_static_neutraliser_finds_the_one_segment_that_moves(tdn):
    drops = segment_importance(tdn, _planted(moving=2), target=3)
    assert drops.shape == (T,) and drops.dtype == np.float32
    assert drops[[0, 1, 3]].tolist() == [0.0, 0.0, 0.0]  # their edit changes nothing, exactly
    assert drops[2] != 0.0


def test_tsn_sees_centre_frames_only_so_static_importance_is_zero(tsn):
    x = torch.randn(1, T * 15, SIZE, SIZE, generator=torch.Generator().manual_seed(8))
    assert segment_importance(tsn, x, target=0).tolist() == [0.0] * T
    assert np.abs(segment_importance(tsn, x, target=0, neutral="neighbour")).max() > 0


def test_neighbour_neutraliser_copies_the_previous_snippet(tdn):
    x = _planted(moving=2).reshape(T, 15, SIZE, SIZE)
    x[1] = x[0]  # segment 1 repeats segment 0; segment 0 borrows from segment 1
    drops = segment_importance(tdn, x.reshape(1, -1, SIZE, SIZE), target=3, neutral="neighbour")
    assert drops[0] == 0.0 and drops[1] == 0.0 and drops[2] != 0.0


def test_segment_importance_is_one_batched_forward_that_leaves_the_model_as_it_was(tdn):
    batches = []
    handle = tdn.register_forward_pre_hook(lambda _m, inputs: batches.append(inputs[0].shape[0]))
    try:
        segment_importance(tdn, _planted(moving=1), target=0)
    finally:
        handle.remove()
    assert batches == [T + 1] and not tdn.training
    with pytest.raises(ValueError, match="neutraliser"):
        segment_importance(tdn, _planted(moving=1), target=0, neutral="blur")


def test_both_strips_share_frames_target_and_mask(tdn, tsn, video):
    a, b = (tdn, _info(tdn, "tdn")), (tsn, _info(tsn, "tsn"))
    clip = load_clip(video, spec=a[1].spec)
    mask = load_mask_for(video)
    result = compare(a, b, clip, mask=mask)
    ex_a, ex_b = result.a.explanation, result.b.explanation
    centre = clip.frame_indices[0][:, 2]
    for ex in (ex_a, ex_b):
        assert np.array_equal(ex.frame_indices, centre)
        assert np.array_equal(ex.frames, clip.model_frames[0][:, 2])
        assert ex.target == result.target == result.a.prediction.top1
    assert np.array_equal(result.frame_indices, centre) and result.frames.shape == (T, SIZE, SIZE, 3)
    assert np.allclose(result.cam_difference, ex_a.cam - ex_b.cam)
    assert result.b.segment_importance.tolist() == [0.0] * T  # TSN under the static neutraliser
    aligned = clip_mask(mask, clip)
    for side in (result.a, result.b):
        assert side.mask_area_share == pytest.approx(dilate(aligned, 2).mean())
        for share in (side.mask_energy, side.motion_energy):  # NaN when a random model's CAM is all zero
            assert np.isnan(share) or 0 <= share <= 1
    no_mask = compare(a, b, clip, target=5)
    assert no_mask.target == 5 and no_mask.a.mask_energy is None and no_mask.b.mask_area_share is None


def test_models_with_other_input_sizes_are_decoded_per_model_on_the_same_frames(tdn, tsn, video):
    a, b = (tdn, _info(tdn, "tdn")), (tsn, _info(tsn, "tsn", input_size=48, scale_size=56))
    result = compare(a, b, video)
    assert result.notes and "same frames" in result.notes[0]
    assert result.b.explanation.cam.shape == (T, 48, 48)
    assert result.cam_difference.shape == (T, SIZE, SIZE)
    assert np.array_equal(result.a.explanation.frame_indices, result.b.explanation.frame_indices)
    clip = load_clip(video, spec=a[1].spec)
    with pytest.raises(ValueError, match="pass the video itself"):
        compare(a, b, clip)


def test_models_must_agree_on_segments_and_classes(tdn, video):
    other_t = _model("tsn", 2, segments=T + 1)
    fewer = build_model("resnet18", T, K - 1, "tsn", width=0.25).eval()
    a = (tdn, _info(tdn, "tdn"))
    with pytest.raises(ValueError, match="segments"):
        compare(a, (other_t, _info(other_t, "t5")), video)
    with pytest.raises(ValueError, match="classes"):
        compare(a, (fewer, _info(fewer, "k13")), video)


def test_cli_writes_strips_difference_and_json(tdn, tsn, video, tmp_path):
    paths = []
    for name, model in (("a", tdn), ("b", tsn)):
        paths += ["--checkpoint", str(tmp_path / f"{name}.safetensors")]
        save_checkpoint(
            model, paths[-1], list(CLASSES), input_size=SIZE, scale_size=SIZE, name=f"demo-{name}"
        )
    out = tmp_path / "out"
    assert main(["compare", str(video), *paths, "--out", str(out), "--neutral", "neighbour"]) == 0
    for name in ("strip_a.png", "strip_b.png", "difference.png", "compare.json"):
        assert (out / name).stat().st_size > 0
    record = json.loads((out / "compare.json").read_text())
    assert {"target", "target_name", "frame_indices", "a", "b", "neutral"} <= set(record)
    assert record["neutral"] == "neighbour" and len(record["frame_indices"]) == T
    for side in (record["a"], record["b"]):
        assert {"topk", "motion_energy", "mask_energy", "mask_area_share", "segment_importance"} <= set(side)
        assert len(side["segment_importance"]) == T and len(side["topk"]) == 5
    assert record["a"]["name"] == "demo-a" and record["b"]["variant"] == "tsn"


def test_cli_defaults_to_the_demo_pair_and_reports_missing_files(tmp_path, capsys):
    from tdn.assets import DEMO_CHECKPOINT, DEMO_TSN_CHECKPOINT

    assert checkpoint_paths([]) == (str(DEMO_CHECKPOINT), str(DEMO_TSN_CHECKPOINT))
    assert checkpoint_paths(["x.safetensors"]) == ("x.safetensors", str(DEMO_TSN_CHECKPOINT))
    code = main(
        ["compare", str(tmp_path / "none.mp4"), "--checkpoint", "a", "--checkpoint", "b", "--out", "o"]
    )
    assert code == 2 and "error" in capsys.readouterr().err


def test_study_writes_rows_per_clip_and_model_and_a_json_summary(tdn, tsn, tmp_path):
    from analysis.compare_study import main as study

    paths = {}
    for name, model in (("tdn", tdn), ("tsn", tsn)):
        paths[name] = str(tmp_path / f"{name}.safetensors")
        save_checkpoint(model, paths[name], list(CLASSES), input_size=SIZE, scale_size=SIZE, name=name)
    out = tmp_path / "study.csv"
    argv = ["--num", "2", "--seed", "77", "--size", str(SIZE), "--frames", "32", "--percentiles", "30"]
    argv += ["--tdn", paths["tdn"], "--tsn", paths["tsn"], "--cache", str(tmp_path), "--out", str(out)]
    assert study(argv) == 0
    import pandas as pd

    rows = pd.read_csv(out)
    assert len(rows) == 4 and sorted(set(rows["model"])) == ["tdn", "tsn"]
    assert {"mask_energy", "mask_area_share", "motion_energy", "road", "static_vector"} <= set(rows)
    assert (rows.loc[rows["model"] == "tsn", "static_sum"] == 0).all()
    summary = json.loads(out.with_suffix(".json").read_text())
    assert {"commit", "command", "date", "machine", "models", "paired"} <= set(summary)
    assert set(summary["models"]["tdn"]["metrics"]["mask_energy"]) >= {"mean", "median", "q25", "q75"}
    with pytest.raises(ValueError, match="training"):
        study([*argv[:2], "--seed", "1", *argv[4:]])
