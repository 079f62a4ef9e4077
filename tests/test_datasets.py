"""Datasets: frame folders as clips, safe archives, the published list formats, protocols, resumable and sharded
evaluation, and the results row. Every input is written by the tests; the model is a tiny untrained TDN."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tdn.contract import ClipSpec
from tdn.datasets import (
    DatasetError,
    EvaluationMismatch,
    detect_format,
    evaluate_dataset,
    fuse,
    get_protocol,
    load_entry,
    load_evaluation,
    read_dataset,
    read_jsonl,
)
from tdn.inference import forward_views
from tdn.network.checkpoint import load_checkpoint, save_checkpoint
from tdn.network.model import build_model
from tdn.video import ClipError, load_clip
from tdn.video.archive import frame_folders, unpack_archive
from tdn.video.frames import find_frames, is_frame_folder, load_frame_folder
from tests.videogen import frame_pattern, write_video

CLASSES = ["Pushing something", "Pulling something", "air drumming", "Holding something still"]
SPEC = ClipSpec(num_segments=4, input_size=56, scale_size=64)


def write_folder(folder: Path, frames: np.ndarray, template: str = "{:05d}.jpg", quality: int = 90) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames, 1):
        Image.fromarray(frame).save(folder / template.format(i), quality=quality)
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, object, Path]:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    model = build_model("resnet18", SPEC.num_segments, len(CLASSES), "tdn", width=0.25)
    save_checkpoint(model, path, CLASSES, input_size=SPEC.input_size, scale_size=SPEC.scale_size, name="tiny")
    model, info = load_checkpoint(path, device="cpu")
    return model, info, path


# ------------------------------------------------------------------------------------------- frame folders


def test_frame_folder_equals_the_same_frames_as_a_lossless_video(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "clip", frame_pattern(37, 72, 96))
    decoded = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in find_frames(folder).files])
    video = write_video(tmp_path / "clip.mkv", decoded)  # ffv1/bgr0: decodes to exactly these pixels
    for crops, clips in ((1, 1), (3, 2)):
        a = load_frame_folder(folder, SPEC, crops=crops, clips=clips)
        b = load_clip(video, spec=SPEC, crops=crops, clips=clips, exact=True)
        assert a.num_frames == b.num_frames == 37
        np.testing.assert_array_equal(a.frame_indices, b.frame_indices)
        np.testing.assert_array_equal(a.model_frames, b.model_frames)
        np.testing.assert_array_equal(a.display_frames, b.display_frames)
        assert a.crop_boxes == b.crop_boxes and a.scaled_size == b.scaled_size
        for x, y in zip(a.inputs, b.inputs, strict=True):
            assert torch.equal(x, y)
    assert a.container == "frame folder" and a.codec == "jpeg" and a.fps == 0.0 and a.num_views == 6


def test_index_i_is_file_i_plus_one_and_the_list_count_is_sampled_over(tmp_path: Path) -> None:
    frames = np.stack([np.full((40, 40, 3), 5 * i, np.uint8) for i in range(20)])
    folder = write_folder(tmp_path / "f", frames, "{:06d}.jpg", quality=100)
    spec = ClipSpec(2, 32, 40)
    clip = load_frame_folder(folder, spec)
    assert clip.frame_indices.tolist() == [[[4, 5, 6, 7, 8], [12, 13, 14, 15, 16]]]  # tick 8: starts 4, 12
    assert abs(int(clip.model_frames[0, 0, 0, 0, 0, 0]) - 20) <= 1  # index 4 is file 000005.jpg, grey 5 * 4
    short = load_frame_folder(folder, spec, num_frames=12)
    assert short.num_frames == 12 and short.frame_indices.max() <= 11 and short.warnings
    with pytest.raises(ClipError, match="000021.jpg") as e:
        load_frame_folder(folder, spec, num_frames=21)
    assert e.value.kind == "corrupt"


@pytest.mark.parametrize("template", ["img_{:05d}.jpg", "frame_{:03d}.png", "%04d.jpg"])
def test_templates(tmp_path: Path, template: str) -> None:
    written = template if "{" in template else "{:04d}.jpg"
    folder = write_folder(tmp_path / "t", frame_pattern(12, 48, 48), written)
    given = None if template.startswith("img_") else template
    assert is_frame_folder(folder, given)
    assert load_frame_folder(folder, ClipSpec(2, 32, 40), template=given).num_frames == 12


def test_frame_folder_errors_name_the_file(tmp_path: Path) -> None:
    spec = ClipSpec(2, 32, 40)
    frames = frame_pattern(12, 48, 48)
    gap = write_folder(tmp_path / "gap", frames)
    (gap / "00007.jpg").unlink()
    with pytest.raises(ClipError, match="00007.jpg") as e:
        load_frame_folder(gap, spec)
    assert e.value.kind == "corrupt"
    zero = tmp_path / "zero"
    zero.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(zero / f"{i:05d}.jpg")
    with pytest.raises(ClipError, match="from 0"):
        load_frame_folder(zero, spec)
    broken = write_folder(tmp_path / "broken", frames)
    (broken / "00006.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(ClipError, match="00006.jpg") as e:
        load_frame_folder(broken, spec)
    assert e.value.kind == "corrupt"
    sizes = write_folder(tmp_path / "sizes", frames)
    Image.fromarray(frame_pattern(1, 40, 48)[0]).save(sizes / "00006.jpg")
    with pytest.raises(ClipError, match="00006.jpg.*48x40"):
        load_frame_folder(sizes, spec)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClipError) as e:
        load_frame_folder(tmp_path / "empty", spec)
    assert e.value.kind == "no_frames" and not is_frame_folder(tmp_path / "empty")
    with pytest.raises(ClipError) as e:
        load_frame_folder(tmp_path / "nowhere", spec)
    assert e.value.kind == "not_found"


# ------------------------------------------------------------------------------------------------ archives


def _zip(entries: dict[str, bytes], links: dict[str, str] | None = None) -> io.BytesIO:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        for name, payload in entries.items():
            archive.writestr(name, payload)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16  # a symbolic link
            archive.writestr(info, target)
    data.seek(0)
    return data


def test_archives_unpack_frame_folders_and_refuse_what_is_unsafe(tmp_path: Path) -> None:
    jpeg = io.BytesIO()
    Image.fromarray(frame_pattern(1, 32, 32)[0]).save(jpeg, "JPEG")
    frames = {f"clips/a/{i:05d}.jpg": jpeg.getvalue() for i in range(1, 9)}
    out = unpack_archive(_zip(frames), tmp_path / "z")
    assert frame_folders(out) == [out / "clips" / "a"]

    tar_path = tmp_path / "frames.tar.gz"
    with tarfile.open(tar_path, "w:gz") as archive:
        for name, payload in frames.items():
            info = tarfile.TarInfo(name.replace("clips/a", "b"))
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    assert frame_folders(unpack_archive(tar_path, tmp_path / "t")) == [tmp_path / "t" / "b"]

    def refused(source: object, match: str, kind: str) -> None:
        dest = tmp_path / f"bad{len(list(tmp_path.iterdir()))}"
        with pytest.raises(ClipError, match=match) as e:
            unpack_archive(source, dest)
        assert e.value.kind == kind and not dest.exists()

    refused(_zip({"../evil.jpg": b"x"}), r"outside", "corrupt")
    refused(_zip({"/etc/evil.jpg": b"x"}), "absolute", "corrupt")
    refused(_zip({"a/00001.jpg": b"x"}, links={"a/00002.jpg": "/etc/passwd"}), "link", "corrupt")
    link_tar = tmp_path / "link.tar"
    with tarfile.open(link_tar, "w") as archive:
        info = tarfile.TarInfo("a/00001.jpg")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(info)
    refused(link_tar, "link", "corrupt")
    with pytest.raises(ClipError, match="members") as e:
        unpack_archive(_zip({f"{i}.jpg": b"x" for i in range(11)}), tmp_path / "many", max_files=10)
    assert e.value.kind == "too_large"
    with pytest.raises(ClipError, match="bytes"):
        unpack_archive(_zip({"big.jpg": bytes(5000)}), tmp_path / "big", max_bytes=4096)
    refused(io.BytesIO(b"just some text, not an archive" * 20), "not a zip or tar", "not_video")


# --------------------------------------------------------------------------------------------------- lists


def test_tdn_list_with_frame_folders(tmp_path: Path) -> None:
    for name in ("v 1", "v2"):
        write_folder(tmp_path / name, frame_pattern(10, 40, 40))
    (tmp_path / "val.txt").write_text("v 1 10 0\nv2 10 2\n\nv3 10 1\nv2b 10 9\n")
    ds = read_dataset(tmp_path / "val.txt", class_names=CLASSES)
    assert ds.format == "tdn-list" and [e.key for e in ds.entries] == ["v 1", "v2"]
    assert [e.label_name for e in ds.entries] == ["Pushing something", "air drumming"]
    assert ds.entries[0].num_frames == 10
    assert [(s.key, s.reason, s.line) for s in ds.missing] == [("v3", "missing", 4)]
    assert [(s.key, s.reason) for s in ds.unknown] == [("v2b", "unknown_class")]
    (tmp_path / "bad.txt").write_text("v2 10 1\nv2 ten 1\nonlyone\nv2 10 1\n")
    with pytest.raises(DatasetError, match=r"bad.txt has 3 malformed.*line 2.*line 3.*line 4: repeats"):
        read_dataset(tmp_path / "bad.txt", class_names=CLASSES)


def test_ssv1_csv_and_labels_csv(tmp_path: Path) -> None:
    write_folder(tmp_path / "frames" / "101", frame_pattern(10, 40, 40))
    (tmp_path / "val.csv").write_text("101;Pulling something\n102;Pushing something\n103;Flying a kite\n")
    (tmp_path / "labels.csv").write_text("\n".join(reversed(CLASSES)) + "\n")
    ds = read_dataset(tmp_path / "val.csv", tmp_path / "frames", CLASSES, labels_file=tmp_path / "labels.csv")
    assert ds.format == "ssv1-csv" and ds.dataset == "Something-Something V1"
    assert [(e.key, e.label) for e in ds.entries] == [("101", 1)]
    assert [s.key for s in ds.missing] == ["102"] and [s.key for s in ds.unknown] == ["103"]
    assert any("orders the classes differently" in n for n in ds.notes)  # sorted(CSV) is not CLASSES' order
    (tmp_path / "bad.csv").write_text("101;Pulling something\n102\n")
    with pytest.raises(DatasetError, match="line 2"):
        read_dataset(tmp_path / "bad.csv", tmp_path, CLASSES)


def test_ssv2_json_templates_and_labels_json(tmp_path: Path) -> None:
    write_video(tmp_path / "7.webm", frame_pattern(12, 48, 48))
    write_folder(tmp_path / "8", frame_pattern(12, 48, 48), "{:06d}.jpg")
    items = [
        {
            "id": "7",
            "label": "pushing a cup",
            "template": "[Something] being pushed",
            "placeholders": ["cup"],
        },
        {"id": "8", "label": "holding a pen", "template": "Holding [something] still"},
        {"id": 9, "label": "x", "template": "Holding [something] still"},
        {"id": "10"},
    ]
    (tmp_path / "validation.json").write_text(json.dumps(items, indent=1))
    (tmp_path / "labels.json").write_text(json.dumps({n: str(i) for i, n in enumerate(CLASSES)}))
    names = [*CLASSES[:3], "Holding something still", "Something being pushed"]
    ds = read_dataset(tmp_path / "validation.json", class_names=names, labels_file=tmp_path / "labels.json")
    assert ds.format == "ssv2-json"
    assert [(e.key, e.path.name, e.label_name) for e in ds.entries] == [
        ("7", "7.webm", "Something being pushed"),
        ("8", "8", "Holding something still"),
    ]
    assert [s.key for s in ds.missing] == ["9"] and [(s.key, s.detail) for s in ds.unknown] == [
        ("10", "no label given")
    ]
    lines = '[\n {"id": "7", "template": "Holding [something] still"},\n {"template": "x"}\n]'
    (tmp_path / "bad.json").write_text(lines)
    with pytest.raises(DatasetError, match="line 3: an item without an 'id'"):
        read_dataset(tmp_path / "bad.json", class_names=names)
    (tmp_path / "broken.json").write_text('[\n {"id": "7",\n "template": }\n]')
    with pytest.raises(DatasetError, match="line 3"):
        read_dataset(tmp_path / "broken.json", class_names=names)
    with pytest.raises(DatasetError, match="labels JSON"):
        read_dataset(tmp_path / "labels.json", class_names=names)


def test_kinetics_csv_finds_videos_in_class_folders(tmp_path: Path) -> None:
    (tmp_path / "air_drumming").mkdir()
    write_video(tmp_path / "air_drumming" / "abc_000010_000020.mp4", frame_pattern(12, 48, 48))
    rows = [
        "label,youtube_id,time_start,time_end,split,is_cc",
        "air_drumming,abc,10,20,val,0",
        '"air drumming",zzz,0,10,val,0',
        "juggling fire,qqq,0,10,val,0",
        "air drumming,abc,ten,20,val,0",
    ]
    (tmp_path / "validate.csv").write_text("\n".join(rows[:4]) + "\n")
    ds = read_dataset(tmp_path / "validate.csv", class_names=CLASSES)
    assert ds.format == "k400-csv" and ds.dataset == "Kinetics-400"
    assert [(e.key, e.label, e.path.parent.name) for e in ds.entries] == [
        ("abc_000010_000020", 2, "air_drumming")
    ]
    assert [s.key for s in ds.missing] == ["zzz_000000_000010"] and [s.key for s in ds.unknown] == [
        "qqq_000000_000010"
    ]
    (tmp_path / "bad.csv").write_text("\n".join([rows[0], rows[4]]) + "\n")
    with pytest.raises(DatasetError, match="line 2: time_start"):
        read_dataset(tmp_path / "bad.csv", class_names=CLASSES)


def test_plain_labels_csv_variants(tmp_path: Path) -> None:
    write_video(tmp_path / "a.mp4", frame_pattern(12, 48, 48))
    write_video(tmp_path / "b.mp4", frame_pattern(12, 48, 48))
    (tmp_path / "labels.csv").write_text("file,label\na.mp4,Pulling something\nb.mp4,3\nc.mp4,0\n")
    ds = read_dataset(tmp_path / "labels.csv", class_names=CLASSES)
    assert ds.format == "labels-csv" and [e.label for e in ds.entries] == [1, 3] and len(ds.missing) == 1
    (tmp_path / "synth.csv").write_text(
        "file,label_index,label_name\na.mp4,1,Pulling something\nb.mp4,0,air drumming\n"
    )
    ds = read_dataset(tmp_path / "synth.csv", class_names=CLASSES)
    assert [e.key for e in ds.entries] == ["a.mp4"] and "disagrees" in ds.unknown[0].detail
    (tmp_path / "plain.csv").write_text("a.mp4,air drumming\nb.mp4\n")
    with pytest.raises(DatasetError, match="line 2"):
        read_dataset(tmp_path / "plain.csv", class_names=CLASSES)
    with pytest.raises(DatasetError, match="none of the formats"):
        detect_format("Pushing something\nPulling something\n")


def test_entries_outside_the_allowed_root_are_missing(tmp_path: Path) -> None:
    inside, outside = tmp_path / "root", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    write_video(outside / "x.mp4", frame_pattern(12, 48, 48))
    (inside / "x.mp4").symlink_to(outside / "x.mp4")
    (inside / "list.csv").write_text("file,label\nx.mp4,0\n../elsewhere/x.mp4,0\n")
    ds = read_dataset(inside / "list.csv", class_names=CLASSES, allowed_root=inside)
    assert ds.entries == [] and all("outside" in s.detail for s in ds.missing) and len(ds.missing) == 2


# ------------------------------------------------------------------------------------- protocols and fusion


def test_protocol_views_and_fusion_by_hand(tmp_path: Path, tiny) -> None:
    model, info, _ = tiny
    video = write_video(tmp_path / "v.mp4", frame_pattern(60, 72, 96))
    (tmp_path / "l.csv").write_text("file,label\nv.mp4,2\n")
    ds = read_dataset(tmp_path / "l.csv", class_names=CLASSES)
    for name, views, size in (("ss-1crop", 1, 56), ("ss-3crop", 3, 64), ("k400-30view", 30, 64)):
        protocol = get_protocol(name)
        clip = load_entry(ds.entries[0], info.spec, protocol)
        assert clip.num_views == protocol.views == views and clip.model_frames.shape[3] == size
        assert len({tuple(c[:, 0].tolist()) for c in clip.frame_indices}) == protocol.clips  # clips differ
        logits = forward_views(model, [clip.view_input(v) for v in range(views)])
        by_hand = fuse(logits.numpy())
        summary = evaluate_dataset(model, info, ds, name, out=tmp_path / f"{name}.jsonl", progress=False)
        record = read_jsonl(tmp_path / f"{name}.jsonl")[1][0]
        assert summary["protocol"]["views"] == views
        stored = dict((i, p) for i, p in record["topk"])
        for i, p in stored.items():
            assert p == pytest.approx(by_hand[i], abs=2e-5)  # the folded model: equal up to float rounding
        assert record["pred"] == int(np.argmax(by_hand))
        assert np.array(record["frame_indices"]).shape == (protocol.clips, SPEC.num_segments, 5)
    assert video.exists()


@pytest.fixture
def small_set(tmp_path: Path) -> Path:
    rows = ["file,label"]
    for i in range(7):
        write_video(tmp_path / f"c{i}.mp4", frame_pattern(16 + i, 48, 64, seed=i))
        rows.append(f"c{i}.mp4,{i % len(CLASSES)}")
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    rows += ["broken.mp4,1", "gone.mp4,0"]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "labels.csv"


def test_resume_after_an_interruption_gives_the_same_file(small_set: Path, tmp_path: Path, tiny) -> None:
    model, info, _ = tiny
    ds = read_dataset(small_set, class_names=CLASSES)
    full = evaluate_dataset(model, info, ds, out=tmp_path / "full.jsonl", progress=False, workers=0)
    assert (
        full["metrics"]["videos"] == 7 and full["metrics"]["failed"] == 1 and full["dataset"]["missing"] == 1
    )
    assert full["failures"][0]["key"] == "broken.mp4" and full["complete"]
    assert sum(c["videos"] for c in full["metrics"]["per_class"]) == 7
    assert np.array(full["metrics"]["confusion"]).sum() == 7

    class Stop(Exception):
        pass

    def stop_after_three(done: int, total: int, elapsed: float) -> None:
        if done == 3:
            raise Stop

    out = tmp_path / "resumed.jsonl"
    with pytest.raises(Stop):
        evaluate_dataset(model, info, ds, out=out, progress=False, on_progress=stop_after_three)
    assert len(read_jsonl(out)[1]) == 3
    with out.open("a") as handle:
        handle.write('{"key": "c5.mp4", "file": "c5.mp')  # the line being written when it stopped
    seen: list[int] = []
    resumed = evaluate_dataset(
        model, info, ds, out=out, progress=False, on_progress=lambda d, t, e: seen.append(t)
    )
    assert seen[-1] == 5 and resumed["timing"]["resumed_from"] == 3
    assert out.read_bytes() == (tmp_path / "full.jsonl").read_bytes()
    assert resumed["metrics"] == full["metrics"]
    evaluation = load_evaluation(tmp_path / "full.summary.json")
    assert evaluation.path_of(evaluation.records[0]) == small_set.parent / "c0.mp4"

    other = read_dataset(small_set, class_names=CLASSES)
    with pytest.raises(EvaluationMismatch, match="protocol"):
        evaluate_dataset(model, info, other, "ss-3crop", out=out, progress=False)


WORKER = """
import json, sys, torch
torch.set_num_threads(1)
from tdn.distributed import init_from_env, finish
from tdn.network.checkpoint import load_checkpoint
from tdn.datasets import read_dataset, evaluate_dataset
ranks = init_from_env(cpu_only=True)
model, info = load_checkpoint(sys.argv[1], device="cpu")
ds = read_dataset(sys.argv[2], class_names=info.class_names)
summary = evaluate_dataset(model, info, ds, "ss-3crop", out=sys.argv[3], progress=False, ranks=ranks)
if ranks.is_main:
    print(json.dumps(summary["metrics"]["top1"]))
