"""The CPU thread policy: one thread for a sub-GMAC model, and no more threads than the cores other processes
leave free (measured from /proc, excluding this process's own work), applied before every forward."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from tdn.network import runtime
from tdn.network.runtime import ThreadPolicy, busy_cores, set_thread_policy, thread_policy, threads_now

HOG = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"


def _settled(seconds: float = 1.2) -> float:
    busy_cores()  # starts the sampler
    time.sleep(seconds)
    value = busy_cores()
    assert value is not None, "no load sample from /proc"
    return value


def test_small_models_get_one_thread_and_large_ones_every_core() -> None:
    assert thread_policy(0.4, cores=8).threads == 1
    big = thread_policy(35.6, cores=8)
    assert (big.threads, big.cores) == (8, 8) and "35.6 GMACs" in big.reason


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_threads_follow_the_cores_others_leave_free(monkeypatch: pytest.MonkeyPatch) -> None:
    baseline = _settled()
    if baseline > 0.5:
        pytest.skip(f"the machine is busy already ({baseline:.1f} cores); the test needs it quiet")
    cores = 2
    policy = ThreadPolicy(cores, cores, "test")
    monkeypatch.setattr(runtime, "PASSIVE_WAIT", False)  # the cap is for spinning OpenMP threads
    # this process's own work does not count as load
    end = time.monotonic() + 1.2
    a = torch.randn(256, 256)
    while time.monotonic() < end:
        a = (a @ a).clamp_(-1, 1)
    assert busy_cores() < 0.5 and threads_now(policy) == cores
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(cores)]
    try:
        loaded = _settled()
        assert loaded > cores - 0.5, loaded
        assert threads_now(policy) == 1
        monkeypatch.setattr(runtime, "PASSIVE_WAIT", True)  # sleeping threads share the cores fairly: no cap
        assert threads_now(policy) == cores
        monkeypatch.setattr(runtime, "PASSIVE_WAIT", False)
        model = torch.nn.Linear(2, 2)
        torch.set_num_threads(cores)
        set_thread_policy(model, policy)
        assert runtime.use_thread_policy(model) == 1 == torch.get_num_threads()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert _settled() < 0.5 and runtime.use_thread_policy(model) == cores


PAGE_FAULTS = """
import resource, sys
from tdn.contract import prepare_process
applied = prepare_process()
import torch
def faults_of_one_forward_sized_map():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(6 << 20)  # 24 MiB, about one res2 map of TDN-R50 8f
    del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_one_forward_sized_map()
print(applied, min(faults_of_one_forward_sized_map() for _ in range(3)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc and getrusage page faults")
def test_process_policy_reuses_freed_tensor_memory() -> None:
    """With the heap policy a freed 24 MiB map is reused without new page faults; TDN_MALLOC=default opts out."""
    ours = subprocess.run([sys.executable, "-c", PAGE_FAULTS], capture_output=True, text=True, check=True)
    applied, faults = ours.stdout.split()
    if applied != "True":
        pytest.skip("not glibc: the heap policy does not apply")
    assert int(faults) < 6144 // 4, f"{faults} page faults re-allocating a freed 24 MiB tensor (6,144 pages)"
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    default = subprocess.run(
        [sys.executable, "-c", PAGE_FAULTS],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "TDN_MALLOC": "default"},
    )  # glibc's own dynamic threshold: the freed map goes back to the kernel, and returns page by page
    applied_default, faults_default = default.stdout.split()
    assert applied_default == "False"
    assert int(faults) < int(faults_default) / 4, (faults, faults_default)
