"""Pareto front (minimise cost, maximise accuracy): dominance, ties, duplicates, missing values, index."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from analysis.pareto import pareto_front, pareto_points


def front(points: list[tuple[float, float]], index: list | None = None) -> list[bool]:
    df = pd.DataFrame(points, columns=["gmacs_total", "top1"], index=index)
    return pareto_front(df).tolist()


def brute_force(points: list[tuple[float, float]]) -> list[bool]:
    """The definition, pair by pair: dominated if another point is no worse in both and better in one."""
    return [
        not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i)
        for i, (x, y) in enumerate(points)
    ]


def test_simple_front() -> None:
    points = [(1, 50), (2, 60), (3, 55), (4, 70), (5, 70)]
    assert front(points) == [True, True, False, True, False]


def test_same_cost_lower_accuracy_is_dominated() -> None:
    assert front([(2, 60), (2, 65), (1, 50)]) == [False, True, True]


def test_same_accuracy_higher_cost_is_dominated() -> None:
    assert front([(1, 60), (2, 60), (3, 61)]) == [True, False, True]


def test_exact_duplicates_are_all_on_the_front_and_drawn_once() -> None:
    df = pd.DataFrame({"gmacs_total": [1, 1, 2, 3], "top1": [50, 50, 40, 60]})
    assert pareto_front(df).tolist() == [True, True, False, True]
    drawn = pareto_points(df)
    assert drawn["gmacs_total"].tolist() == [1, 3] and drawn["top1"].tolist() == [50, 60]


def test_missing_values_are_never_on_the_front() -> None:
    assert front([(1, np.nan), (np.nan, 90), (2, 50)]) == [False, False, True]


def test_mask_keeps_the_frames_index_and_other_columns() -> None:
    df = pd.DataFrame({"cost": [5.0, 1.0, 3.0], "acc": [9.0, 1.0, 9.0]}, index=["a", "b", "c"])
    mask = pareto_front(df, x="cost", y="acc")
    assert mask.index.tolist() == ["a", "b", "c"] and mask.tolist() == [False, True, True]


def test_matches_the_definition_on_a_grid_with_many_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        points = [(float(x), float(y)) for x, y in rng.integers(0, 5, size=(12, 2))]
        assert front(points) == brute_force(points)


def test_empty_and_single() -> None:
    assert front([]) == []
    assert front([(3, 3)]) == [True]
    assert all(front(list(itertools.repeat((1.0, 1.0), 3))))
