"""Several people on the app at once: simultaneous Chromium sessions against one ``streamlit run`` server.

Starts ``streamlit run streamlit_app.py`` on 127.0.0.1 (a free port, nothing else is contacted), opens
``--sessions`` browser sessions at the same time (one Chromium, one context each, so each is its own
Streamlit session), lets each pick a different bundled clip, and checks that each gets its own correct top-1
(a clip's file name says its class; the demo TDN classifies the bundled clips correctly). One session runs
first, alone, so that the model and the decode server are loaded before the others arrive. Prints the
concurrency level, each session's latency (page load to first results, then its click to predictions and
heatmaps on screen), the errors (0 expected) and the server's memory: cold, after the warm-up session, after
the simultaneous ones. Bounded: at most 8 sessions and ``--timeout`` seconds.

Usage: ``python -m bench.bench_load [--sessions 1,4,8] [--clicks staggered|together] [--timeout 600]``: the
levels run one after the other on the same server and each prints p50/p95 of click-to-result (target: p95 ≤ 2 s
at 4 sessions, demo model). ``staggered`` (default): each session clicks once its own first page is done, so
clicks meet other sessions' first pages; ``together``: all first pages are done, then every session clicks at
once (the server runs 4 or 8 scripts at the same moment). The browsers share this machine's cores with the
server. Needs Debian's Chromium at
/usr/bin/chromium, the demo checkpoint in assets/models and the clips in assets/clips.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.appserver import CHROMIUM, CHROMIUM_ARGS, free_port, start_server, stop_server, wait_healthy

ROOT = Path(__file__).resolve().parents[1]


MAX_SESSIONS = 8
RESULTS_JS = """name => {
    const imgs = [...document.querySelectorAll('.st-key-cam_strip img')];
    const heading = document.querySelector('[data-testid="stMain"] h4');
    return heading && heading.innerText.trim().length > 0 && imgs.length > 0
        && imgs.every(i => i.alt.includes(name) && i.complete && i.naturalWidth > 0);
}"""


@dataclass
class Session:
    clip: Path
    expected: str
    first_load_s: float = float("nan")
    latency_s: float = float("nan")
    top1: str = ""
    errors: list[str] = field(default_factory=list)


def rss_mb(pid: int) -> float:
    """Resident memory of one process, in MB (0 once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants (the decode server and its children included)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += rss_mb(current)
        stack += children.get(current, [])
    return total


class Barrier:
    """Holds each session after its first page until all have one, so that the clicks start together."""

    def __init__(self, parties: int) -> None:
        self.parties, self.arrived, self.open = parties, 0, asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self.open.set()
        await self.open.wait()

    def release(self) -> None:  # a session that failed before arriving must not hold the others
        self.parties -= 1
        if self.arrived >= self.parties:
            self.open.set()


async def run_session(
    browser, url: str, session: Session, default_clip: str, timeout_ms: float, barrier: Barrier | None
) -> None:
    from app.settings import sample_label

    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(timeout_ms)  # clicks wait for a busy page as long as the run allows
    try:
        page = await context.new_page()
        page.on("pageerror", lambda error: session.errors.append(f"page error: {error}"))
        start = time.perf_counter()
        await page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
        await page.wait_for_function(RESULTS_JS, arg=default_clip, timeout=timeout_ms)
        session.first_load_s = time.perf_counter() - start
        if session.clip.name != default_clip:
            await page.wait_for_function(
                "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms
            )
            if barrier is not None:
                arrived, barrier = barrier, None
                await arrived.wait()
            start = time.perf_counter()
            await page.get_by_role("button", name=sample_label(session.clip), exact=True).click()
            await page.wait_for_function(RESULTS_JS, arg=session.clip.name, timeout=timeout_ms)
            session.latency_s = time.perf_counter() - start
        else:
            session.latency_s = session.first_load_s
        session.top1 = (await page.locator('[data-testid="stMain"] h4').first.inner_text()).strip()
        if session.top1.lower() != session.expected.lower():
            session.errors.append(f"top-1 {session.top1!r}, expected {session.expected!r}")
        shown = await page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count()
        if shown:
            session.errors.append(f"{shown} error element(s) on the page")
    except Exception as error:
        session.errors.append(f"{type(error).__name__}: {str(error).splitlines()[0]}")
    finally:
        if barrier is not None:
            barrier.release()
        await context.close()


async def drive(
    url: str, sessions: list[Session], default_clip: str, timeout_s: float, together: bool = False
) -> None:
    from playwright.async_api import async_playwright

    clicking = sum(s.clip.name != default_clip for s in sessions)
    barrier = Barrier(clicking) if together and clicking > 1 else None
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            await asyncio.wait_for(
                asyncio.gather(
                    *(run_session(browser, url, s, default_clip, timeout_s * 1000, barrier) for s in sessions)
                ),
                timeout_s,
            )
        finally:
            await browser.close()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(v for v in values if v == v)
    if not ordered:
        return float("nan")
    rank = q / 100 * (len(ordered) - 1)  # linear interpolation between closest ranks
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def main() -> None:
    from app.settings import (
        default_first,
        demo_checkpoint,
        sample_answers,
        sample_clip_files,
        sample_label,
        settings,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sessions",
        default="1,4,8",
        help=f"simultaneous sessions, one level after the other on the same server (each 1..{MAX_SESSIONS})",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for each level")
    parser.add_argument(
        "--clicks",
        choices=("staggered", "together"),
        default="staggered",
        help="staggered: each session clicks as soon as its own first page is done, while others may still be "
        "loading theirs; together: every session waits until all have their first page, then all click at once",
    )
    args = parser.parse_args()
    levels = [max(1, min(MAX_SESSIONS, int(v))) for v in str(args.sessions).split(",")]
    config = settings()
    clips = default_first(sample_clip_files(config))  # [0]: the clip a fresh page opens on
    if demo_checkpoint(config) is None or not clips or not Path(CHROMIUM).exists():
        sys.exit("needs the demo checkpoint, the bundled clips and Chromium at /usr/bin/chromium")
    answers = sample_answers(config)  # what the demo answers on each sample (samples.json), right or wrong
    expected = {c: (answers.get(c.name) or {}).get("predicted_name") or sample_label(c) for c in clips}
    others = (
        clips[1:] or clips
    )  # clicks go to clips other than the default, so each is a new decode + forward
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="tdn-load-")) / "server.log"
    server = start_server(port, log)
    print(
        f"levels {levels} on {url}; clicks {args.clicks}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    results = []
    try:
        wait_healthy(url, server, 120)
        cold, cold_tree = rss_mb(server.pid), tree_rss_mb(server.pid)
        warm_up = Session(clips[0], expected[clips[0]])
        asyncio.run(drive(url, [warm_up], clips[0].name, args.timeout))
        print(f"warm-up session: first results after {warm_up.first_load_s:.1f} s {warm_up.errors or ''}")
        before, before_tree = rss_mb(server.pid), tree_rss_mb(server.pid)
        offset = 0
        for count in levels:
            chosen = [others[(offset + i) % len(others)] for i in range(count)]
            offset += count
            sessions = [Session(clip, expected[clip]) for clip in chosen]
            start = time.perf_counter()
            asyncio.run(drive(url, sessions, clips[0].name, args.timeout, args.clicks == "together"))
            results.append((count, sessions, time.perf_counter() - start))
        after, after_tree = rss_mb(server.pid), tree_rss_mb(server.pid)
    finally:
        stop_server(server)
    print(f"{'level':>5} {'session':>7}  {'clip':42} {'first load':>10} {'click->result':>13}  top-1")
    for count, sessions, _ in results:
        for i, s in enumerate(sessions):
            mark = "ok" if not s.errors else "; ".join(s.errors)
            print(
                f"{count:>5} {i:>7}  {s.clip.name:42} {s.first_load_s:9.1f}s {s.latency_s:12.2f}s  "
                f"{s.top1 or '-'} [{mark}]"
            )
    print("\nclick -> predictions and heatmaps on screen (a clip not seen before), per level:")
    for count, sessions, wall in results:
        latencies = [s.latency_s for s in sessions]
        errors = sum(len(s.errors) for s in sessions)
        print(
            f"  {count} simultaneous: p50 {_percentile(latencies, 50):.2f} s, p95 {_percentile(latencies, 95):.2f} s, "
            f"max {max(latencies):.2f} s; first page p50 {_percentile([s.first_load_s for s in sessions], 50):.2f} s; "
            f"all done in {wall:.1f} s; errors {errors}"
        )
    print(
        f"server RSS cold {cold:.0f} MB, after warm-up {before:.0f} MB, after all levels {after:.0f} MB; "
        f"with its child processes (decode server): {cold_tree:.0f} -> {before_tree:.0f} -> {after_tree:.0f} MB"
    )
    print(f"server log: {log}")


if __name__ == "__main__":
    main()
