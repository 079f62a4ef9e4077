"""Checkpoint loading: our format's round trip, official files, and a specific error for every wrong file."""

from __future__ import annotations

import collections
import pickle

import pytest
import torch

from tdn.network.checkpoint import (
    CHECKPOINT_ERROR_KINDS,
    CheckpointError,
    DeviceError,
    load_checkpoint,
    resolve_device,
    save_checkpoint,
)
from tdn.network.model import build_model

CLASSES = [f"c{i}" for i in range(6)]


def _small(variant: str = "tdn", segments: int = 4):
    torch.manual_seed(0)
    model = build_model("resnet18", segments, len(CLASSES), variant, width=0.25).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


@pytest.mark.parametrize("variant", ["tdn", "tsn", "l-tdm"])
def test_our_format_round_trip_is_exact(tmp_path, variant):
    model = _small(variant)
    path = save_checkpoint(
        model,
        tmp_path / "m.safetensors",
        CLASSES,
        dataset="synthetic",
        input_size=112,
        provenance={"commit": "abc"},
    )
    loaded, info = load_checkpoint(path, device="cpu")
    assert info.format == "tdn-lens-v1" and info.config == model.config
    assert (
        info.class_names == CLASSES
        and info.input_size == 112
        and info.metadata["provenance"]["commit"] == "abc"
    )
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k1 == k2 and torch.equal(v1, v2)
    x = torch.randn(1, 60, 64, 64)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))
    assert not list(tmp_path.glob("*.tmp"))


def test_our_format_can_run_with_another_segment_count(tmp_path):
    path = save_checkpoint(_small(), tmp_path / "m.safetensors", CLASSES)
    model, info = load_checkpoint(path, num_segments=8, device="cpu")
    assert model.num_segments == 8 and model.base_model.fuse1.alpha == 0.5 and info.warnings


def _official(tmp_path, sd, name="best.pth.tar", wrap=True):
    path = tmp_path / name
    torch.save({"epoch": 1, "state_dict": {"module." + k: v for k, v in sd.items()}} if wrap else sd, path)
    return path


def test_official_loader_renames_legacy_classifier_and_drops_dec2020_marker(tmp_path, official_state_dict):
    sd = dict(official_state_dict)
    sd["base_model.classifier.weight"] = sd.pop("new_fc.weight")
    sd["base_model.classifier.bias"] = sd.pop("new_fc.bias")
    sd["base_model.conv1_temp1.weight"] = torch.zeros(64, 3, 7, 7)
    model, info = load_checkpoint(_official(tmp_path, sd, wrap=False), num_segments=16, device="cpu")
    assert model.num_segments == 16 and model.base_model.fuse1.alpha == 0.75
    assert any("Dec-2020" in w for w in info.warnings)
    assert torch.equal(model.new_fc.weight, official_state_dict["new_fc.weight"])
    assert len(info.class_names) == 174


def test_official_file_without_segments_is_refused(tmp_path, official_state_dict):
    with pytest.raises(CheckpointError, match="number of segments") as e:
        load_checkpoint(_official(tmp_path, official_state_dict), device="cpu")
    assert e.value.kind == "segments"


def test_resnet101_is_inferred_from_layer3_depth(tmp_path):
    sd = build_model("resnet101", 8, 400).state_dict()
    model, info = load_checkpoint(_official(tmp_path, sd), num_segments=8, device="cpu")
    assert info.config.arch == "resnet101" and info.config.num_classes == 400
    assert info.class_names[0] == "abseiling"


def test_missing_and_unexpected_keys_are_listed(tmp_path, official_state_dict):
    sd = dict(official_state_dict)
    del sd["base_model.layer2_bak.0.shift.conv.weight"]
    sd["base_model.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(_official(tmp_path, sd), num_segments=8, device="cpu")
    assert e.value.kind == "keys"
    assert "layer2_bak.0.shift.conv.weight" in str(e.value) and "base_model.extra.weight" in str(e.value)


def test_shape_mismatch_is_named(tmp_path, official_state_dict):
    sd = dict(official_state_dict)
    sd["base_model.conv1_5.0.weight"] = torch.zeros(64, 15, 7, 7)
    with pytest.raises(CheckpointError, match=r"conv1_5\.0\.weight: file \(64, 15, 7, 7\)") as e:
        load_checkpoint(_official(tmp_path, sd), num_segments=8, device="cpu")
    assert e.value.kind == "shape"


def test_unknown_architecture(tmp_path):
    sd = {f"base_model.layer3_bak.{i}.conv1.weight": torch.zeros(1) for i in range(4)}
    sd["new_fc.weight"] = torch.zeros(5, 2048)
    with pytest.raises(CheckpointError, match="4 blocks") as e:
        load_checkpoint(_official(tmp_path, sd), num_segments=8, device="cpu")
    assert e.value.kind == "unknown_arch"


def test_a_pickle_with_a_code_payload_is_refused_without_running(tmp_path):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="could run code") as e:
        load_checkpoint(path, num_segments=8, device="cpu")
    assert e.value.kind == "unsafe"
    assert not marker.exists()
    raw = tmp_path / "evil_raw.pkl"
    raw.write_bytes(pickle.dumps(Payload(), protocol=2))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw, num_segments=8, device="cpu")
    assert not marker.exists()


def test_truncated_file(tmp_path, official_state_dict):
    full = _official(tmp_path, official_state_dict).read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(full[: len(full) // 3])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as e:
        load_checkpoint(cut, num_segments=8, device="cpu")
    assert e.value.kind == "corrupt"


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "PNG image"),
        (b"name,top1\nTDN,52.3\n", "text file"),
        (b"", "empty"),
    ],
)
def test_non_checkpoints_renamed_pth_are_named(tmp_path, content, what):
    path = tmp_path / "model.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=what) as e:
        load_checkpoint(path, num_segments=8, device="cpu")
    assert e.value.kind == "not_checkpoint"


def test_a_dict_without_tensors(tmp_path):
    path = tmp_path / "results.pth"
    torch.save({"epoch": 3, "scores": collections.OrderedDict(a=1)}, path)
    with pytest.raises(CheckpointError, match="without tensors"):
        load_checkpoint(path, num_segments=8, device="cpu")


def test_safetensors_without_our_metadata(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="without TDN Lens metadata"):
        load_checkpoint(path, device="cpu")


def test_missing_file_and_devices_that_do_not_exist(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint file") as caught:
        load_checkpoint(tmp_path / "nope.pth")
    assert caught.value.kind == "missing"
    path = save_checkpoint(_small(), tmp_path / "m.safetensors", CLASSES)
    # One past the last GPU never exists, with or without GPUs; the error says what there is.
    gpus = torch.cuda.device_count()
    with pytest.raises(DeviceError, match="no GPU" if gpus == 0 else f"{gpus} GPU"):
        load_checkpoint(path, device=f"cuda:{gpus}")
    if gpus == 0:
        with pytest.raises(DeviceError, match="no GPU"):
            load_checkpoint(path, device="cuda")
    for bad in ("gpu", "tpu:0", "cuda:x"):
        with pytest.raises(DeviceError, match="device"):
            resolve_device(bad)
    assert resolve_device("CPU") == torch.device("cpu")
    assert not issubclass(DeviceError, CheckpointError)  # a device problem is not the file's fault


def test_error_kinds_are_listed():
    with pytest.raises(ValueError, match="unknown checkpoint error kind"):
        CheckpointError("made_up", "x")
    assert {"missing", "unsafe", "keys", "shape", "segments"} <= set(CHECKPOINT_ERROR_KINDS)
