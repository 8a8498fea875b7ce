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
    quantise = sub.add_parser(
        "quantize-fp8",
        help="bf16/fp16 Qwen 3.5 checkpoint → block-scale FP8 (the format of Qwen's -FP8 releases)",
    )
    quantise.add_argument("src", type=Path, help="the bf16/fp16 checkpoint folder")
    quantise.add_argument(
        "dst", type=Path, help="where to write the FP8 checkpoint (must not exist)"
    )
    compare = sub.add_parser(
        "fp8-compare",
        help="measure an FP8 checkpoint against its source (layer cosines, greedy agreement)",
    )
    compare.add_argument("src", type=Path, help="the bf16/fp16 source checkpoint")
    compare.add_argument("fp8", type=Path, help="the FP8 checkpoint made from it")
    compare.add_argument("--device", default="cpu", help="cpu or cuda (FP8 kernels)")
    compare.add_argument("--tokens", type=int, default=64, help="greedy tokens per prompt")
    compare.add_argument("--prompts", type=int, default=8, help="how many of the 8 prompts")
    compare.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    build = sub.add_parser(
        "build",
        help="write a TensorRT-LLM engine directory for a published model and GPU profile",
    )
    build.add_argument("model", help="e.g. qwen3.5-35b-a3b")
    build.add_argument("out", type=Path, help="the engine directory to write (must not exist)")
    build.add_argument("--gpu", required=True, choices=["h100", "h200", "b200"])
    build.add_argument("--gpus", type=int, default=1, help="GPU count: 1, 2, 4 or 8")
    build.add_argument("--quant", default="bf16", choices=["fp8", "bf16"])
    build.add_argument("--checkpoint", type=Path, help="the checkpoint folder to link")
    build.add_argument(
        "--mtp", action="store_true", help="MTP speculative decoding (one draft token per step)"
    )
    profiles = sub.add_parser("profiles", help="the recommended GPU profile per model (markdown)")
    profiles.add_argument("--quant", default="fp8", choices=["fp8", "bf16"])
    args = parser.parse_args(argv)
    if args.command == "backends":
        from engines.registry import BACKENDS

        for name, target in sorted(BACKENDS.items()):
            print(f"{name}\t{target}")
    elif args.command == "synth-qwen35":
        from engines.qwen35.synth import synthesise

        out = synthesise(args.out_dir, moe=args.moe, vision=args.vision, seed=args.seed)
        print(f"wrote {out}")
    elif args.command == "quantize-fp8":
        import signal
        import sys

        from engines.fp8.quantize import QuantiseError, quantise_checkpoint

        # SIGTERM unwinds like Ctrl-C, so the staging folder is removed on the way out.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        try:
            summary = quantise_checkpoint(args.src, args.dst, progress=print)
        except QuantiseError as exc:
            parser.exit(2, f"error: {exc}\n")
        ratio = summary["bytes_out"] / summary["bytes_in"]
        print(
            f"wrote {args.dst}: {summary['quantised_tensors']} FP8 weights, "
            f"{summary['kept_modules']} modules kept in high precision, "
            f"{summary['bytes_out'] / 1e6:.1f} MB ({ratio:.2f} of the source)"
        )
    elif args.command == "fp8-compare":
        from engines.fp8.compare import compare_checkpoints, format_report

        report = compare_checkpoints(args.src, args.fp8, args.device, args.tokens, args.prompts)
        print(format_report(report))
        misses = report.misses()
        for miss in misses:
            print(f"MISSED {miss}")
        if args.check and misses:
            raise SystemExit(1)
    elif args.command == "build":
        from engines.trtllm.build import BuildError, build_engine_dir

        try:
            manifest = build_engine_dir(
                args.model, args.gpu, args.gpus, args.quant, args.out, args.checkpoint, args.mtp
            )
        except BuildError as exc:
            parser.exit(2, f"error: {exc}\n")
        plan = manifest["memory_plan"]
        print(
            f"wrote {args.out}: {manifest['model']} {args.quant} on {args.gpus}× {args.gpu}; "
            f"weights {plan['weights_gb_per_gpu']} GB/GPU, KV cache {plan['kv_cache_gb_per_gpu']} "
            f"GB/GPU, {plan['max_sequences']['32k']} sequences at 32K, "
            f"{plan['max_sequences']['262k']} at 262K"
        )
    elif args.command == "profiles":
        from engines.trtllm.build import profile_table

        print(profile_table(args.quant))
