"""What the streaming path adds on top of the engine: throughput ratio, TTFT, frame rate.

    make bench        (or: python -m playground.devservers exec -- python bench/stream_overhead.py)

Part 1 runs N concurrent WebSocket clients (1, 8, 32) against the full path
(socket → service → Celery → worker → event log → socket) with
FakeRateEngine, a named fake that emits tokens at a fixed known rate, so the
pipeline alone is measured. Part 2 does the same with the real SmolLM2 engine
and reports aggregate tokens/s at 8 concurrent streams over a single stream
(in-flight batching). Targets: delivered/engine rate >= 0.97 at 32 streams;
added TTFT p50 <= 25 ms, p99 <= 100 ms; SmolLM2 8-stream/1-stream >= 2.5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from _stack import bench_stack

FAKE_RATE = 100.0  # tokens/s per stream, the fake's fixed rate


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def chat_socket(url: str, cookie: str) -> Any:
    """A chat WebSocket (``async with``) logged in with session ``cookie``."""
    from websockets.asyncio.client import connect

    return connect(
        url.replace("http://", "ws://") + "/ws/chat/",
        additional_headers={"Cookie": f"sessionid={cookie}"},
        origin=url,  # type: ignore[arg-type]
        max_size=None,
    )


async def generate(ws: Any, conversation_id: str, max_tokens: int, prompt: str) -> dict[str, Any]:
    """One reply on an open socket, timed, with its streamed text and every error event.

    A refused frame (an ``error`` without a generation) ends it at once; a failed
    generation's ``error`` is followed by its ``done``.
    """
    sent = time.perf_counter()
    sent_wall = time.time()
    await ws.send(
        json.dumps(
            {
                "type": "generate",
                "conversation_id": conversation_id,
                "content": prompt,
                "params": {"max_tokens": max_tokens, "temperature": 0},
            }
        )
    )
    result: dict[str, Any] = {
        "generation_id": None,
        "sent": sent,
        "sent_wall": sent_wall,
        "first": None,
        "first_wall": 0.0,
        "last": None,
        "frames": 0,
        "text": {"content": "", "reasoning": ""},
        "errors": [],
    }
    while True:
        event = json.loads(await ws.recv())
        now = time.perf_counter()
        if event["type"] == "accepted":
            result["generation_id"] = event["generation_id"]
        elif event["type"] == "delta":
            result["frames"] += 1
            result["text"][event["kind"]] += event["text"]
            if result["first"] is None:
                result["first"], result["first_wall"] = now, time.time()
            result["last"] = now
        elif event["type"] == "done":
            result.update(
                done=now, tokens=event["usage"]["output_tokens"], finish=event["finish_reason"]
            )
            return result
        elif event["type"] == "error":
            result["errors"].append(event)
            if "generation_id" not in event:
                return result


async def _one_stream(
    url: str, cookie: str, conversation_id: str, max_tokens: int, prompt: str, delay: float = 0.0
) -> dict[str, Any]:
    async with chat_socket(url, cookie) as ws:
        await asyncio.sleep(delay)
        result = await generate(ws, conversation_id, max_tokens, prompt)
    if result["errors"]:
        raise RuntimeError(result["errors"][0])
    return result


async def _run_streams(
    url: str,
    cookies: list[str],
    conversations: list[str],
    n: int,
    max_tokens: int,
    prompt: str,
    spread_s: float = 0.0,
) -> list[dict[str, Any]]:
    """N streams at once; their starts are spread evenly over ``spread_s`` (0 = one burst)."""
    return await asyncio.gather(
        *[
            _one_stream(
                url,
                cookies[i % len(cookies)],
                conversations[i],
                max_tokens,
                prompt,
                i * spread_s / n,
            )
            for i in range(n)
        ]
    )


def _setup_users(n: int, model: str) -> tuple[list[str], list[str]]:
    from django.contrib.auth.models import User

    from playground.generations.service import create_conversation
    from tests.helpers import session_cookie

    users = [User.objects.get_or_create(username=f"bench{i}")[0] for i in range(4)]
    cookies = [session_cookie(u) for u in users]
    conversations = [str(create_conversation(users[i % 4], model).id) for i in range(n)]
    return cookies, conversations


def _stages_ms(results: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Where the added TTFT goes: web (sent → stored and queued), queue (→ a worker starts
    it), delivery (the engine's first token → the client). Same machine, same wall clock."""
    from playground.chat.models import Message

    rows = {
        str(i): (c.timestamp(), s.timestamp(), f.timestamp())
        for i, c, s, f in Message.objects.filter(
            pk__in=[r["generation_id"] for r in results]
        ).values_list("id", "created_at", "started_at", "first_token_at")
        if s and f
    }
    stages: dict[str, list[float]] = {"web": [], "queue": [], "delivery": []}
    for r in results:
        if r["generation_id"] not in rows:
            continue
        created, started, first = rows[r["generation_id"]]
        stages["web"].append((created - r["sent_wall"]) * 1000)
        stages["queue"].append((started - created) * 1000)
        stages["delivery"].append((r["first_wall"] - first) * 1000)
    return stages


