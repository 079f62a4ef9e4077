"""The one way the browser tests and the load benchmark start ``streamlit run`` and Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling hosts this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    port: int, log: Path, env: dict[str, str] | None = None, warm: bool = True
) -> subprocess.Popen[bytes]:
    """The app on 127.0.0.1:``port``, output to ``log``: through the warm launcher (what ``./dev app``
    runs), or with ``warm=False`` by plain ``streamlit run streamlit_app.py``."""
    if warm:
        command = [
            sys.executable, "-m", "app.launch", "--server.address", "127.0.0.1", "--server.port", str(port),
            "--server.fileWatcherType=none",
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
            "--server.address", "127.0.0.1", "--server.port", str(port),
            "--browser.gatherUsageStats", "false", "--server.headless", "true",
            "--server.fileWatcherType", "none",  # edits elsewhere in the tree must not pop a "rerun?" prompt
        ]  # fmt: skip
    with log.open("w") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT
        )


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Return once the server answers its health check; raise if it exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("streamlit exited during start-up")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError("streamlit did not become healthy")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)
