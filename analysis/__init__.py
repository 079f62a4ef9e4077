"""Experiment results for TDN Lens: one table format, its loader, the official zoo and the ablation runner.

* ``analysis.schema``  the columns of a results CSV and the rule every value must follow (version 1)
* ``analysis.results`` load and validate results files (``load_results``, ``load_all``), write rows atomically
* ``analysis.zoo``     the official model zoo as results rows, with GMACs/params counted by ``tdn.network.flops``
* ``analysis.pareto``  the accuracy-vs-cost Pareto front
* ``analysis.charts``  Plotly figures and tables for the app (the app only draws what these return)
* ``analysis.ablate``  ``python -m analysis.ablate --grid GRID.json --out FILE.csv``: train, evaluate, append

May import ``tdn`` (to count FLOPs and train); never ``app`` or Streamlit.
"""
