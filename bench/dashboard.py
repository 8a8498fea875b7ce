"""Dashboard query speed on a year-scale table: 1,000,000 usage rows, 90 days, 500 users, 8 models.

    make bench     (or: python -m playground.devservers exec -- python bench/dashboard.py)

Seeds the bench database (COPY), builds the rollups with the same code Celery beat runs,
then times every dashboard query and the whole page (Django's view, rendered, in-process)
for 7 and 90 days, for all models, one model, and one (the busiest) user. Prints p50 / p95
per query and the slowest one. Targets: every query p95 < 150 ms; the 90-day page < 500 ms.
For scale it also times the periodic rollup refresh, and the 90-day page once with the
rollups switched off (raw rows only).

--reuse keeps an already seeded bench database (seeding takes a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from _stack import bench_database

USERS = 500
DAYS = 90
ROWS = 1_000_000


def _timed(fn: Callable[[], Any], runs: int) -> list[float]:
    fn()  # warm caches and connections
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def seed(rows: int, now: datetime) -> None:
    """Users, usage rows over DAYS days (busy users and busy hours), feedback, then rollups."""
    from django.contrib.auth.models import User
    from django.db import connection

    from engines.qwen35.family import FAMILY
    from playground.chat.models import Conversation, Feedback, Message
    from playground.dashboard.models import UsageRecord
    from playground.dashboard.usage import refresh_rollups

    rng = random.Random(7)
    models = [name.lower() for name, *_ in FAMILY][:8]
    assert len(models) == 8, models
    model_weights = [8, 6, 5, 4, 3, 2, 1, 1]
    User.objects.bulk_create(
        [User(username=f"user{i:03d}", password="!") for i in range(USERS)], batch_size=500
    )
    user_ids = list(User.objects.order_by("id").values_list("id", flat=True))
    user_weights = [1 / (rank + 1) ** 0.8 for rank in range(USERS)]  # a few heavy users
    started = time.perf_counter()
    columns = ("kind", "user_id", "model", "created_at", "finished_at", "queue_wait_ms", "ttft_ms",
               "tpot_ms", "total_ms", "input_tokens", "output_tokens", "vision_tokens", "images",
               "video_seconds", "finish_reason", "error_code")  # fmt: skip
    table = UsageRecord._meta.db_table
    users = rng.choices(user_ids, user_weights, k=rows)
    picked = rng.choices(models, model_weights, k=rows)
    copy_sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for i in range(rows):
            # Busier in working hours: rejection-sample the hour of day.
            while True:
                age = rng.random() * DAYS * 86400
                finished = now - timedelta(seconds=age)
                if rng.random() < 0.35 + 0.65 * math.sin(math.pi * finished.hour / 24) ** 2:
                    break
            roll = rng.random()
            reason = (
                    "error" if roll < 0.02 else "cancelled" if roll < 0.06
                    else "loop" if roll < 0.065 else "length" if roll < 0.2 else "stop"
                )  # fmt: skip
            output = rng.randrange(1, 1500)
            tpot = rng.lognormvariate(3.0, 0.4)
            ttft = rng.lognormvariate(5.5, 0.8)
            queue = rng.lognormvariate(2.5, 1.5)
            total = queue + ttft + tpot * output
            images = 1 if rng.random() < 0.05 else 0
            copy.write_row((
                    "chat", users[i], picked[i], finished - timedelta(milliseconds=total), finished,
                    queue, ttft if reason != "error" else None, tpot, total,
                    rng.randrange(10, 8000), output, 1200 * images, images,
                    rng.uniform(5, 120) if rng.random() < 0.01 else 0.0, reason,
                    rng.choice(["engine_error", "timeout", "oom"]) if reason == "error" else "",
                ))  # fmt: skip
    print(f"seeded {rows:,} usage rows in {time.perf_counter() - started:.0f} s")
    # Feedback on a few thousand replies (feedback needs real messages).
    conversations = Conversation.objects.bulk_create(
        [Conversation(user_id=rng.choice(user_ids[:50]), model=rng.choice(models)) for _ in range(3000)]
    )  # fmt: skip
    replies = Message.objects.bulk_create(
        [Message(conversation=c, role="assistant", model=c.model, status="done") for c in conversations]
    )  # fmt: skip
    Feedback.objects.bulk_create(
        [Feedback(message=m, user_id=m.conversation.user_id, model=m.model,
                  value=rng.choice([1, 1, 1, -1])) for m in replies]
    )  # fmt: skip
    Feedback.objects.update(created_at=now - timedelta(days=1))
    started = time.perf_counter()
    refresh_rollups(now)
    print(f"built the rollups in {time.perf_counter() - started:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    bench_database(fresh=not args.reuse)

    from django.contrib.auth.models import User
    from django.db.models import Count
    from django.test import Client
    from django.utils import timezone

    from playground.dashboard import queries
    from playground.dashboard.models import RollupState, UsageRecord
    from playground.dashboard.queries import Filters

    now = timezone.now()
    if not UsageRecord.objects.exists():
        seed(args.rows, now)
    rows = UsageRecord.objects.count()
    print(f"{rows:,} usage rows, {User.objects.count()} users; rollups complete until "
          f"{RollupState.objects.get(pk=1).complete_until:%Y-%m-%d %H:%M} UTC")  # fmt: skip

    busiest = (
        UsageRecord.objects.values("user").annotate(n=Count("id")).order_by("-n").first() or {}
    )
    busiest_model = UsageRecord.objects.values("model").annotate(n=Count("id")).order_by("-n")[0]
    staff = User.objects.create_superuser(f"bench-staff-{time.time_ns()}", password="x")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(staff)
    username = User.objects.get(pk=busiest["user"]).username

    results: list[tuple[str, float, float]] = []

    def report(name: str, samples: list[float]) -> None:
        results.append((name, statistics.median(samples), _p95(samples)))
        print(
            f"  {name:<34} p50 {statistics.median(samples):7.1f} ms   p95 {_p95(samples):7.1f} ms"
        )

    for days in (7, 90):
        start = datetime.combine((now - timedelta(days=days)).date(), datetime.min.time(), UTC)
        variants = {
            "all models": (Filters(start, now), ""),
            f"model {busiest_model['model']}": (
                Filters(start, now, model=busiest_model["model"]),
                f"&model={busiest_model['model']}",
            ),
            f"user {username} ({busiest['n']:,} rows)": (
                Filters(start, now, user_id=busiest["user"]),
                f"&user={username}",
            ),
        }
        for label, (filters, query) in variants.items():
            print(f"{days} days, {label}:")
            report(
                f"{days}d {label}: sums+latency",
                _timed(lambda f=filters: queries.cells(f), args.runs),
            )
            report(
                f"{days}d {label}: users",
                _timed(lambda f=filters: queries.user_activity(f), args.runs),
            )
            report(
                f"{days}d {label}: failures",
                _timed(lambda f=filters: queries.failures(f), args.runs),
            )
            report(
                f"{days}d {label}: thumbs", _timed(lambda f=filters: queries.feedback(f), args.runs)
            )
            url = f"/dashboard/?range={days}d{query}"

            def page(url: str = url) -> None:
                response = client.get(url)
                assert response.status_code == 200, response.status_code

            report(f"{days}d {label}: whole page", _timed(page, max(5, args.runs // 2)))
    report("live panel (Redis)", _timed(queries.live_status, args.runs))

    queries_only = [r for r in results if "whole page" not in r[0]]
    slowest = max(queries_only, key=lambda r: r[2])
    page_90 = next(r for r in results if r[0] == "90d all models: whole page")
    print()
    print(f"slowest query: {slowest[0]}, p95 {slowest[2]:.1f} ms (target < 150 ms: "
          f"{'met' if slowest[2] < 150 else 'MISSED'})")  # fmt: skip
    print(f"90-day page, all models: p50 {page_90[1]:.0f} ms, p95 {page_90[2]:.0f} ms "
          f"(target < 500 ms: {'met' if page_90[2] < 500 else 'MISSED'})")  # fmt: skip

    from playground.dashboard.usage import refresh_rollups

    refresh = _timed(refresh_rollups, 3)
    print(f"periodic rollup refresh (what Celery beat runs every 5 min): p50 "
          f"{statistics.median(refresh):.0f} ms")  # fmt: skip
    # For scale: the same page with the rollups switched off (every raw row read).
    state = RollupState.objects.get(pk=1)
    saved = state.complete_until
    RollupState.objects.filter(pk=1).update(complete_until=None)
    try:
        raw = _timed(lambda: client.get("/dashboard/?range=90d"), 1)
    finally:
        RollupState.objects.filter(pk=1).update(complete_until=saved)
    print(f"90-day page from raw rows only: {raw[0]:.0f} ms; rollups make it "
          f"{raw[0] / page_90[1]:.0f}x faster")  # fmt: skip


if __name__ == "__main__":
    main()
