"""Usage rows written when generations end; hourly rollups equal the raw rows; /metrics access."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Count, Sum

from inference.services import create_conversation
from playground.dashboard.models import LATENCY_BUCKETS_MS, UsageHourly, UsageRecord
from playground.dashboard.usage import bucket_index, rebuild_rollups
from tests.helpers import ChatSocket


@pytest.mark.slow
def test_a_finished_generation_writes_one_usage_row(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(conversation.id, "count", params={"max_tokens": 12})
        done = ws.events_until_done(accepted["generation_id"])[-1]
    row = UsageRecord.objects.get(message_id=accepted["generation_id"])
    assert (row.user_id, row.model, row.finish_reason) == (alice.id, "fake-rate", "length")
    assert row.output_tokens == done["usage"]["output_tokens"] == 12
    assert row.input_tokens == done["usage"]["prompt_tokens"]
    assert row.ttft_ms is not None and row.total_ms >= row.ttft_ms


@pytest.mark.slow
def test_stopping_a_queued_generation_is_counted_too(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "unserved")
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(conversation.id, "anyone?")
        ws.send({"type": "stop", "generation_id": accepted["generation_id"]})
        ws.events_until_done(accepted["generation_id"], timeout=5)
    assert (
        UsageRecord.objects.get(message_id=accepted["generation_id"]).finish_reason == "cancelled"
    )


def _seed(users, n: int = 600) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(5)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    rows = []
    for _ in range(n):
        finished = base + timedelta(
            minutes=rng.randrange(0, 60 * 24 * 3), seconds=rng.random() * 59
        )
        rows.append(
            UsageRecord(
                user=rng.choice(users),
                model=rng.choice(["a", "b", "c"]),
                created_at=finished - timedelta(seconds=3),
                finished_at=finished,
                ttft_ms=rng.choice([None, rng.uniform(5, 70_000)]),
                total_ms=rng.uniform(10, 9000),
                input_tokens=rng.randrange(0, 900),
                output_tokens=rng.randrange(0, 2000),
                vision_tokens=rng.randrange(0, 300),
                images=rng.randrange(0, 3),
                video_seconds=rng.choice([0.0, rng.uniform(1, 60)]),
                finish_reason=rng.choice(["stop", "length", "cancelled", "error", "loop"]),
            )  # fmt: skip
        )
    # Exactly on an hour edge: belongs to the hour that starts there.
    rows.append(UsageRecord(user=users[0], model="a", created_at=base, finished_at=base + timedelta(hours=5),
                            finish_reason="stop", output_tokens=7))  # fmt: skip
    UsageRecord.objects.bulk_create(rows)


def test_rollups_rebuilt_from_raw_rows_give_the_same_numbers(alice, bob) -> None:  # type: ignore[no-untyped-def]
    _seed([alice, bob])
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC)
    assert rebuild_rollups(start, end) > 0
    fields = ["input_tokens", "output_tokens", "vision_tokens", "images"]
    raw = (
        UsageRecord.objects.values("model")
        .annotate(n=Count("id"), **{f: Sum(f) for f in fields})
        .order_by("model")
    )
    rolled = (
        UsageHourly.objects.values("model")
        .annotate(n=Sum("requests"), **{f: Sum(f) for f in fields})
        .order_by("model")
    )
    assert list(raw) == list(rolled)
    for reason, column in (("error", "errors"), ("cancelled", "cancelled"), ("loop", "loops")):
        assert (
            UsageRecord.objects.filter(finish_reason=reason).count()
            == UsageHourly.objects.aggregate(s=Sum(column))["s"]
        )
    edge = UsageHourly.objects.get(hour=datetime(2026, 11, 1, 5, tzinfo=UTC), model="a", user=alice)
    assert edge.output_tokens >= 7
    # The TTFT histogram holds every row that has a TTFT, in the right bucket.
    histogram = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    for ttft in UsageRecord.objects.exclude(ttft_ms=None).values_list("ttft_ms", flat=True):
        histogram[bucket_index(ttft)] += 1
    summed = [
        sum(col)
        for col in zip(*UsageHourly.objects.values_list("ttft_histogram", flat=True), strict=True)
    ]
    assert summed == histogram
    # Rebuilding is idempotent.
    before = list(UsageHourly.objects.order_by("hour", "model", "user").values())
    rebuild_rollups(start, end)
    after = list(UsageHourly.objects.order_by("hour", "model", "user").values())
    assert [{k: v for k, v in r.items() if k != "id"} for r in before] == [
        {k: v for k, v in r.items() if k != "id"} for r in after
    ]


def test_metrics_need_the_token(client, settings, alice) -> None:  # type: ignore[no-untyped-def]
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    client.force_login(alice)  # a session is not a token
    assert client.get("/metrics").status_code == 403


def test_metrics_report_rollups_workers_and_queues(client, settings, alice) -> None:  # type: ignore[no-untyped-def]
    settings.METRICS_TOKEN = "s3cret"
    _seed([alice], n=50)
    rebuild_rollups(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    total = UsageRecord.objects.filter(model="a").count()
    assert f'playground_requests_total{{model="a"}} {total}' in text
    assert "# TYPE playground_ttft_ms histogram" in text
    assert 'playground_queue_depth{model="smollm2"}' in text
    assert 'playground_workers{model="fake-rate"}' in text