def _engine_ttft_ms(generation_ids: list[str]) -> dict[str, float]:
    from playground.chat.models import Message

    rows = Message.objects.filter(pk__in=generation_ids).values_list(
        "id", "started_at", "first_token_at"
    )
    return {str(i): (f - s).total_seconds() * 1000 for i, s, f in rows if s and f}


def bench_fake(url: str, concurrency: list[int], max_tokens: int, spread_s: float) -> bool:
    starts = f"starts spread over {spread_s:g} s" if spread_s else "all started at once"
    print(
        f"\n== FakeRateEngine (a named fake) at {FAKE_RATE:.0f} tokens/s per stream, "
        f"{max_tokens} tokens, {starts} =="
    )
    print(
        f"{'streams':>7} {'delivered/engine':>17} {'added TTFT p50':>15} {'p99':>8} {'frames/s/stream':>16}"
    )
    ok = True
    for n in concurrency:
        # One unmeasured round first: thread pools, database and broker connections
        # are opened on first use, and a running server has them open already.
        cookies, conversations = _setup_users(n, "fake-rate")
        asyncio.run(_run_streams(url, cookies, conversations, n, 5, "go"))
        cookies, conversations = _setup_users(n, "fake-rate")
        results = asyncio.run(
            _run_streams(url, cookies, conversations, n, max_tokens, "go", spread_s if n > 1 else 0)
        )
        engine_ttft = _engine_ttft_ms([r["generation_id"] for r in results])
        ratios, added, fps = [], [], []
        for r in results:
            # Tokens after the first arrive at the engine's rate; compare delivery with it.
            ratios.append(((r["tokens"] - 1) / (r["last"] - r["first"])) / FAKE_RATE)
            added.append((r["first"] - r["sent"]) * 1000 - engine_ttft.get(r["generation_id"], 0.0))
            fps.append(r["frames"] / (r["last"] - r["first"]))
        ratio = statistics.mean(ratios)
        p50, p99 = _percentile(added, 50), _percentile(added, 99)
        print(f"{n:>7} {ratio:>17.3f} {p50:>12.1f} ms {p99:>5.1f} ms {statistics.mean(fps):>16.1f}")
        if n == max(concurrency):
            ok &= ratio >= 0.97 and p50 <= 25 and p99 <= 100
            parts = ", ".join(
                f"{name} p50 {_percentile(v, 50):.1f} / p99 {_percentile(v, 99):.1f} ms"
                for name, v in _stages_ms(results).items()
            )
            print(f"{'':>7} where the added TTFT goes at {n} streams: {parts}")
    return ok


def bench_smollm2(url: str, max_tokens: int) -> bool:
    print(f"\n== SmolLM2-135M-Instruct (torch engine, CPU), {max_tokens} tokens per stream ==")
    prompt = "Write a long story about a lighthouse keeper."
    rates = {}
    for n in (1, 8):
        cookies, conversations = _setup_users(n, "smollm2")
        asyncio.run(_run_streams(url, cookies, conversations, n, 2, prompt))  # warm-up
        cookies, conversations = _setup_users(n, "smollm2")
        started = time.perf_counter()
        results = asyncio.run(_run_streams(url, cookies, conversations, n, max_tokens, prompt))
        wall = time.perf_counter() - started
        tokens = sum(r["tokens"] for r in results)
        engine_ttft = _engine_ttft_ms([r["generation_id"] for r in results])
        added = [(r["first"] - r["sent"]) * 1000 - engine_ttft[r["generation_id"]] for r in results]
        rates[n] = tokens / wall
        print(
            f"{n} stream(s): {tokens} tokens in {wall:.2f} s = {rates[n]:.1f} tokens/s aggregate; "
            f"added TTFT p50 {_percentile(added, 50):.1f} ms"
        )
    ratio = rates[8] / rates[1]
    print(f"aggregate(8) / single = {ratio:.2f}  (target >= 2.5)")
    return ratio >= 2.5


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--fake-tokens", type=int, default=300)
    parser.add_argument("--smollm2-tokens", type=int, default=48)
    parser.add_argument("--skip-smollm2", action="store_true")
    args = parser.parse_args()
    models = ("fake-rate",) if args.skip_smollm2 else ("fake-rate", "smollm2")
    with bench_stack(models, FAKE_RATE) as (url, _pool):
        concurrency = [int(c) for c in args.concurrency.split(",")]
        # Targets apply to streams whose starts are spread over a second (3 s streams,
        # so all N overlap); a burst of N simultaneous starts is shown for comparison.
        ok = bench_fake(url, concurrency, args.fake_tokens, spread_s=1.0)
        bench_fake(url, concurrency, args.fake_tokens, spread_s=0.0)
        if not args.skip_smollm2:
            ok &= bench_smollm2(url, args.smollm2_tokens)
    print("\nall targets met" if ok else "\nSOME TARGETS MISSED")


if __name__ == "__main__":
    main()
