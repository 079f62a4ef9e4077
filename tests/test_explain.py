"""Explanations: alignment, exactness against a hand-computed Grad-CAM, no leftovers, thread safety, exports."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import torch

from tdn.interpret.gradcam import LAYERS, METHODS, ExplainError, default_layer, explain
from tdn.interpret.render import gif_bytes, grid_image, maps_npz_bytes, overlay, video_bytes
from tdn.interpret.tdmaps import difference_maps
from tdn.network.model import build_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model("resnet18", 4, 6, "tdn", width=0.25).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m


def _input(seed: int, t: int = 4, size: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, t * 15, size, size, generator=g)


def _state(model):
    hooks = sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()
    )
    return hooks, [p.requires_grad for p in model.parameters()], model.training


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("layer", list(LAYERS))
def test_every_method_and_layer_gives_aligned_maps(model, method, layer):
    ex = explain(model, _input(0), method=method, layer=layer)
    assert ex.cam.shape == (4, 64, 64) and ex.cam.dtype == np.float32
    assert ex.cam.min() >= 0.0 and ex.cam.max() <= 1.0
    assert ex.frames.shape == (4, 64, 64, 3) and ex.frames.dtype == np.uint8
    assert ex.frame_indices.shape == (4,)


@pytest.mark.parametrize(
    ("size", "layer"),
    [(224, "res5"), (256, "res5"), (112, "res4"), (160, "res4"), (64, "res3"), (16, "stem")],
)
def test_auto_layer_is_the_deepest_with_a_7x7_map(model, size, layer):
    assert default_layer(size) == layer
    if 32 <= size <= 112:  # TDN needs 32 px at least
        auto = explain(model, _input(1, size=size), layer="auto")
        assert auto.layer == layer
        np.testing.assert_array_equal(auto.cam_raw, explain(model, _input(1, size=size), layer=layer).cam_raw)
        assert min(auto.cam_raw.shape[1:]) >= 7 or layer == "stem"


def test_gradcam_equals_a_hand_computed_gradcam(model):
    x = _input(1)
    layer = model.base_model.layer4_bak
    seen = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.__setitem__("a", out))
    try:
        logits = model(x)
        target = int(logits.argmax())
        (grad,) = torch.autograd.grad(logits[0, target], seen["a"])
    finally:
        handle.remove()
    weights = grad.mean((2, 3), keepdim=True)
    expected = torch.relu((weights * seen["a"]).sum(1)).detach().numpy()
    ex = explain(model, x, method="gradcam", layer="res5")
    assert ex.target == target
    np.testing.assert_allclose(ex.cam_raw, expected, rtol=1e-4, atol=1e-6)
    # one scale for the whole video: the strongest segment peaks at 1, the others keep their proportion
    peaks = ex.cam_raw.reshape(4, -1).max(1)
    assert ex.cam.max() == pytest.approx(1.0, abs=1e-3)
    assert np.argmax(peaks) == np.argmax(ex.cam.reshape(4, -1).max(1))


def test_explicit_target_and_bad_requests(model):
    ex = explain(model, _input(2), target=3)
    assert ex.target == 3
    with pytest.raises(ExplainError, match="outside"):
        explain(model, _input(2), target=99)
    with pytest.raises(ExplainError, match="unknown method"):
        explain(model, _input(2), method="scorecam")
    with pytest.raises(ExplainError, match="unknown layer"):
        explain(model, _input(2), layer="res9")


def test_no_hooks_flags_or_grads_left_after_success_and_after_error(model):
    before = _state(model)
    explain(model, _input(3), method="gradcam++", layer="res3")
    assert _state(model) == before
    assert all(p.grad is None for p in model.parameters())
    model.train()
    try:
        with pytest.raises(ValueError):
            explain(model, torch.zeros(1, 59, 64, 64))  # wrong channel count fails inside the forward
        assert _state(model) == (before[0], before[1], True)
    finally:
        model.eval()
    frozen = model.new_fc.weight
    frozen.requires_grad_(False)
    try:
        explain(model, _input(3))
        assert frozen.requires_grad is False
    finally:
        frozen.requires_grad_(True)


def test_backward_stops_at_the_target_layer(model):
    """Nothing before the target layer is differentiated: no weight grads, no graph through the stem."""
    calls = []
    handle = model.base_model.conv1.register_full_backward_hook(lambda *a: calls.append(1))
    try:
        explain(model, _input(4), layer="res5")
    finally:
        handle.remove()
    assert calls == []
    assert all(p.grad is None for p in model.parameters())


def test_concurrent_explanations_equal_sequential_ones(model):
    inputs = [_input(10 + i) for i in range(8)]
    methods = ["gradcam", "layercam", "gradcam++", "hirescam"] * 2
    layers = ["res5", "res4", "res3", "stem"] * 2
    sequential = [
        explain(model, x, method=m, layer=ly).cam for x, m, ly in zip(inputs, methods, layers, strict=True)
    ]
    results: list[np.ndarray | None] = [None] * 8
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        results[i] = explain(model, inputs[i], method=methods[i], layer=layers[i]).cam

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, sequential, strict=True):
        assert got is not None and np.array_equal(got, want)


def test_difference_maps_do_not_change_outputs_and_cover_every_stage(model):
    x = _input(5)
    with torch.inference_mode():
        plain = model(x)
    maps, logits = difference_maps(model, x)
    assert torch.equal(plain, logits)
    assert maps.stdm_rgb_diff.shape == (4, 4, 64, 64)
    assert maps.stdm_s0.shape == (4, 8, 8) and maps.stdm_s1.shape == (4, 8, 8)
    assert maps.blocks() == ["res3.0", "res3.1", "res4.0", "res4.1", "res5.0", "res5.1"]
    first = maps.block("res3.0")
    assert first.forward_diff.shape == (4, 16, 16)  # BasicBlock: L-TDM at the block's input resolution
    assert np.all(first.forward_diff[-1] == 0) and np.all(first.backward_diff[0] == 0)  # clip ends
    assert np.all(np.abs(first.excitation) < 0.5)
    assert _state(model)[0] == 0


def test_rgb_difference_map_matches_the_input_differences(model):
    x = torch.zeros(1, 60, 64, 64)
    x.view(4, 5, 3, 64, 64)[1, 3, :, 10:20, 30:40] = 1.0  # segment 1, frame 3 differs in one patch
    maps, _ = difference_maps(model, x)
    diff = maps.stdm_rgb_diff
    assert diff[1, 2, 15, 35] == pytest.approx(1.0) and diff[1, 3, 15, 35] == pytest.approx(1.0)
    assert diff[1, 0].max() == 0 and diff[0].max() == 0 and diff[1, 2, 0, 0] == 0


def test_exports_are_readable(model, tmp_path):
    import decord
    from PIL import Image

    x = _input(6)
    ex = explain(model, x)
    maps, _ = difference_maps(model, x)
    mp4 = tmp_path / "o.mp4"
    mp4.write_bytes(video_bytes(overlay(ex.frames, ex.cam, 0.6)))
    assert len(decord.VideoReader(str(mp4))) == 4
    gif = Image.open(io.BytesIO(gif_bytes(ex.frames)))
    assert gif.n_frames == 4
    grid = grid_image(ex, maps)
    assert grid.shape[1] == 4 * 66 + 2 and grid.shape[0] == 6 * 66 + 2
    npz = np.load(io.BytesIO(maps_npz_bytes(ex, maps)))
    assert npz["cam"].shape == (4, 64, 64) and npz["frames"].dtype == np.uint8
    assert "ltdm_res5.1_excitation" in npz.files
    with pytest.raises(ValueError, match="opacity"):
        overlay(ex.frames, ex.cam, 1.5)


def test_fast_predictions_equal_exact_ones_and_follow_weight_changes(model):
    from tdn.inference import inference_copy, predict

    x = [_input(7)]
    exact, fast = predict(model, x, fast=False), predict(model, x)
    assert torch.allclose(exact.view_logits, fast.view_logits, atol=1e-4)
    copy = inference_copy(model)
    assert inference_copy(model) is copy  # made once
    with torch.no_grad():
        model.new_fc.bias.add_(1.0)
    try:
        assert inference_copy(model) is not copy  # a weight changed: remade
        assert torch.allclose(
            predict(model, x).view_logits, predict(model, x, fast=False).view_logits, atol=1e-4
        )
    finally:
        with torch.no_grad():
            model.new_fc.bias.sub_(1.0)
