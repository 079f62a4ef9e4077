"""Hardening: a bad-input corpus through the library, the CLI and the app; hostile checkpoints; many users.

* Every file of ``tests/badinputs.py`` goes through ``load_clip`` (isolated, as uploads are), the
  ``predict`` command and the app's uploader: each gives its expected ``ClipError`` kind with a readable
  message, or a prediction for the valid-but-odd ones; nothing crashes, nothing is left in the temp folder.
* Checkpoints that are not what they claim (code payloads, the wrong network, the wrong class count,
  truncated, other file types) are refused with a ``CheckpointError`` (tests/test_checkpoint.py has the
  basic cases; these add to them).
* Eight threads decoding, classifying and explaining different real clips on one shared model give
  bit-identical results to one thread doing the same in turn.
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from tdn import assets
from tdn.inference import predict
from tdn.interpret.gradcam import METHODS, explain
from tdn.interpret.tdmaps import difference_maps
from tdn.network.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tdn.network.model import build_model
from tdn.training.synth import CLASSES, write_dataset
from tdn.video import ClipError, load_clip
from tests.badinputs import Case, build_corpus

ROOT = Path(__file__).resolve().parents[1]
SEGMENTS, SIZE = 4, 64
APP_SUFFIXES = {".mp4", ".webm", ".mkv", ".mov", ".gif"}  # what the app's uploader accepts


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Case]]:
    folder = tmp_path_factory.mktemp("corpus")
    return folder, build_corpus(folder)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    model = build_model("resnet18", SEGMENTS, len(CLASSES), width=0.25).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(model, path, CLASSES, input_size=SIZE, scale_size=SIZE)
    return model, path


def _readable(message: str, name: str) -> None:
    assert message and name in message, message
    assert "Traceback" not in message and "tdn-clip-" not in message and len(message) < 300, message


# ------------------------------------------------------------------------------------------ the corpus


def test_corpus_through_the_library(
    corpus: tuple[Path, list[Case]], tiny: tuple[torch.nn.Module, Path], tmp_path: Path, monkeypatch
) -> None:
    folder, cases = corpus
    model, _ = tiny
    assert len(cases) >= 20
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(private_tmp))  # every temporary file load_clip makes
    outcomes = {}
    for case in cases:
        path = folder / case.name
        source = path.read_bytes() if case.regular else path  # uploads arrive as bytes
        try:
            clip = load_clip(
                source, SEGMENTS, size=SIZE, scale_size=SIZE, isolate=True, source_name=case.name
            )
        except ClipError as error:
            outcomes[case.name] = error.kind
            _readable(error.message, case.name)
            continue
        outcomes[case.name] = "ok"
        probs = predict(model, clip, CLASSES).probs
        assert torch.isfinite(probs).all() and abs(float(probs.sum()) - 1) < 1e-5
    assert outcomes == {case.name: case.expected for case in cases}
    assert os.listdir(private_tmp) == []


def test_type_is_read_from_content_not_the_name(corpus: tuple[Path, list[Case]]) -> None:
    folder, _ = corpus
    assert load_clip((folder / "really_a_video.txt").read_bytes(), source_name="clip.txt").num_frames == 50
    with pytest.raises(ClipError, match="PNG image") as caught:
        load_clip((folder / "image.mp4").read_bytes(), source_name="image.mp4")
    assert caught.value.kind == "not_video"


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tdn", "predict", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_corpus_through_the_cli(corpus: tuple[Path, list[Case]], tiny: tuple[torch.nn.Module, Path]) -> None:
    folder, cases = corpus
    checkpoint = str(tiny[1])
    singles = {  # a bad file, a valid one with an odd name, and the two that are not regular files
        "truncated_30.mp4": 1,
        "really_a_video.txt": 0,
        "loop.mp4": 2,
        "folder.mp4": 2,
    }
    runs = {name: _cli(str(folder / name), "--json", "--checkpoint", checkpoint) for name in singles}
    whole = _cli(str(folder), "--json", "--checkpoint", checkpoint)  # the folder run goes past bad files
    out, err = whole.communicate(timeout=300)
    assert whole.returncode == 1, err
    assert "Traceback" not in err
    rows = {Path(row["file"]).name: row for row in map(json.loads, out.splitlines())}
    listed = {c.name: c for c in cases if c.regular and Path(c.name).suffix != ".txt"}
    assert set(rows) == set(listed)
    for name, case in listed.items():
        if case.ok:
            assert "topk" in rows[name], rows[name]
        else:
            assert rows[name]["kind"] == case.expected, rows[name]
            _readable(rows[name]["error"], name)
    for name, proc in runs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == singles[name], (name, err)
        assert "Traceback" not in err


# --------------------------------------------------------------------------------------------- the app


@pytest.fixture(scope="module")
def app_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("app")
    models, clips = root / "models", root / "clips"
    torch.manual_seed(0)
    for variant, name in (("tdn", assets.DEMO_CHECKPOINT.name), ("tsn", assets.DEMO_TSN_CHECKPOINT.name)):
        model = build_model("resnet18", 8, len(CLASSES), variant, width=0.25)
        save_checkpoint(model, models / name, CLASSES, input_size=112, scale_size=112, name=f"tiny {variant}")
    write_dataset(clips, 1, seed=7, progress=False)
    return {"models": models, "clips": clips}


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "streamlit_app.py").is_file(), reason="the app is not there")
def test_corpus_through_the_app_uploader(
    corpus: tuple[Path, list[Case]], app_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    folder, cases = corpus
    monkeypatch.setenv("TDN_LENS_MODELS_DIR", str(app_env["models"]))
    monkeypatch.setenv("TDN_LENS_CLIPS_DIR", str(app_env["clips"]))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    assert not at.exception
    at.sidebar.radio(key="clip_mode").set_value("upload").run()
    uploader = at.sidebar.file_uploader(key="clip_upload")
    for case in cases:
        if not case.regular or Path(case.name).suffix not in APP_SUFFIXES:
            continue
        uploader.clear().upload(case.name, (folder / case.name).read_bytes(), "video/mp4").run()
        assert not at.exception, (case.name, [e.value for e in at.exception])
        headings = [m.value for m in at.markdown if m.value.startswith("#### ")]
        if case.ok:
            assert not at.error and headings, (case.name, [e.value for e in at.error])
        else:
            assert len(at.error) == 1 and not headings, case.name
            _readable(at.error[0].value, case.name)
        uploader = at.sidebar.file_uploader(key="clip_upload")
    good = next(app_env["clips"].glob("*.mp4"))
    uploader.clear().upload("good.mp4", good.read_bytes(), "video/mp4").run()
    assert not at.exception and not at.error
    assert [m.value for m in at.markdown if m.value.startswith("#### ")]


# ----------------------------------------------------------------------------------------- checkpoints


class _Payload:
    """Unpickling this runs ``exec``: it would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def test_code_payloads_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    weights = {"new_fc.weight": torch.zeros(2, 2)}
    torch.save({"state_dict": weights, "extra": _Payload(marker)}, tmp_path / "zip.pth")
    torch.save(
        {"state_dict": weights, "extra": _Payload(marker)},
        tmp_path / "legacy.pth",
        _use_new_zipfile_serialization=False,
    )
    (tmp_path / "plain.pth").write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    for name in ("zip.pth", "legacy.pth", "plain.pth"):
        with pytest.raises(CheckpointError) as caught:
            load_checkpoint(tmp_path / name, num_segments=8, device="cpu")
        assert caught.value.kind in ("unsafe", "corrupt"), (name, caught.value)
        assert not marker.exists(), f"{name}: the payload ran"


