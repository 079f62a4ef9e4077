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
    data.mkdir()
    shutil.copytree(clips, data / "set")
    (root / "outside.csv").write_text("file,label\n")
    return {"root": root, "models": models, "clips": clips, "evals": evals, "data": data}


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
    assert not inspect_route(env["data"], settings()).possible  # a folder: Inspect reads videos only

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


def test_the_shipped_evaluations_are_complete() -> None:
    files = evaluation_files(app.dataset_data.dataset_settings())
    shipped = [p for p in files if p.parent == app.dataset_data.SHIPPED_EVALUATIONS]
    assert shipped and shipped[0].name == app.dataset_data.DEFAULT_EVALUATION
    for path in shipped:
        ev = load_evaluation(path)
        assert ev.summary["complete"] and ev.summary["metrics"]["videos"] == len(ev.records)
        assert all(ev.path_of(r).exists() for r in ev.records)
