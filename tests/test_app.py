"""Headless tests of every page with Streamlit's AppTest: default load, each control, uploads, bad inputs.

The app runs on tiny untrained checkpoints (ResNet-18 at width 0.25, 112 px) named like the demo TDN and its
TSN twin, and on synthetic clips, all written to a temporary folder and offered through the app's
``TDN_LENS_MODELS_DIR`` / ``TDN_LENS_CLIPS_DIR`` settings, so the tests do not depend on shipped assets.
Streamlit's caches live for the whole process, so only the first test pays for loading and decoding.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from tdn import assets
from tdn.network.checkpoint import save_checkpoint
from tdn.network.model import build_model
from tdn.training.synth import CLASSES, write_dataset

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "streamlit_app.py"
TIMEOUT = 90
SEGMENTS = 8


@pytest.fixture(scope="module")
def fixture_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("app")
    models, clips = root / "models", root / "clips"
    torch.manual_seed(0)
    for variant, name in (("tdn", assets.DEMO_CHECKPOINT.name), ("tsn", assets.DEMO_TSN_CHECKPOINT.name)):
        model = build_model("resnet18", SEGMENTS, len(CLASSES), variant, width=0.25)
        save_checkpoint(
            model, models / name, CLASSES, input_size=112, scale_size=112, name=f"tiny {variant}",
            dataset="synthetic-motion",
        )  # fmt: skip
    (models / "holiday_photo.pth").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    torch.save(
        {"state_dict": {"module.base_model.conv1.weight": torch.zeros(1)}}, models / "official_16f.pth.tar"
    )
    write_dataset(clips, 2, seed=7, progress=False)
    first, second = sorted(p.name for p in clips.glob("*.mp4"))
    answers = {first: {"correct": True}, second: {"correct": False, "predicted_name": "Shaking something"}}
    (clips / "samples.json").write_text(json.dumps({"clips": answers}))
    return {"models": models, "clips": clips}


@pytest.fixture
def env(fixture_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("TDN_LENS_MODELS_DIR", str(fixture_dirs["models"]))
    monkeypatch.setenv("TDN_LENS_CLIPS_DIR", str(fixture_dirs["clips"]))
    monkeypatch.delenv("TDN_LENS_ALLOW_SERVER_PATHS", raising=False)
    return fixture_dirs


def fresh() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def ok(at: AppTest) -> AppTest:
    """Assert the run raised nothing and showed no error; return the app for chaining."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def strip_images(at: AppTest, key: str) -> list:
    return [img for element in at.get_by_key(key).get("image") for img in element.proto.imgs]


def has_key(at: AppTest, key: str) -> bool:
    try:
        at.get_by_key(key)
    except KeyError:
        return False
    return True


def open_tab(at: AppTest, label: str) -> AppTest:
    """Select a tab of the Inspect page (its tabs are lazy: only the open one runs) and rerun."""
    at.session_state["inspect_tab"] = label
    return at.run()


def top1_name(at: AppTest) -> str:
    names = [m.value.removeprefix("#### ") for m in at.markdown if m.value.startswith("#### ")]
    assert names, "no top-1 heading"
    return names[0]


@pytest.fixture
def inspect(env: dict[str, Path]) -> Iterator[AppTest]:
    yield ok(fresh().run())


# --------------------------------------------------------------------------------------------- inspect