def test_wrong_network_class_count_truncation_and_other_files(
    tmp_path: Path, corpus: tuple[Path, list[Case]]
) -> None:
    import torchvision

    folder, _ = corpus
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet18_imagenet.pth")
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(tmp_path / "resnet18_imagenet.pth", num_segments=8, device="cpu")
    assert caught.value.kind in ("keys", "unknown_arch", "not_checkpoint"), caught.value

    torch.manual_seed(0)
    path = save_checkpoint(
        build_model("resnet18", 4, 6, width=0.25), tmp_path / "six.safetensors", list("abcdef")
    )
    with pytest.raises(CheckpointError, match="5 class names") as caught:
        load_checkpoint(path, class_names=list("abcde"), device="cpu")
    assert caught.value.kind == "labels"

    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="damaged") as caught:
        load_checkpoint(cut, device="cpu")
    assert caught.value.kind == "corrupt"

    for source, what in [
        ("photo.mov", "JPEG image"),
        ("really_a_video.txt", "MP4"),
        ("page.webm", "text file"),
    ]:
        renamed = tmp_path / "model.pth"
        renamed.write_bytes((folder / source).read_bytes())
        with pytest.raises(CheckpointError, match=what) as caught:
            load_checkpoint(renamed, num_segments=8, device="cpu")
        assert caught.value.kind == "not_checkpoint"


# ----------------------------------------------------------------------------------------- concurrency


def test_eight_users_on_one_model_match_one_user(tmp_path: Path, tiny: tuple[torch.nn.Module, Path]) -> None:
    model, _ = tiny
    write_dataset(tmp_path, 8, seed=23, size=SIZE, frames=20, progress=False)
    paths = sorted(tmp_path.glob("*.mp4"))
    methods = list(METHODS)
    # OpenMP's thread count is per thread (a new thread starts at the default), and a float reduction's
    # last bits follow it: every session runs with the main thread's count, so only the concurrency differs.
    threads = torch.get_num_threads()

    def session(i: int) -> dict[str, np.ndarray]:
        torch.set_num_threads(threads)
        clip = load_clip(paths[i], SEGMENTS, size=SIZE, scale_size=SIZE)
        prediction = predict(model, clip, CLASSES)
        cam = explain(model, clip, method=methods[i % len(methods)], layer=["res5", "res4", "stem"][i % 3])
        maps, logits = difference_maps(model, clip.inputs[0])
        return {
            "pixels": clip.model_frames,
            "logits": prediction.view_logits.numpy(),
            "cam": cam.cam_raw,
            "s0": maps.stdm_s0,
            "ltdm": np.concatenate([m.modulation.ravel() for m in maps.ltdm]),
            "tdm_logits": logits.numpy(),
        }

    alone = [session(i) for i in range(len(paths))]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(session, range(len(paths))))
    for i, (a, b) in enumerate(zip(alone, together, strict=True)):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"clip {i}: {key}")
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
