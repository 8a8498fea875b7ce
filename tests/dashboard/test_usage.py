"""Usage rows written when generations end; hourly rollups equal the raw rows; /metrics access."""

from __future__ import annotations

import io
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db.models import Count, Sum
from django.utils import timezone

from playground.dashboard.models import (
    LATENCY_BINS,
    LATENCY_METRICS,
    UsageDaily,
    UsageHourly,
    UsageRecord,
    UsageUserDaily,
    latency_bin,
)
from playground.dashboard.usage import (
    LATE_WRITE_GRACE,
    hour_floor,
    rebuild_rollups,
    refresh_rollups,
    rollup_state,
)
from playground.generations.service import create_conversation
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
def test_stopping_a_queued_generation_is_counted_too(stack, alice, busy_single) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, busy_single)
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(conversation.id, "anyone?")
        ws.send({"type": "stop", "generation_id": accepted["generation_id"]})
        ws.events_until_done(accepted["generation_id"], timeout=5)
    assert (
        UsageRecord.objects.get(message_id=accepted["generation_id"]).finish_reason == "cancelled"
    )


MODELS = ("a", "b", "c")
CODES = ("engine_error", "timeout", "")


def _seed(users, n: int = 600, base: datetime = datetime(2026, 11, 1, tzinfo=UTC), days: int = 3):  # type: ignore[no-untyped-def]
    """Random usage rows over ``days`` days from ``base``, plus rows exactly on edges."""
    rng = random.Random(5)
    rows = []
    for _ in range(n):
        finished = base + timedelta(seconds=rng.uniform(0, days * 86400))
        reason = rng.choice(["stop", "stop", "length", "cancelled", "error", "loop"])
        rows.append(
            UsageRecord(
                user=rng.choice(users),
                model=rng.choice(MODELS),
                created_at=finished - timedelta(seconds=3),
                finished_at=finished,
                queue_wait_ms=rng.choice([None, rng.lognormvariate(3, 2)]),
                ttft_ms=rng.choice([None, rng.lognormvariate(5, 1.5), rng.uniform(0, 1)]),
                tpot_ms=rng.choice([None, rng.uniform(5, 200)]),
                total_ms=rng.uniform(10, 9000),
                input_tokens=rng.randrange(0, 900),
                output_tokens=rng.randrange(0, 2000),
                vision_tokens=rng.randrange(0, 300),
                images=rng.randrange(0, 3),
                video_seconds=rng.choice([0.0, rng.uniform(1, 60)]),
                finish_reason=reason,
                error_code=rng.choice(CODES) if reason == "error" else "",
            )  # fmt: skip
        )
    # Exactly on an hour edge: belongs to the hour that starts there.
    rows.append(UsageRecord(user=users[0], model="a", created_at=base, finished_at=base + timedelta(hours=5),
                            finish_reason="stop", output_tokens=7))  # fmt: skip
    UsageRecord.objects.bulk_create(rows)


