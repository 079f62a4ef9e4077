"""The command line never shows a traceback: bad arguments exit 2 with argparse's message or one
``error:`` line, failures while working exit 1 with one line; warnings reach stderr and the JSON; folder
runs give every video its own output; evaluate preprocesses as predict does (the checkpoint's spec).

Runs the real CLI (``python -m tdn``) in a subprocess on small generated videos and the demo TDN."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import torch

from tests.videogen import frame_pattern, write_video

ROOT = Path(__file__).resolve().parents[1]
DEMO_WARNING = "trained with 8 segments, run with 4"


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("TDN_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "tdn", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def _error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.splitlines() if "error:" in line]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli_args")
    frames = frame_pattern(20, 48, 64)
    same = root / "same_stem"
    same.mkdir()
    for suffix in (".mkv", ".mp4", ".ts"):  # three videos named clip: three output folders
        write_video(same / f"clip{suffix}", frames)
    long = write_video(root / "long.mkv", frame_pattern(250, 48, 64))
    cut = root / "cut.mkv"
    cut.write_bytes(long.read_bytes()[: long.stat().st_size // 3])  # the header promises 10 s
    broken = root / "broken.mp4"
    broken.write_bytes(b"this is not a video at all" * 10)
    plain = root / "plain.txt"
    plain.write_text("not a folder\n")
    return {
        "root": root,
        "same": same,
        "video": same / "clip.mkv",
        "cut": cut,
        "broken": broken,
        "file": plain,
    }


def _labelled(folder: Path, rows: list[tuple[str, int]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file,label_index,label_name", *(f"{name},{label},class {label}" for name, label in rows)]
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


# ------------------------------------------------------------------------------ bad arguments: exit 2

BAD_VALUES = [
    ("predict", "{video}", "--topk", "-1"),
    ("predict", "{video}", "--topk", "0"),
    ("predict", "{video}", "--clips", "0"),
    ("predict", "{video}", "--segments", "0"),
    ("predict", "{video}", "--segments", "-3"),
    ("predict", "{video}", "--decode-timeout", "0"),
    ("profile", "--segments", "0"),
    ("explain", "{video}", "--opacity", "2", "--out", "{root}/never_made"),
    ("explain", "{video}", "--out", "{file}"),
    ("evaluate", "--data", "{same}"),  # a folder without labels.csv
    ("evaluate", "--synthetic", "0"),
    ("card", "--out", "{file}"),
]


@pytest.mark.parametrize("argv", BAD_VALUES, ids=lambda a: " ".join(a[:1] + a[2:] if "{" in a[1] else a))
def test_bad_values_are_refused_at_parse_time(media, argv):
    proc = _run(*(a.format(**media) for a in argv))
    assert proc.returncode == 2, proc.stderr
    assert "usage:" in proc.stderr and _error_lines(proc), proc.stderr
    assert not (media["root"] / "never_made").exists()  # nothing done, no empty folder left


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("predict", "{video}", "--checkpoint", "{root}/none.pth"), "{root}/none.pth: no checkpoint file"),
        (("predict", "{root}/none.mp4"), "no such file or folder"),
        (("compare", "{same}", "--out", "{root}/cmp"), "compare takes one video file"),
        (("explain", "{video}", "--target", "99", "--out", "{root}/never_made"), "--target 99"),
    ],
)
def test_unusable_inputs_exit_2_with_one_line_naming_the_culprit(media, argv, expected):
    proc = _run(*(a.format(**media) for a in argv))
    assert proc.returncode == 2, proc.stderr
    lines = _error_lines(proc)
    assert len(lines) == 1 and expected.format(**media) in lines[0], proc.stderr
    assert str(media["video"]) not in lines[0]  # a checkpoint error names the checkpoint, not the video


def test_evaluate_refuses_missing_files_and_unknown_labels(media):
    missing = _labelled(media["root"] / "missing", [(str(media["video"]), 0), ("gone.mp4", 1)])
    proc = _run("evaluate", "--data", missing)
    assert proc.returncode == 2 and "missing: " in proc.stderr and "gone.mp4" in proc.stderr, proc.stderr
    assert "video format" not in proc.stderr and len(_error_lines(proc)) == 1
    beyond = _labelled(media["root"] / "beyond", [(str(media["video"]), 99)])
    proc = _run("evaluate", "--data", beyond)
    assert proc.returncode == 2 and "label_index 99" in proc.stderr and "0..13" in proc.stderr, proc.stderr
    assert len(_error_lines(proc)) == 1


# --------------------------------------------------------------------- failures while working: exit 1


def test_a_failure_while_working_is_one_line_exit_1(media):
    proc = _run("predict", media["broken"])
    assert proc.returncode == 1 and len(_error_lines(proc)) == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == _error_lines(proc)
    slow = _run("predict", media["video"], "--decode-timeout", "0.001")  # the flag reaches load_clip
    assert slow.returncode == 1 and "took longer" in slow.stderr and len(_error_lines(slow)) == 1


# ---------------------------------------------------------------------------------------- warnings


def test_warnings_reach_stderr_and_json(media):
    proc = _run("predict", media["cut"], "--segments", "4", "--json")
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert any(DEMO_WARNING in w for w in row["warnings"]) and any("truncated" in w for w in row["warnings"])
    assert f"warning: {media['cut']}: The file header promises" in proc.stderr
    assert "warning: " in proc.stderr and DEMO_WARNING in proc.stderr

    data = _labelled(media["root"] / "eval", [(str(media["cut"]), 0), (str(media["video"]), 1)])
    proc = _run("evaluate", "--data", data, "--segments", "4", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["num_videos"] == 2
    assert any(DEMO_WARNING in w for w in result["warnings"])
    assert any(w.startswith(f"{media['cut']}: ") and "truncated" in w for w in result["warnings"])
    assert f"warning: {media['cut']}:" in proc.stderr


def test_compare_writes_its_warnings(media, tmp_path):
    proc = _run("compare", media["cut"], "--segments", "4", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "compare.json").read_text())
    assert sum(DEMO_WARNING in w for w in record["warnings"]) == 2  # both models
    assert any("truncated" in w for w in record["warnings"]) and "truncated" in proc.stderr


# ------------------------------------------------------------------------------------- folder runs


def test_explain_folder_gives_colliding_stems_their_own_folders(media, tmp_path):
    proc = _run("explain", media["same"], "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["clip_mkv", "clip_mp4", "clip_ts"]
    listed = [Path(row["file"]).name for row in json.loads((tmp_path / "index.json").read_text())]
    assert sorted(listed) == ["clip.mkv", "clip.mp4", "clip.ts"]
    for sub in (p for p in tmp_path.iterdir() if p.is_dir()):
        record = json.loads((sub / "explanation.json").read_text())
        assert record["file"].endswith(sub.name.replace("_", ".")) and record["warnings"] == []


def test_output_dir_refuses_files_and_paths_under_them(media):
    import argparse

    from tdn.cli.common import output_dir

    for bad in (media["file"], media["file"] / "below_a_file"):
        with pytest.raises(argparse.ArgumentTypeError, match="is a file"):
            output_dir(str(bad))
    fresh = media["root"] / "new" / "deeper"
    assert output_dir(str(fresh)) == fresh and not fresh.exists()  # checked, not created


def test_output_names():
    from tdn.cli.common import output_names

    names = output_names([Path(p) for p in ("a/clip.mkv", "a/clip.MP4", "a/clip_mp4.avi", "a/other.mp4")])
    assert names == ["clip_mkv", "clip_mp4", "clip_mp4-2", "other"]
    assert len({n.lower() for n in output_names([Path("Clip.mp4"), Path("clip.mkv")])}) == 2


# ------------------------------------------------------------------------------------------ progress


def _stderr_on_a_terminal(*args: str) -> tuple[int, str]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # tqdm draws 0 columns on 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tdn", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=slave,
        cwd=ROOT,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=300), b"".join(chunks).decode(errors="replace")


def test_many_views_show_progress_unless_quiet(media):
    code, err = _stderr_on_a_terminal("predict", media["video"], "--crops", "3", "--clips", "2")
    assert code == 0 and "clip.mkv: decode" in err and "clip.mkv: predict" in err and "/6 [" in err, err
    code, err = _stderr_on_a_terminal("predict", media["video"], "--crops", "3", "--clips", "2", "--quiet")
    assert code == 0 and "view" not in err, err


# ------------------------------------------------------------------------------- evaluate = predict


def test_evaluation_input_is_load_clips_for_an_official_spec(tmp_path):
    from tdn.contract import ClipSpec
    from tdn.training.data import VideoClips, read_labels_csv
    from tdn.video.clip import load_clip

    path = write_video(tmp_path / "wide.mkv", frame_pattern(24, 240, 320))
    records, _ = read_labels_csv(_labelled(tmp_path, [(path.name, 0)]))
    spec = ClipSpec(8, 224, 256)  # an official checkpoint: short side 256, centre 224
    inputs, label = VideoClips.for_evaluation(records, spec)[0]
    reference = load_clip(path, spec=spec).inputs[0][0]
    assert label == 0 and inputs.shape == (120, 224, 224) and torch.equal(inputs, reference)
    assert not torch.equal(inputs, load_clip(path, spec=ClipSpec(8, 224, 224)).inputs[0][0])  # not 224


def test_evaluate_command_uses_the_checkpoints_spec(tmp_path, monkeypatch, capsys):
    import tdn.training.evaluation as evaluation
    from tdn.__main__ import main
    from tdn.network.checkpoint import save_checkpoint
    from tdn.network.model import build_model
    from tdn.training.evaluation import EvalResult
    from tdn.training.synth import CLASSES
    from tdn.video.clip import load_clip

    path = write_video(tmp_path / "wide.mkv", frame_pattern(24, 240, 320))
    model = build_model("resnet18", 8, len(CLASSES), width=0.25).eval()
    ckpt = save_checkpoint(
        model, tmp_path / "official_like.safetensors", CLASSES, input_size=224, scale_size=256
    )
    seen = {}

    def spy(model, dataset, **_):
        seen["input"] = dataset[0][0]
        return EvalResult(1.0, 1.0, [[0] * len(CLASSES) for _ in CLASSES], 1)

    monkeypatch.setattr(evaluation, "evaluate", spy)
    data = _labelled(tmp_path / "data", [(str(path), 0)])
    assert main(["evaluate", "--data", str(data), "--checkpoint", str(ckpt), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []
    assert torch.equal(seen["input"], load_clip(path, num_segments=8, size=224, scale_size=256).inputs[0][0])


# ------------------------------------------------------------------------------ help and documentation


def test_decode_timeout_default_is_the_librarys():
    from tdn.cli.common import DEFAULT_DECODE_TIMEOUT_S
    from tdn.video.clip import DEFAULT_TIMEOUT_S

    assert DEFAULT_DECODE_TIMEOUT_S == DEFAULT_TIMEOUT_S
    proc = _run("predict", "--help")
    assert proc.returncode == 0 and "--decode-timeout SECONDS" in proc.stdout and "60 s" in proc.stdout


def test_card_defaults_are_what_the_shipped_card_used():
    import argparse

    from tdn.assets import MODELS
    from tdn.cli import card

    parser = argparse.ArgumentParser()
    card.add_arguments(parser)
    args = parser.parse_args([])
    shipped = json.loads((MODELS / "model_card.json").read_text())
    assert {c["eval"]["num_videos"] for c in shipped} == {args.eval_num}
    assert {c["eval"]["seed"] for c in shipped} == {args.eval_seed}
    assert {c["faithfulness"]["res5"]["clips"] for c in shipped} == {args.faith_num}
    assert f"on {args.eval_num} generated clips" in (MODELS / "MODEL_CARD.md").read_text()


def test_timings_split_set_up_from_work_and_predict_parses_without_torch(media):
    import re

    proc = _run("predict", str(media["video"]), "--quiet", "--timings")
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("timings: "))
    found = re.fullmatch(r"timings: set-up ([0-9.]+) s \((.*)\) · work ([0-9.]+) s · total ([0-9.]+) s", line)
    assert found, line
    numbers = {"set-up": float(found[1]), "work": float(found[3]), "total": float(found[4])}
    assert numbers["work"] > 0
    assert numbers["set-up"] + numbers["work"] == pytest.approx(numbers["total"], abs=0.02)
    parts = [float(v) for v in re.findall(r"([0-9.]+) s", found[2])]
    assert sum(parts) == pytest.approx(numbers["set-up"], abs=0.05), line
    # parsing a command's arguments imports neither torch nor pytorch-grad-cam (only what the command uses)
    probe = (
        "import sys, argparse; from tdn.cli import predict; p = argparse.ArgumentParser(); predict.add_arguments(p); "
        "p.parse_args(['x.mp4']); print(sorted(m for m in ('torch', 'pytorch_grad_cam', 'streamlit', 'plotly') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
