"""``python -m engines``: engine tooling that needs no Django."""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engines")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("backends", help="list the engine backends")
    synth = sub.add_parser(
        "synth-qwen35",
        help="write a tiny Qwen 3.5 checkpoint (real tokenizer, seeded random weights)",
    )
    synth.add_argument("out_dir", type=Path)
    synth.add_argument("--moe", action="store_true", help="routed + shared experts (qwen3_5_moe)")
    synth.add_argument("--vision", action="store_true", help="with the vision encoder")
    synth.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "backends":
        from engines.registry import BACKENDS

        for name, target in sorted(BACKENDS.items()):
            print(f"{name}\t{target}")
    elif args.command == "synth-qwen35":
        from engines.qwen35.synth import synthesise

        out = synthesise(args.out_dir, moe=args.moe, vision=args.vision, seed=args.seed)
        print(f"wrote {out}")
