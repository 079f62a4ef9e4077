"""Published datasets: their list files (``lists``), the zoo's test protocols (``protocols``), the evaluation
engine (``evaluate``) and what it stores (``records``). The flow::

    dataset = read_dataset("something-something-v2-validation.json", root="/data/ssv2", class_names=info.class_names)
    summary = evaluate_dataset(model, info, dataset, "ss-1crop", out="runs/eval/ssv2.jsonl")
    evaluation = load_evaluation("runs/eval/ssv2.jsonl")  # what the app's Dataset page reads
"""

from tdn.datasets.evaluate import EvaluationMismatch, evaluate_dataset, load_entry
from tdn.datasets.lists import (
    DATASET_FORMATS,
    ClassIndex,
    DatasetError,
    DatasetList,
    Entry,
    Skipped,
    detect_format,
    read_dataset,
)
from tdn.datasets.protocols import PROTOCOLS, Protocol, default_protocol, fuse, get_protocol
from tdn.datasets.records import Evaluation, load_evaluation, read_jsonl, summarise, summary_path

__all__ = [
    "DATASET_FORMATS",
    "PROTOCOLS",
    "ClassIndex",
    "DatasetError",
    "DatasetList",
    "Entry",
    "Evaluation",
    "EvaluationMismatch",
    "Protocol",
    "Skipped",
    "default_protocol",
    "detect_format",
    "evaluate_dataset",
    "fuse",
    "get_protocol",
    "load_entry",
    "load_evaluation",
    "read_dataset",
    "read_jsonl",
    "summarise",
    "summary_path",
]
