"""The Dataset page with Streamlit's AppTest: choosing an evaluation, selecting a class or a cell, the clips behind
it, opening one in Inspect, comparing two evaluations, and running one under an allowed data root.

Evaluations are made here, with tiny untrained checkpoints (named like the demo and its TSN twin, as in
tests/test_app.py) on generated clips that also serve as the Inspect page's sample clips, so the page's content
does not follow the shipped demo models. The shipped evaluations are checked for being readable and complete.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import app.dataset_data
from app.dataset_data import evaluation_files, inspect_route, resolve_under
from app.dataset_figures import confusion_heatmap, per_class_bars, selected_classes
from app.settings import settings
from tdn import assets
from tdn.datasets import evaluate_dataset, load_evaluation, read_dataset
from tdn.network.checkpoint import load_checkpoint, save_checkpoint
from tdn.network.model import build_model
from tdn.training.synth import CLASSES, write_dataset

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "streamlit_app.py"
TIMEOUT = 120


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dataset_page")
    models, clips, evals, data = root / "models", root / "clips", root / "evals", root / "data"
    torch.manual_seed(0)
    for variant, name in (("tdn", assets.DEMO_CHECKPOINT.name), ("tsn", assets.DEMO_TSN_CHECKPOINT.name)):
        model = build_model("resnet18", 8, len(CLASSES), variant, width=0.25)
        save_checkpoint(model, models / name, CLASSES, input_size=112, scale_size=112, name=f"tiny {variant}")
    write_dataset(clips, 6, seed=7, progress=False)
    for name in ("tdn", "tsn"):
        model, info = load_checkpoint(models / f"demo_{name}_r18w25_t8_112.safetensors", device="cpu")
        dataset = read_dataset(clips / "labels.csv", class_names=info.class_names)
        evaluate_dataset(
            model, info, dataset, out=evals / f"tiny-{name}.jsonl", progress=False, title=f"tiny {name}"
        )
    _faithfulness_summary(models / assets.DEMO_CHECKPOINT.name, clips, evals / "tiny-tdn.faithfulness.json")
    data.mkdir()
    shutil.copytree(clips, data / "set")
    (root / "outside.csv").write_text("file,label\n")
    return {"root": root, "models": models, "clips": clips, "evals": evals, "data": data}


def _faithfulness_summary(checkpoint: Path, clips: Path, out: Path) -> None:
    """What ``explain --summary`` stores, made with the same library calls, for the tiny TDN's evaluation."""
    import json

    from tdn.interpret.faithfulness import load_mask_for
    from tdn.interpret.gradcam import explain
    from tdn.interpret.summary import clip_faithfulness, summarise_faithfulness
    from tdn.video import load_clip

    model, info = load_checkpoint(checkpoint, device="cpu")
    records = []
    for entry in read_dataset(clips / "labels.csv", class_names=info.class_names).entries:
        clip = load_clip(entry.path, spec=info.spec)
        ex = explain(model, clip, None, "gradcam", "res4", class_names=info.class_names)
        figures = clip_faithfulness(model, clip, ex, load_mask_for(entry.path), percentiles=(20, 40))
        records.append({"file": entry.path.name, "label": entry.label, "target": ex.target} | figures)
    summary = summarise_faithfulness(records, info.class_names) | {"method": "gradcam", "layer": "res4"}
    out.write_text(json.dumps(summary))


