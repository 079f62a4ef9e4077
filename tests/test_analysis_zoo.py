"""The stored official zoo table: accuracies copied from the source CSV, costs as counted by tdn.network.flops."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from analysis.results import load_results, to_frame
from analysis.zoo import SOURCE_CSV, ZOO_CSV, count_config, num_classes, zoo_rows
from tdn.network.flops import count_gmacs, count_params
from tdn.network.model import build_model


@pytest.fixture(scope="module")
def zoo() -> pd.DataFrame:
    return load_results(ZOO_CSV)


@pytest.fixture(scope="module")
def source() -> list[dict[str, str]]:
    with SOURCE_CSV.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_stored_zoo_is_what_the_command_regenerates(zoo: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(zoo, to_frame(zoo_rows()))


def test_one_row_per_source_entry_with_its_accuracies(
    zoo: pd.DataFrame, source: list[dict[str, str]]
) -> None:
    assert len(zoo) == len(source)
    for (_, stored), entry in zip(zoo.iterrows(), source, strict=True):
        assert stored["dataset"] == entry["dataset"]
        assert stored["top1"] == float(entry["top1"]) and stored["top5"] == float(entry["top5"])
        assert (stored["crops"], stored["clips"]) == (int(entry["crops"]), int(entry["clips"]))
        assert stored["source"].startswith(entry["source"]) and stored["source_kind"] == "publication"
        assert stored["variant"] == "tdn" and stored["s_tdm"] and stored["l_tdm"] and stored["shift"]


def test_counted_gmacs_match_the_spec(zoo: pd.DataFrame) -> None:
    def single(dataset: str, name: str, crops: int) -> pd.Series:
        hit = zoo[(zoo["dataset"] == dataset) & (zoo["name"] == name) & (zoo["crops"] == crops)]
        assert len(hit) == 1
        return hit.iloc[0]

    ssv2 = "Something-Something V2"
    r50_8 = single(ssv2, "TDN-ResNet50 8f", 1)
    assert round(r50_8["gmacs_per_view"], 2) == 35.64 and r50_8["input_size"] == 224
    assert r50_8["params"] == 24_420_046  # docs/architecture.md §7 (K=174)
    assert round(single(ssv2, "TDN-ResNet50 16f", 1)["gmacs_per_view"], 2) == 71.28
    r101_8 = single(ssv2, "TDN-ResNet101 8f", 1)
    assert round(r101_8["gmacs_per_view"], 2) == 65.84 and r101_8["params"] == 43_681_726
    # 3-crop views are 256²; the total multiplies by the views
    r101_8_3crop = single(ssv2, "TDN-ResNet101 8f", 3)
    assert r101_8_3crop["input_size"] == 256 and r101_8_3crop["gmacs_per_view"] > r101_8["gmacs_per_view"]
    assert r101_8_3crop["gmacs_total"] == pytest.approx(3 * r101_8_3crop["gmacs_per_view"])
    k400 = single("Kinetics-400", "TDN-ResNet50 8f", 3)
    assert k400["gmacs_total"] == pytest.approx(30 * k400["gmacs_per_view"])
    assert k400["params"] == 24_883_120  # docs/architecture.md §7 (K=400)


def test_ensemble_sums_its_two_members(zoo: pd.DataFrame) -> None:
    ensemble = zoo[zoo["name"].str.contains("ensemble") & (zoo["crops"] == 1)].iloc[0]
    r101 = zoo[
        (zoo["dataset"] == ensemble["dataset"]) & (zoo["crops"] == 1) & (zoo["backbone"] == "resnet101")
    ]
    members = r101[~r101["name"].str.contains("ensemble")]
    assert ensemble["gmacs_per_view"] == pytest.approx(members["gmacs_per_view"].sum())
    assert ensemble["params"] == members["params"].sum() and ensemble["segments"] == members["segments"].sum()
    assert round(ensemble["gmacs_per_view"]) == 198  # the paper's "8+16" figure (docs/architecture.md §8)


def test_class_counts_come_from_the_label_lists() -> None:
    assert num_classes("Something-Something V1") == num_classes("Something-Something V2") == 174
    assert num_classes("Kinetics-400") == 400


def test_meta_device_count_equals_a_count_on_real_tensors() -> None:
    meta_gmacs, meta_params = count_config.__wrapped__("resnet18", 4, 14, 64)
    cpu = build_model("resnet18", 4, 14, "tdn")
    assert count_gmacs(cpu, 64)[0] == pytest.approx(meta_gmacs, rel=1e-12)
    assert count_params(cpu) == meta_params