def test_inspect_default_load(inspect: AppTest, env: dict[str, Path]) -> None:
    at = inspect
    assert at.title[0].value == "Inspect a clip"
    assert top1_name(at) in CLASSES
    first = sorted(env["clips"].glob("*.mp4"))[0].name
    cam = strip_images(at, "cam_strip")
    assert len(cam) == SEGMENTS
    assert all(first in img.alt for img in cam)
    assert [img.caption.split(" · ")[0] for img in cam] == [f"seg {t + 1}" for t in range(SEGMENTS)]
    frames = [int(img.caption.rsplit(" ", 1)[1]) for img in cam]
    assert frames == sorted(frames)
    assert len(strip_images(at, "frames_strip")) == SEGMENTS
    bars = at.get_by_key("topk").get("progress")  # the top-5 as native bars, most probable first
    assert len(bars) == 5
    values = [bar.proto.value for bar in bars]  # percent, as the frontend receives it
    assert values == sorted(values, reverse=True) and sum(values) <= 100 + 5
    assert top1_name(at) in bars[0].proto.text and "explained" in bars[0].proto.text
    assert len(at.get("video")) >= 2  # the source clip and the overlay playback
    assert any("CPU" in c.value or "GPU" in c.value for c in at.sidebar.caption)
    assert not has_key(at, "maps_strip") and not has_key(at, "compare_strip_A")  # closed tabs do not run

    ok(open_tab(at, "Timings & downloads"))
    assert len(at.download_button) == 5
    labels = {m.label for m in at.metric}
    assert {"Decode + preprocess", "Grad-CAM", "Difference maps"} <= labels
    ok(open_tab(at, "Compare with"))
    # The TSN twin is the default second model and both strips line up on the same frames.
    assert len(strip_images(at, "compare_strip_A")) == len(strip_images(at, "compare_strip_B")) == SEGMENTS
    assert at.get_by_key("compare_importance") is not None
    assert not has_key(at, "cam_strip")


def test_rerun_recomputes_nothing(inspect: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    import app.cached as cached

    calls: list[str] = []
    for name in ("load_checkpoint", "load_clip", "predict", "explain", "difference_maps", "compare"):
        original = getattr(cached, name)
        monkeypatch.setattr(
            cached, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k)
        )
    at = inspect
    ok(at.run())
    ok(at.sidebar.slider(key="cam_opacity").set_value(0.8).run())
    ok(open_tab(at, "Temporal differences"))
    ok(at.segmented_control(key="maps_stage").set_value("s1").run())
    ok(open_tab(at, "Where it looked"))
    assert set(calls) <= {"difference_maps"} and len(calls) <= 1  # at most once, when its tab first opened
    calls.clear()
    ok(at.sidebar.selectbox(key="cam_layer").set_value("res3").run())
    assert calls == ["explain"]  # the new heatmap; the closed tabs compute nothing
    ok(open_tab(at, "Compare with"))
    assert calls == ["explain", "compare"]


def test_explanation_controls(inspect: AppTest) -> None:
    at = inspect
    ok(at.sidebar.selectbox(key="cam_method").set_value("gradcam++").run())
    assert any("**Grad-CAM++**" in m.value for m in at.markdown)
    ok(at.sidebar.selectbox(key="cam_layer").set_value("stem").run())
    target = next(w for w in at.sidebar.selectbox if w.label == "Explain class")
    ok(target.set_value(3).run())
    assert any(f"for **{CLASSES[3]}**" in m.value for m in at.markdown)
    ok(at.sidebar.slider(key="cam_opacity").set_value(0.2).run())
    ok(at.sidebar.selectbox(key="cam_method").set_value("eigencam").run())
    assert len(strip_images(at, "cam_strip")) == SEGMENTS


def test_difference_map_controls(inspect: AppTest) -> None:
    at = ok(open_tab(inspect, "Temporal differences"))
    for stage in ("rgb", "s0", "s1", "ltdm"):
        ok(at.segmented_control(key="maps_stage").set_value(stage).run())
        assert len(strip_images(at, "maps_strip")) == SEGMENTS
    for quantity in ("forward_diff", "backward_diff", "excitation", "modulation"):
        ok(at.radio(key="maps_quantity").set_value(quantity).run())
    ok(at.selectbox(key="maps_block").set_value("res3.0").run())
    ok(at.segmented_control(key="maps_stage").set_value("rgb").run())
    ok(at.radio(key="maps_rgb_diff").set_value(2).run())
    assert any("F3 − F2" in r for r in at.radio(key="maps_rgb_diff").options)