@pytest.fixture
def env(world: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    monkeypatch.setenv("TDN_LENS_MODELS_DIR", str(world["models"]))
    monkeypatch.setenv("TDN_LENS_CLIPS_DIR", str(world["clips"]))
    monkeypatch.setenv("TDN_LENS_EVAL_DIR", str(world["evals"]))
    monkeypatch.delenv("TDN_LENS_ALLOW_SERVER_PATHS", raising=False)
    monkeypatch.delenv("TDN_LENS_DATA_ROOT", raising=False)
    empty = tmp_path / "no_shipped"
    empty.mkdir()
    monkeypatch.setattr(app.dataset_data, "SHIPPED_EVALUATIONS", empty)
    return world


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def dataset_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.switch_page("app/pages/dataset.py")
    return ok(at.run())


def test_choose_an_evaluation_and_select_a_cell(env: dict[str, Path]) -> None:
    at = dataset_page()
    assert at.title[0].value == "Dataset"
    chosen = load_evaluation(env["evals"] / "tiny-tdn.jsonl")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Videos evaluated"] == "6"
    assert metrics["Top-1"] == f"{chosen.summary['metrics']['top1']:.1f} %"
    assert at.get_by_key("dataset_per_class") is not None and at.get_by_key("dataset_confusion") is not None
    assert not [b for b in at.button if b.label == "Open in Inspect"]  # nothing selected yet

    confusion = np.array(chosen.summary["metrics"]["confusion"])
    true, pred = (int(v) for v in np.argwhere(confusion)[0])
    ok(at.selectbox(key="dataset_true").set_value(true).run())
    ok(at.selectbox(key="dataset_pred").set_value(pred).run())
    buttons = [b for b in at.button if b.label == "Open in Inspect"]
    assert len(buttons) == confusion[true, pred]
    assert len(at.image) >= len(buttons)  # a thumbnail per clip
    # the clips are the Inspect page's samples, so they open there without server paths
    assert not buttons[0].disabled
    record = next(r for r in chosen.records if r["label"] == true and r["pred"] == pred)
    ok(at.button(key=f"inspect:{record['key']}").click().run())
    assert at.title[0].value == "Inspect a clip"
    assert at.session_state["clip_mode"] == "sample" and at.session_state["sample_clip"] == record["file"]


def test_compare_two_evaluations_and_switch(env: dict[str, Path]) -> None:
    at = dataset_page()
    other = str(env["evals"] / "tiny-tsn.jsonl")
    ok(at.sidebar.selectbox(key="dataset_compare").set_value(other).run())
    assert at.get_by_key("dataset_difference") is not None
    assert at.get_by_key("dataset_a_only") is not None and at.get_by_key("dataset_b_only") is not None
    ok(at.sidebar.selectbox(key="dataset_eval").set_value(other).run())
    assert at.metric[0].value == f"{load_evaluation(other).summary['metrics']['top1']:.1f} %"


def test_inspect_routes_and_chart_selections(env: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = env["data"] / "set" / "synth_000000.mp4"
    route = inspect_route(elsewhere, settings())
    assert not route.possible and "TDN_LENS_ALLOW_SERVER_PATHS" in route.reason
    # Without server paths, a clip under the data root travels as a request Inspect honours ("From Dataset").
    monkeypatch.setenv("TDN_LENS_DATA_ROOT", str(env["data"]))
    route = inspect_route(elsewhere, settings())
    assert route.possible and route.state == {
        "inspect_request": {"path": str(elsewhere), "name": elsewhere.name}
    }
    from streamlit.testing.v1 import AppTest

    inspect = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    inspect.session_state["inspect_request"] = route.state["inspect_request"]
    inspect.run()
    assert not inspect.exception and inspect.sidebar.radio(key="clip_mode").value == "dataset"
    assert any(
        elsewhere.name in img.alt
        for e in inspect.get_by_key("cam_strip").get("image")
        for img in e.proto.imgs
    )
    monkeypatch.delenv("TDN_LENS_DATA_ROOT")
    monkeypatch.setenv("TDN_LENS_ALLOW_SERVER_PATHS", "1")
    route = inspect_route(elsewhere, settings())
    assert route.possible and route.state == {"clip_mode": "path", "clip_path": str(elsewhere)}
    route = inspect_route(env["data"], settings())  # a folder without frames is no clip
    assert not route.possible and "neither a video file nor a folder of frames" in route.reason

    per_class = load_evaluation(env["evals"] / "tiny-tdn.jsonl").summary["metrics"]["per_class"]
    bars = per_class_bars(per_class)
    first = bars.data[0].customdata[0]
    assert selected_classes({"selection": {"points": [{"customdata": list(first)}]}}) == (first[0], None)
    matrix = [[0, 2], [1, 0]]
    cells = confusion_heatmap(matrix, ["a", "b"]).data[1].customdata
    assert selected_classes({"selection": {"points": [{"customdata": list(cells[0])}]}}) == (0, 1)
    assert selected_classes({"selection": {"points": []}}) is None


def test_run_an_evaluation_under_the_data_root(
    env: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "runs"
    monkeypatch.setenv("TDN_LENS_EVAL_DIR", str(out))
    at = dataset_page()
    assert any("TDN_LENS_DATA_ROOT" in c.value for c in at.caption)  # off by default
    monkeypatch.setenv("TDN_LENS_DATA_ROOT", str(env["data"]))
    (env["data"] / "escape").symlink_to(env["root"], target_is_directory=True)
    with pytest.raises(ValueError, match="outside"):
        resolve_under(env["data"], "../outside.csv")
    with pytest.raises(ValueError, match="outside"):
        resolve_under(env["data"], "escape/outside.csv")
    at = dataset_page()
    at.text_input(key="dataset_run_list").input("../outside.csv")
    at.button[-1].click().run()  # the form's Run button submits the typed path
    assert any("outside the data root" in e.value for e in at.error), [e.value for e in at.error]
    at.text_input(key="dataset_run_list").input("set/labels.csv")
    ok(at.button[-1].click().run())
    stored = sorted(out.glob("*.jsonl"))
    assert len(stored) == 1 and (out / "results.csv").is_file()
    assert at.sidebar.selectbox(key="dataset_eval").value == str(stored[0])
    assert {m.label: m.value for m in at.metric}["Videos evaluated"] == "6"
    (env["data"] / "escape").unlink()
    # its results row is on the Ablations page, beside the zoo
    import pandas as pd

    row = pd.read_csv(out / "results.csv").iloc[0]
    ablations = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    ablations.switch_page("app/pages/ablations.py")
    ok(ablations.run())
    assert row["dataset"] in ablations.sidebar.multiselect[0].options
    ok(ablations.sidebar.multiselect[0].set_value([row["dataset"]]).run())
    shown = pd.concat([d.value for d in ablations.dataframe])
    assert row["name"] in shown.astype(str).to_numpy().ravel().tolist()


def test_the_shipped_evaluations_are_complete() -> None:
    files = evaluation_files(app.dataset_data.dataset_settings())
    shipped = [p for p in files if p.parent == app.dataset_data.SHIPPED_EVALUATIONS]
    assert shipped and shipped[0].name == app.dataset_data.DEFAULT_EVALUATION
    for path in shipped:
        ev = load_evaluation(path)
        assert ev.summary["complete"] and ev.summary["metrics"]["videos"] == len(ev.records)
        assert all(ev.path_of(r).exists() for r in ev.records)


def test_a_frame_folder_of_the_shipped_set_opens_in_inspect() -> None:
    """Something-Something V1 style clips (folders of JPEGs) travel to Inspect like videos and are shown there."""
    from streamlit.testing.v1 import AppTest

    folder = sorted(
        p for p in (app.dataset_data.assets.ASSETS / "eval" / "synth_val_frames").iterdir() if p.is_dir()
    )[0]
    route = inspect_route(folder, settings())
    assert route.possible and route.state == {"inspect_request": {"path": str(folder), "name": folder.name}}
    inspect = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    inspect.session_state["inspect_request"] = route.state["inspect_request"]
    inspect.run()
    assert not inspect.exception and inspect.sidebar.radio(key="clip_mode").value == "dataset"
    assert any(
        folder.name in img.alt for e in inspect.get_by_key("cam_strip").get("image") for img in e.proto.imgs
    )


def test_faithfulness_per_class_beside_an_evaluation(
    env: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    import json

    at = dataset_page()
    assert at.sidebar.selectbox(key="dataset_eval").value.endswith("tiny-tdn.jsonl")
    stored = json.loads((env["evals"] / "tiny-tdn.faithfulness.json").read_text())
    tables = [d for d in at.dataframe if "pointing game" in d.value.columns]
    assert len(tables) == 1
    table = tables[0]
    assert len(table.value) == len(stored["per_class"]) > 0
    assert list(table.value["class"]) == [row["name"] for row in stored["per_class"]]
    assert {m.label: m.value for m in at.metric}["ROAD"] == f"{stored['overall']['road']:.3f}"
    # the TSN evaluation has none: the page says how to make one
    ok(at.sidebar.selectbox(key="dataset_eval").set_value(str(env["evals"] / "tiny-tsn.jsonl")).run())
    assert not [d for d in at.dataframe if "pointing game" in d.value.columns]
    assert any("explain DIR --summary" in c.value for c in at.caption)
    # a broken summary is an error on the page, not a crash
    broken = tmp_path / "evals"
    broken.mkdir()
    for suffix in (".jsonl", ".summary.json"):
        shutil.copy(env["evals"] / f"tiny-tdn{suffix}", broken / f"tiny-tdn{suffix}")
    (broken / "tiny-tdn.faithfulness.json").write_text("{not json")
    monkeypatch.setenv("TDN_LENS_EVAL_DIR", str(broken))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.switch_page("app/pages/dataset.py")
    at.run()
    assert not at.exception and any("tiny-tdn.faithfulness.json" in e.value for e in at.error)
