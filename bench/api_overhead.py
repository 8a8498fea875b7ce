"""The OpenAI-compatible API against the chat socket, at 32 concurrent streams, in one run.

    python -m playground.devservers exec -- python bench/api_overhead.py [--streams 32]

Both go through the same generation service to the same FakeRateEngine worker (a named
fake emitting tokens at a fixed 100 tokens/s per stream), so what differs is the front
end: SSE chunks over HTTP (the official `openai` client, AsyncOpenAI) against JSON
frames over a WebSocket. Starts are spread over one second, as in
bench/stream_overhead.py. Printed: delivered tokens/s ÷ engine rate and TTFT for each,
and the ratios API ÷ socket.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from _stack import bench_stack
from stream_overhead import FAKE_RATE, _percentile, _run_streams, _setup_users


async def _one_api_stream(url: str, key: str, max_tokens: int, delay: float) -> dict[str, Any]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=120)
    # Connected first (a kept-alive connection), as the socket clients are before they
    # send: TTFT counts from the request, on both sides.
    await client.models.list()
    await asyncio.sleep(delay)
    sent = time.perf_counter()
    first = last = None
    tokens = 0
    stream = await client.chat.completions.create(
        model="fake-rate",
        messages=[{"role": "user", "content": "Count."}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        now = time.perf_counter()
        if chunk.choices and chunk.choices[0].delta.content:
            if first is None:
                first = now
            last = now
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    await client.close()
    return {"sent": sent, "first": first, "last": last, "tokens": tokens}


def _summary(results: list[dict[str, Any]]) -> dict[str, float]:
    ttft = [(r["first"] - r["sent"]) * 1000 for r in results]
    rates = [
        (r["tokens"] - 1) / (r["last"] - r["first"]) / FAKE_RATE
        for r in results
        if r["last"] > r["first"]
    ]
    return {
        "rate_ratio": statistics.mean(rates),
        "ttft_p50": _percentile(ttft, 50),
        "ttft_p99": _percentile(ttft, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=300)
    args = parser.parse_args()
    with bench_stack(("fake-rate",), FAKE_RATE) as (url, _pool):
        from django.contrib.auth.models import User

        from playground.api.models import ApiKey

        cookies, conversations = _setup_users(args.streams, "fake-rate")
        user = User.objects.get(username="bench0")
        keys = [ApiKey.issue(user, f"bench{i}")[1] for i in range(4)]
        n, spread = args.streams, 1.0
        socket = asyncio.run(
            _run_streams(url, cookies, conversations, n, args.tokens, "Count.", spread)
        )

        async def api_streams() -> list[dict[str, Any]]:
            return await asyncio.gather(
                *[
                    _one_api_stream(url, keys[i % len(keys)], args.tokens, i * spread / n)
                    for i in range(n)
                ]
            )

        api = asyncio.run(asyncio.wait_for(api_streams(), timeout=300))
        s, a = _summary(socket), _summary(api)
        print(
            f"{n} concurrent streams, {args.tokens} tokens each, FakeRateEngine at {FAKE_RATE:.0f}/s"
        )
        print(f"{'':10} {'delivered/engine':>17} {'TTFT p50 ms':>12} {'TTFT p99 ms':>12}")
        for name, row in (("socket", s), ("API (SSE)", a)):
            print(
                f"{name:10} {row['rate_ratio']:17.3f} {row['ttft_p50']:12.1f} {row['ttft_p99']:12.1f}"
            )
        print(
            f"API ÷ socket: delivered rate {a['rate_ratio'] / s['rate_ratio']:.3f}, "
            f"TTFT p50 {a['ttft_p50'] / s['ttft_p50']:.2f}×, p99 {a['ttft_p99'] / s['ttft_p99']:.2f}×"
        )


if __name__ == "__main__":
    main()
