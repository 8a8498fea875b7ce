"""Tiny Qwen 3.5 MoE (synthesised, real architecture) on the torch engine, CPU.

    .venv/bin/python bench/qwen35_engine.py

Prefill tokens/s and decode tokens/s for 1 and 8 concurrent requests in one
engine (one process, one loaded model), and the ratio aggregate(8)/single.
The engine alone is measured: no Django, Redis or sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engines.base import ChatMessage, GenerationRequest, SamplingParams  # noqa: E402
from engines.catalogue import load_catalogue  # noqa: E402
from engines.qwen35.synth import ensure_synthesised  # noqa: E402
from engines.torch_engine import TorchEngine  # noqa: E402

PROMPT = "Explain, step by step, why the sky looks blue at noon and red at sunset. " * 4


async def _one(engine: TorchEngine, rid: str, max_tokens: int) -> dict[str, float]:
    request = GenerationRequest(
        rid, [ChatMessage("user", PROMPT)], SamplingParams(temperature=0.0, max_tokens=max_tokens)
    )
    start = time.perf_counter()
    first = None
    prompt_tokens = output = 0
    async for delta in engine.stream(request):
        if first is None:
            first = time.perf_counter()
            prompt_tokens = delta.prompt_tokens
        output = delta.output_tokens
    end = time.perf_counter()
    assert first is not None
    return {"start": start, "first": first, "end": end, "prompt": prompt_tokens, "output": output}


def _measure(engine: TorchEngine, n: int, max_tokens: int) -> tuple[float, float, float]:
    async def run():  # type: ignore[no-untyped-def]
        return await asyncio.gather(*[_one(engine, f"r{n}-{i}", max_tokens) for i in range(n)])

    results = asyncio.run(run())
    # Prefill: prompt tokens over the time to each request's first token (serial prefills).
    prefill = sum(r["prompt"] for r in results) / (
        max(r["first"] for r in results) - min(r["start"] for r in results)
    )
    # Decode: tokens after the first over the span in which all requests were decoding.
    decode_span = max(r["end"] for r in results) - max(r["first"] for r in results)
    decode = sum(r["output"] - 1 for r in results) / decode_span
    single_stream = sum((r["output"] - 1) / (r["end"] - r["first"]) for r in results) / n
    return prefill, decode, single_stream


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=48)
    args = parser.parse_args()
    path = ensure_synthesised(
        ROOT / ".data" / "models" / "qwen3.5-tiny-moe-vl", moe=True, vision=True
    )
    spec = load_catalogue(
        [
            {
                "name": "qwen3.5-tiny",
                "backend": "torch",
                "path": str(path),
                "context_length": 262_144,
                "options": {"max_batch": 8},
            }
        ]
    )["qwen3.5-tiny"]
    engine = TorchEngine(spec)
    try:
        _measure(engine, 1, 4)  # warm-up
        print(
            f"tiny Qwen 3.5 MoE + vision (synthesised), torch on CPU, {args.tokens} tokens per request"
        )
        print(
            f"{'requests':>8} {'prefill tok/s':>14} {'decode tok/s (aggregate)':>25} {'per stream':>11}"
        )
        rates = {}
        for n in (1, 8):
            prefill, decode, per_stream = _measure(engine, n, args.tokens)
            rates[n] = decode
            print(f"{n:>8} {prefill:>14.0f} {decode:>25.1f} {per_stream:>11.1f}")
        print(f"decode aggregate(8) / single = {rates[8] / rates[1]:.2f}")
    finally:
        engine.close()


if __name__ == "__main__":
    main()