def test_sample_picker_views_and_device(inspect: AppTest, env: dict[str, Path]) -> None:
    at = inspect
    second = sorted(env["clips"].glob("*.mp4"))[1]
    ok(at.button(key=f"pick:{second.name}").click().run())
    assert all(second.name in img.alt for img in strip_images(at, "cam_strip"))
    ok(at.sidebar.radio(key="clip_crops").set_value(3).run())
    ok(at.sidebar.number_input(key="clip_clips").set_value(2).run())
    ok(at.sidebar.radio(key="device").set_value("cpu").run())
    assert any("CPU" in c.value for c in at.sidebar.caption)
    ok(open_tab(at, "Compare with"))
    ok(at.radio(key="compare_neutral").set_value("neighbour").run())
    compare_with = next(w for w in at.selectbox if w.label == "Compare with")
    ok(compare_with.set_value("").run())
    assert not has_key(at, "compare_strip_A")
    ok(open_tab(at, "Where it looked"))
    assert len(strip_images(at, "cam_strip")) == SEGMENTS


def test_default_sample_is_the_bundled_one_when_offered() -> None:
    from app.settings import default_first, default_sample

    bundled = [p.name for p in assets.sample_clips()]
    assert assets.DEFAULT_SAMPLE in bundled and bundled[0] != assets.DEFAULT_SAMPLE
    assert default_sample(bundled) == assets.DEFAULT_SAMPLE
    assert default_sample(["b.mp4", "c.mp4"]) == "b.mp4"  # another folder: its first clip
    ordered = default_first(assets.sample_clips())
    assert ordered[0].name == assets.DEFAULT_SAMPLE and sorted(ordered) == assets.sample_clips()


def test_slow_settings_warning_on_cpu(inspect: AppTest) -> None:
    at = inspect
    ok(at.sidebar.radio(key="device").set_value("cpu").run())
    ok(at.sidebar.radio(key="clip_crops").set_value(3).run())
    assert any("3 crops" in w.value for w in at.warning)


def test_upload_clip(inspect: AppTest, env: dict[str, Path]) -> None:
    at = inspect
    ok(at.sidebar.radio(key="clip_mode").set_value("upload").run())
    assert not has_key(at, "sample_picker")
    data = sorted(env["clips"].glob("*.mp4"))[1].read_bytes()
    ok(at.sidebar.file_uploader(key="clip_upload").upload("my clip.mp4", data, "video/mp4").run())
    assert top1_name(at) in CLASSES
    cam = strip_images(at, "cam_strip")
    assert len(cam) == SEGMENTS and all("my clip.mp4" in img.alt for img in cam)
    # A clip from outside the generated set: the page says, once, what this demo model knows.
    assert sum("knows only the 14 generated motions" in i.value for i in at.info) == 1


def test_upload_an_archive_of_frames(inspect: AppTest) -> None:
    """A .zip of a Something-Something V1 style frame folder is a clip; an unsafe archive is an error."""
    import io
    import zipfile

    folder = sorted(p for p in (assets.ASSETS / "eval" / "synth_val_frames").iterdir() if p.is_dir())[0]
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        for frame in sorted(folder.iterdir()):
            archive.write(frame, f"{folder.name}/{frame.name}")
    at = inspect
    ok(at.sidebar.radio(key="clip_mode").set_value("upload").run())
    upload = at.sidebar.file_uploader(key="clip_upload")
    ok(upload.upload("frames.zip", packed.getvalue(), "application/zip").run())
    cam = strip_images(at, "cam_strip")
    assert len(cam) == SEGMENTS and all(f"frames.zip/{folder.name}" in img.alt for img in cam)
    assert top1_name(at) in CLASSES and not at.error

    unsafe = io.BytesIO()
    with zipfile.ZipFile(unsafe, "w") as archive:
        archive.writestr("../../escape/00001.jpg", b"x")
    at.sidebar.file_uploader(key="clip_upload").clear().upload(
        "evil.zip", unsafe.getvalue(), "application/zip"
    ).run()
    assert not at.exception and len(at.error) == 1
    assert "evil.zip" in at.error[0].value and "outside the archive" in at.error[0].value


def test_samples_the_demo_gets_wrong_are_marked(inspect: AppTest) -> None:
    at = ok(inspect.run())
    marks = [c.value for c in at.get_by_key("sample_picker").get("caption")]
    assert marks == [":material/close: the demo says *Shaking something*"]
    assert not any("knows only the 14 generated motions" in i.value for i in at.info)


