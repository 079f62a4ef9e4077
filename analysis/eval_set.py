"""The small evaluation set shipped in ``assets/eval/`` and its stored evaluations, regenerated in one command.

``python -m analysis.eval_set`` re-runs the stored evaluations of the shipped clips with the current demo
checkpoints (``assets/models``) and rewrites ``assets/eval/evaluations/*`` and the rows of
``assets/results/eval_synthetic.csv`` (what the Dataset and Ablations pages show). Run it after the demo models
change. ``--clips`` also rewrites the clips and the list files (deterministic: the same seed gives the same
frames; the videos are re-encoded by libx264, which repeats its bytes with ``mbtree=0``).

The set: 56 held-out clips of ``tdn.training.synth`` (its current ``DATASET_VERSION``; 4 per class, seed 3001,
112 px, 48 frames; the demo models trained on seed 1 and validated on seed 1001), in each published format:

* ``synth_val/``: the clips as H.264 MP4 (x264 crf 26, against crf 18 of ``python -m tdn synth``, to keep the set
  at about 1 MB), with ``labels.csv`` (file,label_index,label_name as the synth command writes it) and an
  SSv2-style ``validation.json`` (``template`` with ``[something]``) plus ``labels.json`` (``{name: "index"}``);
  and each clip's actor mask (``<stem>_mask.npz``, as ``python -m tdn synth`` writes it);
* ``synth_val_frames/``: the first clip of each class (14) as a frame folder of JPEGs (``{:05d}.jpg``, quality 75,
  the raw rendered frames), with an official TDN list file ``val_list.txt`` (``folder num_frames label``).
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from analysis.evaluations import record_evaluation
from analysis.results import RESULTS_DIR
from tdn.assets import ASSETS, DEMO_CHECKPOINT, DEMO_TSN_CHECKPOINT
from tdn.training.synth import DATASET_VERSION

EVAL_DIR = ASSETS / "eval"
VIDEOS = EVAL_DIR / "synth_val"
FRAMES = EVAL_DIR / "synth_val_frames"
EVALUATIONS = EVAL_DIR / "evaluations"
RESULTS_CSV = RESULTS_DIR / "eval_synthetic.csv"
NUM, SEED, SIZE, FRAME_COUNT, FPS = 56, 3001, 112, 48, 12
CRF = "26"
JPEG_QUALITY = 75
SYNTH = f"synthetic-motion v{DATASET_VERSION}"
DATASET_VIDEOS = f"{SYNTH} (assets/eval: {NUM} held-out clips, seed {SEED}, {SIZE} px, x264 crf {CRF})"
DATASET_FRAMES = f"{SYNTH} (assets/eval: 14 held-out clips as JPEG frame folders, seed {SEED}, {SIZE} px)"


def _write_mp4(path: Path, frames: np.ndarray) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "libx264", rate=FPS, options={"crf": CRF, "preset": "medium", "x264-params": "mbtree=0"}
        )
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def write_clips() -> None:
    """The clips and every list file (see the module docstring)."""
    from tdn.training.synth import CLASSES, sample_dataset

    for folder in (VIDEOS, FRAMES):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    rows, items, listed, seen = [], [], [], set()
    for index, clip in enumerate(sample_dataset(NUM, SEED, SIZE, FRAME_COUNT)):
        stem = f"synth_{index:06d}"
        _write_mp4(VIDEOS / f"{stem}.mp4", clip.frames)
        np.savez_compressed(VIDEOS / f"{stem}_mask.npz", mask=clip.mask)  # for the pointing game
        rows.append((f"{stem}.mp4", clip.label, clip.label_name))
        template = clip.label_name.replace("something", "[something]")
        items.append({"id": stem, "label": clip.label_name.lower(), "template": template, "placeholders": []})
        if clip.label not in seen:
            seen.add(clip.label)
            folder = FRAMES / stem
            folder.mkdir(exist_ok=True)
            for f, image in enumerate(clip.frames, 1):
                Image.fromarray(image).save(folder / f"{f:05d}.jpg", quality=JPEG_QUALITY)
            listed.append(f"{stem} {len(clip.frames)} {clip.label}")
    with (VIDEOS / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label_index", "label_name"])
        writer.writerows(rows)
    (VIDEOS / "validation.json").write_text(json.dumps(items, indent=1) + "\n")
    (VIDEOS / "labels.json").write_text(
        json.dumps({n: str(i) for i, n in enumerate(CLASSES)}, indent=1) + "\n"
    )
    (FRAMES / "val_list.txt").write_text("\n".join(listed) + "\n")


# (JSONL name, checkpoint, list file, title, results dataset name)
EVALUATION_PLAN: tuple[tuple[str, Path, Path, str, str], ...] = (
    (
        "demo-tdn_synth-val_ss-1crop",
        DEMO_CHECKPOINT,
        VIDEOS / "labels.csv",
        "Demo TDN · 56 clips",
        DATASET_VIDEOS,
    ),
    (
        "demo-tsn_synth-val_ss-1crop",
        DEMO_TSN_CHECKPOINT,
        VIDEOS / "labels.csv",
        "TSN twin · 56 clips",
        DATASET_VIDEOS,
    ),
    (
        "demo-tdn_synth-val-frames_ss-1crop",
        DEMO_CHECKPOINT,
        FRAMES / "val_list.txt",
        "Demo TDN · 14 frame folders",
        DATASET_FRAMES,
    ),
)


def run_evaluations(command: str, progress: bool = True) -> list[dict]:
    """Every evaluation of :data:`EVALUATION_PLAN`, from scratch; their results rows go to ``RESULTS_CSV``."""
    import tdn
    from tdn.datasets import evaluate_dataset, read_dataset

    EVALUATIONS.mkdir(parents=True, exist_ok=True)
    summaries = []
    for name, checkpoint, list_file, title, dataset_name in EVALUATION_PLAN:
        model, info = tdn.load_checkpoint(checkpoint, device="cpu")
        dataset = read_dataset(list_file, class_names=info.class_names)
        if dataset.missing or dataset.unknown:
            raise SystemExit(f"{list_file}: {dataset.describe()}; regenerate the clips with --clips")
        summary = evaluate_dataset(
            model,
            info,
            dataset,
            "ss-1crop",
            out=EVALUATIONS / f"{name}.jsonl",
            resume=False,
            progress=progress,
            title=title,
            command=command,
        )
        record_evaluation(summary, RESULTS_CSV, dataset=dataset_name)
        m, t = summary["metrics"], summary["timing"]
        print(
            f"{name}: top-1 {m['top1']:.1f} %, top-5 {m['top5']:.1f} %, mean class {m['mean_class']:.1f} % "
            f"({m['videos']} videos, {t['videos_per_s']:.1f} videos/s)"
        )
        summaries.append(summary)
    return summaries


# (evaluation whose clips are explained, checkpoint): ``explain --summary`` on ``synth_val``, stored beside it
FAITHFULNESS_PLAN = (
    ("demo-tdn_synth-val_ss-1crop", DEMO_CHECKPOINT),
    ("demo-tsn_synth-val_ss-1crop", DEMO_TSN_CHECKPOINT),
)


def run_faithfulness(progress: bool = True) -> None:
    """``python -m tdn explain synth_val --summary`` for each model of :data:`FAITHFULNESS_PLAN`; the summary goes
    beside the evaluation as ``<name>.faithfulness.json`` (what the Dataset page reads), the images are dropped."""
    import subprocess
    import tempfile

    root = ASSETS.parent
    for name, checkpoint in FAITHFULNESS_PLAN:
        with tempfile.TemporaryDirectory(prefix="tdn-eval-set-") as scratch:
            cmd = [sys.executable, "-m", "tdn", "explain", str(VIDEOS.relative_to(root)), "--summary"]
            cmd += ["--checkpoint", str(checkpoint.relative_to(root)), "--device", "cpu", "--out", scratch]
            subprocess.run(cmd + ([] if progress else ["--quiet"]), cwd=root, check=True)
            summary = json.loads((Path(scratch) / "faithfulness.json").read_text())
            (EVALUATIONS / f"{name}.faithfulness.json").write_text(json.dumps(summary, indent=1) + "\n")
        overall = summary["overall"]
        print(
            f"{name}: faithfulness at {summary['layer']}: ROAD {overall['road']:+.3f}, pointing game "
            f"{overall['pointing_game']:.3f} ({overall['pointing_segments']} segments)"
        )


def check_formats() -> None:
    """The three list formats of ``synth_val`` name the same videos with the same classes."""
    from tdn.datasets import read_dataset
    from tdn.training.synth import CLASSES

    read = {
        f: read_dataset(
            VIDEOS / f,
            class_names=CLASSES,
            labels_file=VIDEOS / "labels.json" if f.endswith("json") else None,
        )
        for f in ("labels.csv", "validation.json")
    }
    as_pairs = {f: sorted((e.path.name, e.label) for e in d.entries) for f, d in read.items()}
    if len(set(map(tuple, as_pairs.values()))) != 1:
        raise SystemExit("labels.csv and validation.json disagree")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.eval_set", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", action="store_true", help="also regenerate the clips and list files")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    command = "python -m analysis.eval_set" + (" " + shlex.join(argv if argv is not None else sys.argv[1:]))
    if args.clips or not (VIDEOS / "labels.csv").is_file():
        write_clips()
    check_formats()
    run_evaluations(command.strip(), progress=not args.quiet)
    run_faithfulness(progress=not args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
