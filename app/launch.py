"""Launch TDN Lens warm: ``python -m app.launch [streamlit options]`` (what ``./dev app`` runs).

``streamlit run streamlit_app.py`` starts cold: the first visitor pays for importing torch and
pytorch-grad-cam, loading the model, starting the decode server and the first forward and explanation.
This launcher pays all of that before the server accepts anyone: it imports, loads the default model and
its inference copy, starts the decode server, then runs the app's own first page once, headless, through
Streamlit's testing harness (``AppTest``), in this process. Models and results live in Streamlit's
process-wide caches, so the first real session finds them there. Then it hands over to Streamlit's
bootstrap, exactly as ``streamlit run`` does. Every step logs its time.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tdn.contract import prepare_process

prepare_process()  # before torch loads OpenMP (warm-up imports it)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "streamlit_app.py"
log = logging.getLogger("tdn_lens.launch")


class _Steps:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def run(self, name: str, fn: Callable[[], object]) -> object:
        t0 = time.perf_counter()
        result = fn()
        log.info("warm-up: %-34s %6.2f s", name, time.perf_counter() - t0)
        return result


def warm_up() -> float:
    """Everything the first page needs, in this process; returns the seconds it took."""
    steps = _Steps()
    steps.run("import torch", lambda: __import__("torch"))
    steps.run("import pytorch-grad-cam", lambda: __import__("pytorch_grad_cam"))
    steps.run("import the app", lambda: __import__("app.cached"))
    from app import cached
    from app.settings import demo_checkpoint, settings
    from tdn.inference import inference_copy

    config = settings()
    path = demo_checkpoint(config)
    if path is not None:
        loaded = steps.run("load the default model", lambda: cached.load_model(path, None, "auto"))
        steps.run("its inference copy", lambda: inference_copy(loaded.model))
    steps.run("start the decode server", lambda: cached.start_decoder().join())
    steps.run("first page (forward, explanation)", _first_page)
    total = time.perf_counter() - steps.start
    log.info("warm-up: done in %.1f s; starting the server", total)
    return total


def _first_page() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(SCRIPT), default_timeout=600)
    at.run()
    if at.exception:
        # The server still starts: a visitor then sees the error the page raises, as without a warm-up.
        log.warning("warm-up: the first page raised: %s", [e.value for e in at.exception])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.launch", description=__doc__.splitlines()[0])
    parser.add_argument("--server.address", dest="address", default="127.0.0.1")
    parser.add_argument("--server.port", dest="port", type=int, default=None)
    parser.add_argument("--no-warm-up", action="store_true", help="start cold, as streamlit run does")
    args, rest = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    # Outside a server, Streamlit warns once per cached function that it has no runtime yet: expected here.
    for noisy in ("streamlit.runtime.caching", "streamlit.runtime.scriptrunner_utils"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.chdir(ROOT)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the page scripts import app.* as streamlit run would allow
    if not args.no_warm_up:
        warm_up()
    from streamlit.web import bootstrap

    flags = {"server.address": args.address, "browser.gatherUsageStats": False, "server.headless": True}
    if args.port is not None:
        flags["server.port"] = args.port
    for item in rest:  # further --section.option=value flags, as streamlit run takes them
        if item.startswith("--") and "=" in item:
            key, value = item[2:].split("=", 1)
            flags[key] = value
    bootstrap.load_config_options(flag_options=flags)
    bootstrap.run(str(SCRIPT), False, [], flags)
    return 0


if __name__ == "__main__":
    sys.exit(main())
