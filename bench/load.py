"""Sustained load: many chat sockets streaming at once for minutes, then every reply checked.

    make bench   (or: python -m playground.devservers exec -- python bench/load.py)

Brings up the full path (bench/_stack.py: ASGI server, the fake-rate model worker,
the app worker that stores replies) with FakeRateEngine, a named fake at a fixed
known rate, admitting every stream at once. ``--streams`` clients (default 100,
spread over ``--accounts`` users) each keep one WebSocket open and ask for reply
after reply (``--tokens`` each, ``--turns`` per conversation) for ``--duration``
seconds (default 300). Every ``--sample`` seconds (default 15) it prints the
delivered rate, the errors so far, the resident memory and CPU use of this client,
the web process and each worker (with its children), and the machine's load
average. At the end it waits for the replies to be stored and checks each stored
reply (PostgreSQL) against the text its client was streamed.

Exit status 1 on any error event, failed or unfinished reply, or stored reply that
differs from what was streamed; 0 otherwise. A short smoke run
(``--duration 20 --streams 20``) runs in the test suite (tests/bench/).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import psutil
from _stack import asgi_process, bench_stack
from stream_overhead import FAKE_RATE, _percentile, chat_socket, generate

MODEL = "fake-rate"
STORE_WAIT_S = 120  # for the app worker to store the last replies


@dataclass
class Load:
    """What the streams did; the sampler reads it while they run."""

    replies: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tokens: int = 0
    load_averages: list[float] = field(default_factory=list)  # the machine's, per sample


def _usage(proc: psutil.Process) -> tuple[float, float]:
    """Resident memory (MB) and CPU time (s) of a process with its children (Celery may
    fork); for this process, without them (they are the server and workers, measured apart)."""
    rss, cpu = 0, 0.0
    children = proc.children(recursive=True) if proc.pid != os.getpid() else []
    for p in [proc, *children]:
        with contextlib.suppress(psutil.NoSuchProcess):
            rss += p.memory_info().rss
            times = p.cpu_times()
            cpu += times.user + times.system
    return rss / 2**20, cpu


def _users(accounts: int) -> tuple[list[Any], list[str]]:
    from django.contrib.auth.models import User

    from tests.helpers import session_cookie

    logging.getLogger("axes").setLevel(logging.WARNING)  # a line per login otherwise
    users = [User.objects.get_or_create(username=f"load{i}")[0] for i in range(accounts)]
    return users, [session_cookie(u) for u in users]


def _new_conversation(user: Any) -> str:
    from django.db import connection

    from playground.generations.service import create_conversation

    try:
        return str(create_conversation(user, MODEL).id)
    finally:
        connection.close()  # a pool thread: no connection left behind for the run


async def _client(
    index: int,
    url: str,
    user: Any,
    cookie: str,
    args: argparse.Namespace,
    deadline: float,
    load: Load,
) -> None:
    """One stream: one socket, reply after reply until the deadline (reconnecting on failure)."""
    await asyncio.sleep(index * 1.0 / args.streams)  # starts spread over a second
    timeout = args.tokens / FAKE_RATE * 3 + 60
    conversation, turns = "", args.turns
    while time.monotonic() < deadline:
        try:
            async with chat_socket(url, cookie) as ws:
                while time.monotonic() < deadline:
                    if turns >= args.turns:
                        conversation = await asyncio.to_thread(_new_conversation, user)
                        turns = 0
                    prompt = f"stream {index} turn {turns}: go on"
                    result = await asyncio.wait_for(
                        generate(ws, conversation, args.tokens, prompt), timeout
                    )
                    turns += 1
                    result["stream"] = index
                    for event in result["errors"]:
                        load.errors.append(f"stream {index}: {event.get('code')}: {event}")
                    if result["generation_id"] is None:  # refused: counted, nothing to check
                        await asyncio.sleep(1)
                        continue
                    load.replies.append(result)
                    load.tokens += int(result.get("tokens") or 0)
        except Exception as exc:  # the socket failed or a reply hung: count it, reconnect
            load.errors.append(f"stream {index}: {type(exc).__name__}: {exc}")
            await asyncio.sleep(1)


async def _sampler(
    every: float,
    started: float,
    load: Load,
    procs: dict[str, psutil.Process],
    memory: dict[str, list[float]],
    cpu: dict[str, list[float]],
) -> None:
    """Every ``every`` s: the rate since the last line, errors so far, each process's
    resident memory and CPU use (percent of one core since the last line)."""
    last_tokens, last_replies, last_at = 0, 0, started
    last_cpu = {name: _usage(proc)[1] for name, proc in procs.items()}
    while True:
        await asyncio.sleep(every)
        now = time.monotonic()
        span = now - last_at
        columns = []
        for name, proc in procs.items():
            mb, seconds = _usage(proc)
            memory[name].append(mb)
            cpu[name].append((seconds - last_cpu[name]) / span * 100)
            last_cpu[name] = seconds
            columns.append(f"{name} {mb:6.1f} MB {cpu[name][-1]:4.0f}%")
        load.load_averages.append(os.getloadavg()[0])
        tokens, replies = load.tokens - last_tokens, len(load.replies) - last_replies
        last_tokens, last_replies, last_at = load.tokens, len(load.replies), now
        print(
            f"{now - started:5.0f} s {tokens / span:7.0f} tokens/s {replies / span * 60:6.0f} "
            f"replies/min {len(load.errors):4d} errors | "
            + " | ".join(columns)
            + f" | load average {load.load_averages[-1]:.1f}",
            flush=True,
        )


async def _run(
    url: str,
    users: list[Any],
    cookies: list[str],
    args: argparse.Namespace,
    procs: dict[str, psutil.Process],
    memory: dict[str, list[float]],
    cpu: dict[str, list[float]],
) -> tuple[Load, float]:
    load = Load()
    started = time.monotonic()
    deadline = started + args.duration
    sampler = asyncio.create_task(_sampler(args.sample, started, load, procs, memory, cpu))
    await asyncio.gather(
        *[
            _client(i, url, users[i % len(users)], cookies[i % len(cookies)], args, deadline, load)
            for i in range(args.streams)
        ]
    )
    sampler.cancel()
    return load, time.monotonic() - started


def _check_stored(replies: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(unfinished, mismatched): each stored reply against what its client was streamed."""
    from playground.chat.models import Message

    ids = [r["generation_id"] for r in replies]
    deadline = time.monotonic() + STORE_WAIT_S
    while time.monotonic() < deadline:
        pending = Message.objects.filter(pk__in=ids).exclude(status__in=Message.TERMINAL).count()
        if not pending:
            break
        time.sleep(1)
    rows = {
        str(row["id"]): row
        for row in Message.objects.filter(pk__in=ids).values(
            "id", "status", "content", "reasoning", "output_tokens", "finish_reason"
        )
    }
    unfinished, mismatched = [], []
    for r in replies:
        row = rows.get(r["generation_id"])
        if row is None or row["status"] not in Message.TERMINAL:
            unfinished.append(f"{r['generation_id']}: {row and row['status']}")
        elif (
            row["status"] != Message.Status.DONE
            or row["finish_reason"] != r.get("finish")
            or row["content"] != r["text"]["content"]
            or row["reasoning"] != r["text"]["reasoning"]
            or row["output_tokens"] != r.get("tokens")
        ):
            mismatched.append(
                f"{r['generation_id']}: stored {row['status']} {row['finish_reason']} "
                f"{row['output_tokens']} tokens {row['content'][-40:]!r}; streamed "
                f"{r.get('finish')} {r.get('tokens')} tokens {r['text']['content'][-40:]!r}"
            )
    return unfinished, mismatched


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--duration", type=float, default=300, help="seconds")
    parser.add_argument("--tokens", type=int, default=200, help="per reply")
    parser.add_argument("--turns", type=int, default=5, help="replies per conversation")
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--sample", type=float, default=15, help="seconds between samples")
    args = parser.parse_args()
    # Every stream generating at once: the fake admits them all (its default is 64).
    os.environ["FAKE_MAX_BATCH"] = str(max(64, args.streams))
    with bench_stack((MODEL,), FAKE_RATE) as (url, pool):
        users, cookies = _users(args.accounts)
        procs = {
            "client": psutil.Process(),  # this process: the 100 sockets' end
            "web": asgi_process(url),
            "model worker": psutil.Process(pool.procs[MODEL].pid),
            "app worker": psutil.Process(pool.procs["app"].pid),
        }
        memory: dict[str, list[float]] = {name: [_usage(proc)[0]] for name, proc in procs.items()}
        cpu: dict[str, list[float]] = {name: [] for name in procs}
        print(
            f"\n== {args.streams} chat sockets for {args.duration:g} s on FakeRateEngine "
            f"({FAKE_RATE:.0f} tokens/s per reply, {args.tokens} tokens per reply, "
            f"{args.accounts} accounts) =="
        )
        print("at start: " + ", ".join(f"{name} {mb[0]:.1f} MB" for name, mb in memory.items()))
        print(
            f"every {args.sample:g} s: delivered since the last line, errors so far, each "
            "process's resident memory and CPU use (% of one core), and the machine's load "
            f"average ({os.cpu_count()} cores)",
            flush=True,
        )
        load, elapsed = asyncio.run(_run(url, users, cookies, args, procs, memory, cpu))
        for name, proc in procs.items():
            memory[name].append(_usage(proc)[0])
        unfinished, mismatched = _check_stored(load.replies)
    replies = len(load.replies)
    ttft = [(r["first"] - r["sent"]) * 1000 for r in load.replies if r["first"] is not None]
    print(
        f"\ndelivered: {load.tokens / elapsed:.0f} tokens/s, {replies / elapsed * 60:.0f} "
        f"replies/min ({replies} replies, {load.tokens} tokens in {elapsed:.1f} s; "
        f"{args.streams} x {FAKE_RATE:.0f} = {args.streams * FAKE_RATE:.0f} tokens/s while "
        f"every stream is mid-reply)"
    )
    if ttft:
        print(
            f"first token after sending: p50 {_percentile(ttft, 50):.0f} ms, "
            f"p99 {_percentile(ttft, 99):.0f} ms"
        )
    if load.load_averages:
        mean = sum(load.load_averages) / len(load.load_averages)
        print(f"machine load average over the run: {mean:.1f} ({os.cpu_count()} cores)")
    for name, values in memory.items():
        busy = f", CPU {sum(cpu[name]) / len(cpu[name]):.0f}% of a core" if cpu[name] else ""
        print(
            f"RSS {name}: start {values[0]:.1f} MB, peak {max(values):.1f} MB, "
            f"end {values[-1]:.1f} MB{busy}"
        )
    print(f"errors: {len(load.errors)}")
    for line in load.errors[:5]:
        print(f"  {line[:300]}")
    print(
        f"stored replies equal to what was streamed: {replies - len(unfinished) - len(mismatched)}"
        f" of {replies} (mismatches {len(mismatched)}, unfinished {len(unfinished)})"
    )
    for line in (mismatched + unfinished)[:5]:
        print(f"  {line}")
    ok = replies > 0 and not load.errors and not mismatched and not unfinished
    print("\nload: OK" if ok else "\nload: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
