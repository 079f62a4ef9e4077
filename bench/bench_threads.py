"""``tdn.predict`` quiet and with other busy processes, before and after the load-aware thread policy.

Before: torch's intra-op threads fixed at every core (what a process gets by default). After: the model's
policy (:func:`tdn.network.runtime.thread_policy`: one thread below 1 GMAC a view, else every core), capped before
each forward at the cores other processes leave free (:func:`tdn.network.runtime.threads_now`) unless OpenMP's
threads wait passively (``OMP_WAIT_POLICY=PASSIVE``, what ``python -m tdn`` and the app set), where the cap is not
needed. The busy processes
are pure-Python loops, one per ``--busy``. Every figure is the median of ``--runs`` predictions of one view, all
measured in this one run; the ratio is loaded ÷ quiet of the same mode (target: ≤ 3× with two busy processes on
this 2-core machine, where a fair share alone makes any job about 2× slower).

``--wait-policies`` also runs the whole comparison once in a child with ``OMP_WAIT_POLICY=PASSIVE`` and once
without (the OpenMP runtime reads it when torch loads, so each needs its own process), one after the other.

Usage: ``python -m bench.bench_threads [--runs 15] [--busy 2] [--models demo,r50] [--wait-policies]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

from tdn import assets
from tdn.inference import predict
from tdn.network import runtime
from tdn.network.checkpoint import load_checkpoint
from tdn.network.flops import count_gmacs
from tdn.network.model import build_model
from tdn.network.runtime import busy_cores, set_thread_policy, thread_policy, usable_cores

HOG = "while True: pass\n"


def _models(names: list[str]) -> list[tuple[str, torch.nn.Module, int]]:
    out = []
    for name in names:
        if name == "demo":
            model, info = load_checkpoint(assets.DEMO_CHECKPOINT, device="cpu")
            out.append(("demo TDN (R18 x0.25, 8x112)", model, info.input_size))
        elif name == "r50":
            torch.manual_seed(0)
            out.append(("TDN-R50 8f (224)", build_model("resnet50", 8, 174, "tdn").eval(), 224))
        else:
            raise SystemExit(f"unknown model {name!r}: demo or r50")
    return out


def _median_ms(model: torch.nn.Module, x: torch.Tensor, runs: int) -> tuple[float, int]:
    predict(model, x)  # warm (and the folded copy)
    times, threads = [], set()
    for _ in range(runs):
        start = time.perf_counter()
        predict(model, x)
        times.append((time.perf_counter() - start) * 1000)
        threads.add(torch.get_num_threads())
    return statistics.median(times), max(threads)


def _with_load(count: int):  # noqa: ANN202
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(count)]
    time.sleep(1.5)  # the load sampler sees them
    return hogs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_threads", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--busy", type=int, default=2, help="busy processes for the loaded case")
    parser.add_argument("--models", default="demo,r50")
    parser.add_argument(
        "--wait-policies", action="store_true", help="PASSIVE and the default, each in a child"
    )
    args = parser.parse_args(argv)
    if args.wait_policies:
        base = [
            sys.executable,
            "-m",
            "bench.bench_threads",
            "--runs",
            str(args.runs),
            "--busy",
            str(args.busy),
        ]
        for policy in ("PASSIVE", None):
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            env |= {"OMP_WAIT_POLICY": policy} if policy else {}
            print(f"\n== OMP_WAIT_POLICY={policy or '(unset: the runtime default)'}", flush=True)
            subprocess.run([*base, "--models", args.models], env=env, check=True)
        return 0
    cores = usable_cores()
    busy_cores()
    time.sleep(1.0)
    quiet_load = busy_cores()
    print(
        f"{platform.machine()}, {cores} cores, torch {torch.__version__}, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}, passive waits assumed: {runtime.PASSIVE_WAIT}; "
        "load from others before: "
        f"{quiet_load if quiet_load is None else round(quiet_load, 2)} cores; {args.busy} busy processes when loaded"
    )
    if quiet_load is not None and quiet_load > 0.3:
        print("warning: the machine is not quiet; the quiet figures are not quiet")
    rows = []
    for label, model, size in _models(args.models.split(",")):
        x = torch.randn(1, model.num_segments * 15, size, size)
        policy = thread_policy(count_gmacs(model, size).total, cores)
        for mode in ("before", "after"):
            if mode == "before":
                runtime._policies.pop(model, None)
                torch.set_num_threads(cores)
            else:
                set_thread_policy(model, policy)
            quiet, quiet_threads = _median_ms(model, x, args.runs)
            hogs = _with_load(args.busy)
            try:
                loaded, loaded_threads = _median_ms(model, x, args.runs)
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()
            time.sleep(1.0)
            rows.append((label, mode, quiet, quiet_threads, loaded, loaded_threads))
            print(
                f"{label:28s} {mode:6s} quiet {quiet:8.1f} ms ({quiet_threads} thr)  loaded {loaded:8.1f} ms "
                f"({loaded_threads} thr)  loaded/quiet {loaded / quiet:4.1f}x",
                flush=True,
            )
    print("\nafter vs before, same run:")
    for label in dict.fromkeys(r[0] for r in rows):
        before, after = (r for r in rows if r[0] == label)
        print(
            f"  {label}: quiet {after[2] / before[2]:.2f}x of before, loaded {after[4] / before[4]:.2f}x of before; "
            f"loaded/quiet {before[4] / before[2]:.1f}x -> {after[4] / after[2]:.1f}x (target <= 3x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
