"""The Pareto front of a results table: the rows no other row beats on both cost and accuracy.

A row is *dominated* when another row costs no more and scores no less, and is strictly better in at least
one of the two. The front is every row that is not dominated. Ties: rows with identical (x, y) do not
dominate each other, so duplicates of a front point are all on the front; a row with the same cost as a
front point but lower accuracy (or the same accuracy at a higher cost) is dominated. Rows whose x or y is
missing are never on the front.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def pareto_front(df: pd.DataFrame, x: str = "gmacs_total", y: str = "top1") -> pd.Series:
    """Boolean mask aligned with ``df.index``: True for the rows on the front (minimise ``x``, maximise ``y``)."""
    xs = pd.to_numeric(df[x], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ys = pd.to_numeric(df[y], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    on_front = np.zeros(len(df), dtype=bool)
    valid = np.flatnonzero(~(np.isnan(xs) | np.isnan(ys)))
    # Cheapest first; within one cost the most accurate first. Sweep, keeping the best accuracy seen so far.
    order = valid[np.lexsort((-ys[valid], xs[valid]))]
    best = -np.inf
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and xs[order[j]] == xs[order[i]]:
            j += 1
        group = order[i:j]  # same cost
        top = ys[group].max()
        if top > best:  # not matched by anything cheaper: its most accurate rows (and their duplicates) win
            on_front[group[ys[group] == top]] = True
            best = top
        i = j
    return pd.Series(on_front, index=df.index, name="pareto")


def pareto_points(df: pd.DataFrame, x: str = "gmacs_total", y: str = "top1") -> pd.DataFrame:
    """The front's rows sorted by cost (for drawing it as a line), duplicates of one point kept once."""
    front = df[pareto_front(df, x, y)]
    return front.drop_duplicates(subset=[x, y]).sort_values([x, y], kind="stable")
