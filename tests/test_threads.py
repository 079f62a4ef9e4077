"""The CPU thread policy: one thread for a sub-GMAC model, and no more threads than the cores other processes
leave free (measured from /proc, excluding this process's own work), applied before every forward."""

from __future__ import annotations

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