def test_bad_upload_is_an_error_not_a_crash(inspect: AppTest) -> None:
    at = inspect
    ok(at.sidebar.radio(key="clip_mode").set_value("upload").run())
    junk = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    at.sidebar.file_uploader(key="clip_upload").upload("broken.mp4", junk, "video/mp4").run()
    assert not at.exception
    assert len(at.error) == 1 and "broken.mp4" in at.error[0].value
    assert "Traceback" not in at.error[0].value
    ok(at.sidebar.radio(key="clip_mode").set_value("sample").run())  # and the app keeps working
    assert len(strip_images(at, "cam_strip")) == SEGMENTS


def test_server_paths_only_when_enabled(env: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    at = ok(fresh().run())
    assert "path" not in at.sidebar.radio(key="clip_mode").options
    monkeypatch.setenv("TDN_LENS_ALLOW_SERVER_PATHS", "1")
    ok(at.run())
    ok(at.sidebar.radio(key="clip_mode").set_value("path").run())
    at.sidebar.text_input(key="clip_path").input(str(env["clips"] / "missing.mp4")).run()
    assert not at.exception and "no file" in at.error[0].value
    clip = sorted(env["clips"].glob("*.mp4"))[0]
    ok(at.sidebar.text_input(key="clip_path").input(str(clip)).run())
    assert all(clip.name in img.alt for img in strip_images(at, "cam_strip"))


def test_wrong_checkpoints_are_errors(inspect: AppTest, env: dict[str, Path]) -> None:
    at = inspect
    at.sidebar.selectbox(key="model_path").set_value(str(env["models"] / "holiday_photo.pth")).run()
    assert not at.exception
    assert "not a checkpoint" in at.error[0].value and "PNG" in at.error[0].value
    official = env["models"] / "official_16f.pth.tar"
    at.sidebar.selectbox(key="model_path").set_value(str(official)).run()
    assert not at.exception
    segments = at.sidebar.radio(key=f"segments:{official.name}")
    assert segments.value == 16  # guessed from the file name, asked because the file cannot tell
    assert "new_fc.weight" in at.error[0].value  # then the file's real problem, in words
    demo = env["models"] / assets.DEMO_CHECKPOINT.name
    ok(at.sidebar.selectbox(key="model_path").set_value(str(demo)).run())
    assert len(strip_images(at, "cam_strip")) == SEGMENTS


def test_no_checkpoint_at_all(env: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TDN_LENS_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(assets, "DEMO_CHECKPOINT", tmp_path / "absent.safetensors")
    at = fresh().run()
    assert not at.exception
    assert "No checkpoint" in at.error[0].value


# ----------------------------------------------------------------------------------------- other pages


def test_model_page(env: dict[str, Path]) -> None:
    at = ok(fresh().run())
    ok(at.switch_page("app/pages/model.py").run())
    assert at.title[0].value == "Model"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Parameters"].endswith(" M")
    assert float(metrics["GMACs per view"]) > 0
    assert metrics["Latency"].endswith(" ms")
    assert at.get_by_key("stage_gmacs") is not None
    software = at.table[1].value
    assert {"python", "torch", "streamlit", "grad-cam", "decord"} <= set(software["component"])
    ok(at.sidebar.radio(key="device").set_value("cpu").run())
    tsn = env["models"] / assets.DEMO_TSN_CHECKPOINT.name
    ok(at.sidebar.selectbox(key="model_path").set_value(str(tsn)).run())
    assert "tsn" in at.table[0].value["value"].tolist()


@pytest.fixture
def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A results folder holding only the official zoo, so the page's content does not follow other runs."""
    import analysis.results

    folder = tmp_path / "results"
    folder.mkdir()
    shutil.copyfile(ROOT / "assets" / "results" / "official_zoo.csv", folder / "official_zoo.csv")
    monkeypatch.setattr(analysis.results, "RESULTS_DIR", folder)
    return folder


def test_ablations_page(env: dict[str, Path], results_dir: Path) -> None:
    at = ok(fresh().run())
    ok(at.switch_page("app/pages/ablations.py").run())
    assert at.title[0].value == "Ablations"
    assert at.get_by_key("ablation_chart") is not None
    stored_rows = len(at.dataframe[0].value)
    assert stored_rows > 0
    ok(at.sidebar.toggle[0].set_value(True).run())
    ok(at.sidebar.selectbox[0].set_value("gmacs_per_view").run())
    ok(at.sidebar.selectbox[2].set_value("backbone").run())
    ok(at.toggle[0].set_value(True).run())
    backbone = at.sidebar.multiselect[1].options[0]
    ok(at.sidebar.multiselect[1].select(backbone).run())
    assert set(at.dataframe[0].value["backbone"]) == {backbone}
    ok(at.sidebar.multiselect[1].unselect(backbone).run())

    zoo = (ROOT / "assets" / "results" / "official_zoo.csv").read_text().splitlines()
    mine = "\n".join([zoo[0], *(line.replace("TDN-", "My TDN-", 1) for line in zoo[1:3])]) + "\n"
    ok(at.sidebar.file_uploader(key="results_upload").upload("mine.csv", mine.encode(), "text/csv").run())
    assert "2 valid rows" in at.success[0].value

    broken = mine.replace(",52.3,", ",523,", 1).replace(",64.0,", ",sixty,", 1)
    at.sidebar.file_uploader(key="results_upload").clear().upload(
        "broken.csv", broken.encode(), "text/csv"
    ).run()
    assert not at.exception
    assert "broken.csv" in at.error[0].value and "row" in at.error[0].value
    assert at.get_by_key("ablation_chart") is not None  # the stored results are still drawn

    at.sidebar.file_uploader(key="results_upload").clear().upload(
        "noise.csv", os.urandom(512), "text/csv"
    ).run()
    assert not at.exception and "noise.csv" in at.error[0].value


def test_ablations_compare_study(env: dict[str, Path], results_dir: Path) -> None:
    import json

    rows = ["model,variant,clip,mask_energy,mask_area_share,motion_energy,prob_label"]
    rows += [
        f"{m},{m},{i},{0.1 * (i + 1) + (m == 'tdn') * 0.2},0.05,0.3,0.5"
        for i in range(4)
        for m in ("tdn", "tsn")
    ]
    (results_dir / "compare_study.csv").write_text("\n".join(rows) + "\n")
    stats = {"mean": 0.3, "median": 0.3}
    summary = {
        "date": "2026-11-25",
        "commit": "abc",
        "dataset": {"num": 4, "seed": 4242},
        "models": {
            m: {
                "variant": m,
                "clips": 4,
                "accuracy": 0.5,
                "mask_target_met": 0.25,
                "metrics": {"mask_energy": stats},
            }
            for m in ("tdn", "tsn")
        },
        "paired": {"mask_energy: tdn - tsn": {"mean": 0.2, "median": 0.2, "share_a_higher": 1.0}},
    }
    (results_dir / "compare_study.json").write_text(json.dumps(summary))
    at = ok(fresh().run())
    ok(at.switch_page("app/pages/ablations.py").run())
    assert at.get_by_key("ablation_chart") is not None  # the study's CSV is not read as a results file
    assert at.get_by_key("study_boxes") is not None
    assert set(at.table[0].value["model"]) == {"tdn", "tsn"}
    ok(at.selectbox(key="study_metric").set_value("motion_energy").run())


def test_an_internal_value_error_is_reported_as_unexpected(caplog: pytest.LogCaptureFixture) -> None:
    from app.widgets import describe_failure
    from tdn.network.checkpoint import DeviceError

    with caplog.at_level("ERROR", logger="tdn_lens.app"):
        message = describe_failure(ValueError("shapes (3,) and (4,) not aligned"))
    assert message.startswith("an unexpected ValueError") and "server log" in message
    assert caplog.records and caplog.records[0].exc_info  # logged with its traceback
    caplog.clear()
    assert describe_failure(DeviceError("cuda:3 does not exist")) == "cuda:3 does not exist"
    assert not caplog.records  # a user's error is shown as it is, not logged as a bug