finish(ranks)
"""


def test_two_ranks_equal_one(small_set: Path, tmp_path: Path, tiny) -> None:
    model, info, checkpoint = tiny
    torch.set_num_threads(1)
    ds = read_dataset(small_set, class_names=CLASSES)
    single = evaluate_dataset(model, info, ds, "ss-3crop", out=tmp_path / "one.jsonl", progress=False)
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_port", "29571", str(worker), str(checkpoint)]
        + [str(small_set), str(tmp_path / "two.jsonl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    two = json.loads((tmp_path / "two.summary.json").read_text())
    assert two["metrics"] == single["metrics"] and two["timing"]["ranks"] == 2
    assert not list(tmp_path.glob("two.jsonl.part*"))


def test_summary_row_in_the_results_schema(small_set: Path, tmp_path: Path, tiny) -> None:
    from analysis.evaluations import record_evaluation, summary_row
    from analysis.results import load_results

    model, info, _ = tiny
    ds = read_dataset(small_set, class_names=CLASSES)
    summary = evaluate_dataset(model, info, ds, "ss-3crop", out=tmp_path / "e.jsonl", progress=False)
    row = summary_row(summary)
    assert row["crops"] == 3 and row["input_size"] == 64 and row["variant"] == "tdn"
    assert row["gmacs_total"] == pytest.approx(3 * row["gmacs_per_view"]) and row["seed"] is None
    assert json.loads(row["source"])["kind"] == "evaluation"
    csv_path = tmp_path / "results.csv"
    record_evaluation(tmp_path / "e.summary.json", csv_path)
    record_evaluation(summary, csv_path)  # the same evaluation again replaces its row
    record_evaluation(summary, csv_path, dataset="another set")
    frame = load_results(csv_path)
    assert len(frame) == 2 and frame["top1"].iloc[0] == pytest.approx(summary["metrics"]["top1"])
