"""Command line: ``python -m tdn <command> ...``.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
they are imported lazily so that ``python -m tdn profile`` never pays for Streamlit or decoding.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "profile": ("tdn.cli.profile", "params, GMACs per stage and latency of a configuration"),
    "predict": ("tdn.cli.predict", "classify a video or a folder of videos"),
    "synth": ("tdn.cli.synth", "generate the synthetic motion dataset"),
    "train": ("tdn.cli.train", "train a TDN configuration (torchrun-ready)"),
    "evaluate": ("tdn.cli.evaluate", "top-1/top-5 and confusion of a checkpoint"),
    "explain": ("tdn.cli.explain", "Grad-CAM and TDM difference maps for a video"),
    "compare": ("tdn.cli.compare", "TDN against a second model on one clip"),
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
    args = cmd_parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
