"""Command line: ``python -m tdn <command> ...``.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
they are imported lazily so that ``python -m tdn profile`` never pays for Streamlit or decoding.
Exit codes (docs in ``tdn.cli.common``): 0 done, 2 unusable arguments or inputs, 1 a failure while
working; never a traceback unless ``TDN_TRACEBACK=1``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

from tdn.contract import prepare_process

_STARTED = time.perf_counter()
prepare_process()  # before torch loads OpenMP

COMMANDS: dict[str, tuple[str, str]] = {
    "profile": ("tdn.cli.profile", "params, GMACs per stage and latency of a configuration"),
    "predict": ("tdn.cli.predict", "classify a video or a folder of videos"),
    "synth": ("tdn.cli.synth", "generate the synthetic motion dataset"),
    "train": ("tdn.cli.train", "train a TDN configuration (torchrun-ready)"),
    "evaluate": ("tdn.cli.evaluate", "top-1/top-5 and confusion of a checkpoint"),
    "explain": ("tdn.cli.explain", "Grad-CAM and TDM difference maps for a video or a folder of videos"),
    "compare": ("tdn.cli.compare", "TDN against a second model on one video"),
    "samples": ("tdn.cli.samples", "regenerate the bundled sample clips"),
    "card": ("tdn.cli.card", "measure the demo models and write their model card"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m tdn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help or a usage error and exits
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    cmd_parser = argparse.ArgumentParser(prog=f"python -m tdn {argv[0]}", description=COMMANDS[argv[0]][1])
    module.add_arguments(cmd_parser)
    cmd_parser.add_argument(
        "--timings",
        action="store_true",
        help="print on stderr where the time went: interpreter start, imports, model, other set-up, work",
    )
    args = cmd_parser.parse_args(argv[1:])  # a bad value: usage and message on stderr, exit 2
    from tdn.cli import common

    common.mark("parsed")
    try:
        return _run(module, args)
    finally:
        if args.timings:
            print(common.timings_line(_STARTED, _interpreter_start_s()), file=sys.stderr)


def _interpreter_start_s() -> float | None:
    """Seconds from this process's start (``/proc/self/stat``) to this module's first line; None without /proc."""
    try:
        with open("/proc/self/stat") as handle:
            start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as handle:
            uptime_s = float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    alive_s = uptime_s - start_ticks / os.sysconf("SC_CLK_TCK")
    return max(0.0, alive_s - (time.perf_counter() - _STARTED))


def _run(module: object, args: argparse.Namespace) -> int:
    """The command's exit code; whatever it raises becomes one ``error:`` line (exit 2 for a
    ``UsageError``, 1 otherwise), with the traceback only when ``TDN_TRACEBACK`` is set."""
    from tdn.cli.common import UsageError, one_line

    try:
        return int(module.run(args) or 0)  # type: ignore[attr-defined]
    except UsageError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `| head`: the reader has gone; say nothing more on stdout
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:
        if os.environ.get("TDN_TRACEBACK"):
            raise
        print(f"error: {_describe(e)} (TDN_TRACEBACK=1 shows where)", file=sys.stderr)
        return 1


def _describe(error: Exception) -> str:
    """One line: the message of the errors the library raises for people; type and message otherwise."""
    from tdn.cli.common import one_line

    try:
        from tdn.network.checkpoint import CheckpointError
        from tdn.video.decode import ClipError

        for_people: tuple[type[Exception], ...] = (CheckpointError, ClipError)
    except Exception:  # the error may be that these cannot be imported
        for_people = ()
    text = one_line(error)
    if isinstance(error, for_people) and text:
        return text
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