def _sums(rows, count: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    fields = ["input_tokens", "output_tokens", "vision_tokens", "images"]
    return {
        row["model"]: row
        for row in rows.values("model").annotate(n=count, **{f: Sum(f) for f in fields}).order_by()
    }


def test_rollups_rebuilt_from_raw_rows_give_the_same_numbers(alice, bob) -> None:  # type: ignore[no-untyped-def]
    _seed([alice, bob])
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC)
    assert rebuild_rollups(start, end) > 0
    raw = _sums(UsageRecord.objects.all(), Count("id"))
    assert _sums(UsageHourly.objects.all(), Sum("requests")) == raw
    assert _sums(UsageDaily.objects.all(), Sum("requests")) == raw
    expected = UsageRecord.objects.values("user").annotate(n=Count("id"), out=Sum("output_tokens"))
    for per_model in (False, True):  # the all-models rows, and the per-model rows summed
        users = (
            UsageUserDaily.objects.exclude(model="")
            if per_model
            else UsageUserDaily.objects.filter(model="")
        )
        users = users.values("user").annotate(n=Sum("requests"), out=Sum("output_tokens"))
        assert sorted(map(dict, users), key=str) == sorted(map(dict, expected), key=str)
    for reason, column in (("error", "errors"), ("cancelled", "cancelled"), ("loop", "loops")):
        count = UsageRecord.objects.filter(finish_reason=reason).count()
        assert count == UsageHourly.objects.aggregate(s=Sum(column))["s"]
        assert count == UsageDaily.objects.aggregate(s=Sum(column))["s"]
    five = datetime(2026, 11, 1, 5, tzinfo=UTC)  # the edge row belongs to the hour from 05:00
    in_hour = UsageRecord.objects.filter(
        model="a", finished_at__gte=five, finished_at__lt=five + timedelta(hours=1)
    )
    assert UsageHourly.objects.get(start=five, model="a").requests == in_hour.count()
    # Error codes and latency histograms hold every row, in the right place.
    codes = Counter()
    for row in UsageHourly.objects.all():
        codes.update(row.error_codes)
    errors = UsageRecord.objects.filter(finish_reason="error")
    assert codes == Counter(
        code or "unknown" for code in errors.values_list("error_code", flat=True)
    )
    for metric in LATENCY_METRICS:
        histogram = [0] * LATENCY_BINS
        for value in UsageRecord.objects.exclude(**{metric: None}).values_list(metric, flat=True):
            histogram[latency_bin(value)] += 1
        for rows in (
            UsageHourly.objects,
            UsageDaily.objects,
            UsageUserDaily.objects.filter(model=""),
        ):
            summed = [0] * LATENCY_BINS
            for sparse in rows.values_list(metric, flat=True):
                for index, count in sparse.items():
                    summed[int(index)] += count
            assert summed == histogram, (metric, rows.model)
    # The rollups now cover everything before the end of the rebuilt range.
    assert rollup_state().complete_until == end

    # Rebuilding is idempotent.
    def snapshot():  # type: ignore[no-untyped-def]
        return [
            [{k: v for k, v in r.items() if k != "id"} for r in table.objects.order_by("start", "model").values()]
            for table in (UsageHourly, UsageDaily)
        ]  # fmt: skip

    before = snapshot()
    rebuild_rollups(start, end)
    assert snapshot() == before


def test_a_partial_rebuild_does_not_claim_completeness(alice) -> None:  # type: ignore[no-untyped-def]
    _seed([alice])
    rebuild_rollups(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    assert rollup_state().complete_until is None  # rows before Nov 2 were never rolled up


def test_refresh_rolls_up_from_the_first_row_then_catches_late_rows(alice) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    _seed([alice], n=50, base=now - timedelta(days=2), days=1)
    refresh_rollups()
    mark = rollup_state().complete_until
    # The last hour that ended a minute before the refresh.
    assert (
        hour_floor(now - LATE_WRITE_GRACE) <= mark <= hour_floor(timezone.now() - LATE_WRITE_GRACE)
    )
    assert UsageDaily.objects.aggregate(s=Sum("requests"))["s"] == UsageRecord.objects.count()
    # A row written late (its finish time is already before the mark) lands on the next refresh.
    UsageRecord.objects.create(user=alice, model="a", created_at=mark - timedelta(minutes=30),
                               finished_at=mark - timedelta(minutes=20), finish_reason="stop")  # fmt: skip
    refresh_rollups()
    assert UsageHourly.objects.aggregate(s=Sum("requests"))["s"] == UsageRecord.objects.count()


def test_the_management_command_rebuilds_everything(alice) -> None:  # type: ignore[no-untyped-def]
    _seed([alice], n=40)
    out = io.StringIO()
    call_command("refresh_usage_rollups", "--full", stdout=out)
    assert "rollups complete until" in out.getvalue()
    assert UsageDaily.objects.aggregate(s=Sum("requests"))["s"] == UsageRecord.objects.count()


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
