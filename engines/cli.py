"""``python -m engines``: engine tooling that needs no Django."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engines")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("backends", help="list the engine backends")
    args = parser.parse_args(argv)
    if args.command == "backends":
        from engines.registry import BACKENDS

        for name, target in sorted(BACKENDS.items()):
            print(f"{name}\t{target}")
