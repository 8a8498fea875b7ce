"""The staff dashboard's numbers equal numbers computed independently from raw rows.

Each check runs twice: with no rollups (everything read from raw rows) and after the rollups
are built (whole days, whole hours and raw edges combined); both must match the raw rows,
and each other. Percentiles are checked against exact nearest-rank values: the dashboard
reports the histogram bin's upper bound, which is never below and at most 10% above.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from playground.chat.models import Conversation, Message
from playground.dashboard import queries
from playground.dashboard.models import RollupState, UsageRecord
from playground.dashboard.queries import Filters, plan
from playground.dashboard.usage import rebuild_rollups
from tests.dashboard.test_usage import MODELS, _seed

START = datetime(2026, 11, 1, 7, 23, tzinfo=UTC)  # partial hours at both ends
END = datetime(2026, 11, 3, 15, 41, tzinfo=UTC)


def _rows(filters: Filters) -> list[UsageRecord]:
    rows = UsageRecord.objects.filter(finished_at__gte=filters.start, finished_at__lt=filters.end)
    if filters.model:
        rows = rows.filter(model=filters.model)
    if filters.user_id:
        rows = rows.filter(user_id=filters.user_id)
    return list(rows)


def _exact_percentile(values: list[float], p: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered) / 100) - 1]


def _assert_bound(reported: float | None, values: list[float], p: int) -> None:
    exact = _exact_percentile(values, p)
    if exact is None:
        assert reported is None
        return
    assert reported is not None
    assert max(exact, 1.0) <= reported <= max(exact, 1.0) * 1.1 + 1e-9, (p, exact, reported)


def _report(filters: Filters) -> dict:  # type: ignore[type-arg]
    cells = queries.cells(filters)
    users = queries.user_activity(filters)
    return {
        "totals": queries.totals(cells, users),
        "models": queries.per_model(cells, queries.feedback(filters)),
        "users": users.table,
        "series": queries.series(filters, cells, users),
    }


def _check_against_raw(filters: Filters, report: dict) -> None:  # type: ignore[type-arg]
    rows = _rows(filters)
    totals = report["totals"]
    assert totals["requests"] == len(rows)
    for field in ("input_tokens", "output_tokens", "vision_tokens", "images"):
        assert totals[field] == sum(getattr(r, field) for r in rows), field
    assert totals["video_seconds"] == pytest.approx(sum(r.video_seconds for r in rows))
    errors = [r for r in rows if r.finish_reason == "error"]
    assert totals["errors"] == len(errors)
    assert totals["error_rate"] == pytest.approx(len(errors) / len(rows))
    assert totals["active_users"] == len({r.user_id for r in rows})
    engine_s = sum(max((r.total_ms or 0) - (r.queue_wait_ms or 0), 0) for r in rows) / 1000
    assert totals["gpu_seconds"] == pytest.approx(engine_s)

    by_model = {row["model"]: row for row in report["models"]}
    assert set(by_model) == {r.model for r in rows}
    for model, row in by_model.items():
        mine = [r for r in rows if r.model == model]
        assert row["requests"] == len(mine)
        assert row["output_tokens"] == sum(r.output_tokens for r in mine)
        assert row["loops"] == sum(r.finish_reason == "loop" for r in mine)
        assert row["cancel_rate"] == pytest.approx(
            sum(r.finish_reason == "cancelled" for r in mine) / len(mine)
        )
        for metric in ("ttft_ms", "tpot_ms"):
            values = [getattr(r, metric) for r in mine if getattr(r, metric) is not None]
            for p in (50, 95, 99):
                _assert_bound(row[f"{metric}_p{p}"], values, p)

    expected_users: dict[int, dict] = defaultdict(lambda: Counter())  # type: ignore[type-arg]
    for r in rows:
        expected_users[r.user_id].update(
            requests=1, tokens=r.input_tokens + r.output_tokens, errors=r.finish_reason == "error"
        )
    got_users = {u["user_id"]: u for u in report["users"]}
    assert set(got_users) == set(expected_users)
    for user_id, expected in expected_users.items():
        got = got_users[user_id]
        assert (got["requests"], got["tokens"], got["errors"]) == (
            expected["requests"], expected["tokens"], expected["errors"],
        )  # fmt: skip
        assert got["last_at"] == max(r.finished_at for r in rows if r.user_id == user_id)

    # Series: one bucket per local day (ranges over two days) or per hour.
    series = report["series"]
    zone = timezone.get_current_timezone()

    def bucket(moment: datetime) -> datetime:
        if series["unit"] == "hour":
            return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        day = moment.astimezone(zone).date()
        return timezone.make_aware(datetime.combine(day, datetime.min.time()), zone)

    starts = queries.bucket_starts(filters)
    assert len(series["labels"]) == len(starts)
    for model in {r.model for r in rows}:
        counts = Counter(bucket(r.finished_at) for r in rows if r.model == model)
        assert series["requests"][model] == [counts.get(s, 0) for s in starts], model
    active = defaultdict(set)
    for r in rows:
        active[bucket(r.finished_at)].add(r.user_id)
    assert series["active_users"] == [len(active.get(s, ())) for s in starts]
    codes = Counter((r.error_code or "unknown", bucket(r.finished_at)) for r in errors)
    assert set(series["errors"]) == {code for code, _ in codes}
    for code, values in series["errors"].items():
        assert values == [codes.get((code, s), 0) for s in starts]
    for i, start in enumerate(starts):
        values = [
            r.ttft_ms for r in rows if r.ttft_ms is not None and bucket(r.finished_at) == start
        ]
        _assert_bound(series["ttft_ms"]["p95"][i], values, 95)


def _same(a: dict, b: dict) -> None:  # type: ignore[type-arg]
    """Reports equal up to float summation order."""
    assert a["totals"] == pytest.approx(b["totals"])
    assert a["series"] == b["series"]
    assert a["models"] == b["models"]
    assert a["users"] == b["users"]


def _seed_segment_edges(users) -> None:  # type: ignore[no-untyped-def]
    """Rows exactly where segments meet: the first whole hour, midnights, the last whole hour."""
    for moment in (datetime(2026, 11, 1, 8, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC),
                   datetime(2026, 11, 3, tzinfo=UTC), datetime(2026, 11, 3, 15, tzinfo=UTC),
                   START, END):  # fmt: skip
        for user in users:
            UsageRecord.objects.create(user=user, model="b", created_at=moment, finished_at=moment,
                                       finish_reason="stop", output_tokens=3, ttft_ms=40.0)  # fmt: skip


@pytest.mark.parametrize("which", ["all", "model", "user"])
def test_numbers_match_raw_rows_without_and_with_rollups(alice, bob, which) -> None:  # type: ignore[no-untyped-def]
    _seed([alice, bob], n=900)
    _seed_segment_edges([alice, bob])
    filters = Filters(
        START,
        END,
        model="b" if which == "model" else "",
        user_id=alice.id if which == "user" else None,
    )
    assert filters.unit == "day"
    without = _report(filters)
    _check_against_raw(filters, without)
    rebuild_rollups(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))
    # Days, hours and raw edges all take part (a one-user view has no hourly rollups).
    segments = plan(filters, days=True, hours=which != "user")
    assert segments.days and segments.raw and bool(segments.hours) == (which != "user")
    with_rollups = _report(filters)
    _check_against_raw(filters, with_rollups)
    _same(without, with_rollups)
    # With the rollups complete only up to a mark inside the range, the rest is read raw.
    RollupState.objects.filter(pk=1).update(complete_until=datetime(2026, 11, 2, 10, tzinfo=UTC))
    assert plan(filters, days=True).raw[0] == (datetime(2026, 11, 2, 10, tzinfo=UTC), END)
    partly = _report(filters)
    _check_against_raw(filters, partly)
    _same(without, partly)


def test_hour_buckets_for_short_ranges(alice, bob) -> None:  # type: ignore[no-untyped-def]
    _seed([alice, bob])
    rebuild_rollups(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))
    filters = Filters(
        datetime(2026, 11, 2, 3, 30, tzinfo=UTC), datetime(2026, 11, 3, 1, 10, tzinfo=UTC)
    )
    assert filters.unit == "hour"
    report = _report(filters)
    assert len(report["series"]["labels"]) == 23  # 03:00 … 01:00, partial first and last hours
    _check_against_raw(filters, report)


def test_range_edges_include_the_start_and_exclude_the_end(alice) -> None:  # type: ignore[no-untyped-def]
    _seed([alice], n=50)
    at = datetime(2026, 11, 2, tzinfo=UTC)
    for moment in (at, at + timedelta(days=1)):
        UsageRecord.objects.create(user=alice, model="edge", created_at=moment, finished_at=moment,
                                   finish_reason="stop", output_tokens=5)  # fmt: skip
    filters = Filters(at, at + timedelta(days=1), model="edge")
    assert _report(filters)["totals"]["requests"] == 1
    rebuild_rollups(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))
    assert plan(filters, days=True).days  # read from the daily rollups this time
    assert _report(filters)["totals"]["requests"] == 1


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata"])
def test_days_are_local_days(alice, bob, settings, zone) -> None:  # type: ignore[no-untyped-def]
    """New York's Nov 1 2026 has 25 hours (DST ends); Kolkata's days start at :30 UTC."""
    settings.TIME_ZONE = zone
    _seed([alice, bob], n=900)
    rebuild_rollups(datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))
    local = ZoneInfo(zone)
    start = datetime(2026, 11, 1, tzinfo=local)
    filters = Filters(start, datetime(2026, 11, 4, tzinfo=local))
    assert plan(filters, days=True).days == [(start, filters.end)]
    report = _report(filters)
    assert report["series"]["labels"] == ["Nov 01", "Nov 02", "Nov 03"]
    per_day = Counter(r.finished_at.astimezone(local).date() for r in _rows(filters))
    assert (
        sum(report["series"]["requests"][m][0] for m in MODELS if m in report["series"]["requests"])
        == per_day[date(2026, 11, 1)]
    )
    _check_against_raw(filters, report)
    # Partial local days at both ends, a mark inside the range, and the filters, in this zone.
    odd = Filters(
        datetime(2026, 11, 1, 10, 15, tzinfo=local), datetime(2026, 11, 3, 16, 40, tzinfo=local)
    )
    RollupState.objects.filter(pk=1).update(complete_until=datetime(2026, 11, 3, 6, tzinfo=UTC))
    segments = plan(odd, days=True)
    assert segments.days and segments.hours and segments.raw
    for narrowed in (odd, replace(odd, model="c"), replace(odd, user_id=bob.id)):
        _check_against_raw(narrowed, _report(narrowed))
    # A mark so early that the rolled part holds no whole day but crosses a midnight
    # (in Kolkata an hourly row there straddles two local days).
    RollupState.objects.filter(pk=1).update(complete_until=datetime(2026, 11, 2, 2, tzinfo=UTC))
    assert not plan(odd, days=True).days
    _check_against_raw(odd, _report(odd))
    # Another zone's daily rollups are never used: numbers stay exact (read from raw rows).
    settings.TIME_ZONE = "UTC"
    utc = Filters(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    assert not plan(utc, days=True).days
    _check_against_raw(utc, _report(utc))


# --- the pages -------------------------------------------------------------------------

URLS = ["/dashboard/", "/dashboard/live.json", "/dashboard/usage.csv",
        "/dashboard/export/models.csv", "/dashboard/conversations/00000000-0000-0000-0000-000000000000/"]  # fmt: skip


def test_access_is_for_staff_only(client, alice) -> None:  # type: ignore[no-untyped-def]
    for url in URLS:
        anonymous = client.get(url)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"], url
    client.force_login(alice)
    for url in URLS:
        assert client.get(url).status_code == 403, url


@pytest.fixture
def staff(client, alice, bob):  # type: ignore[no-untyped-def]
    _seed([alice, bob])
    rebuild_rollups(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))
    alice.is_staff = True
    alice.save()
    client.force_login(alice)
    return client


QUERY = "?range=custom&start=2026-11-01&end=2026-11-03"


def _csv(response) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """The rows of a CSV download (streamed asynchronously, as under the ASGI server)."""
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.is_async

    async def body() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return list(csv.reader(io.StringIO(async_to_sync(body)().decode())))


def test_staff_sees_the_page_and_downloads_every_table(staff) -> None:  # type: ignore[no-untyped-def]
    page = staff.get("/dashboard/" + QUERY)
    assert page.status_code == 200
    html = page.content.decode()
    whole_days = UsageRecord.objects.filter(
        finished_at__gte=datetime(2026, 11, 1, tzinfo=UTC),
        finished_at__lt=datetime(2026, 11, 4, tzinfo=UTC),
    )
    assert f'<dd id="t-requests">{whole_days.count()}</dd>' in html
    for part in (
        'id="chart-requests"',
        'id="chart-ttft"',
        'id="series-data"',
        'id="top-users"',
        'id="failures"',
    ):
        assert part in html

    usage = _csv(staff.get("/dashboard/usage.csv" + QUERY))
    assert usage[0][:3] == ["finished_at", "user", "model"] and len(usage) - 1 == whole_days.count()
    models = _csv(staff.get("/dashboard/export/models.csv" + QUERY))
    assert models[0][:2] == ["model", "requests"]
    assert sum(int(row[1]) for row in models[1:]) == whole_days.count()
    users = _csv(staff.get("/dashboard/export/users.csv" + QUERY))
    assert {row[0] for row in users[1:]} == {"alice", "bob"}
    assert sum(int(row[1]) for row in users[1:]) == whole_days.count()
    failures = _csv(staff.get("/dashboard/export/failures.csv" + QUERY))
    errors = whole_days.filter(finish_reason="error")
    assert len(failures) - 1 == min(50, errors.count())
    newest = errors.order_by("-finished_at").first()
    assert failures[1][0] == newest.finished_at.isoformat()
    series = _csv(staff.get("/dashboard/export/series.csv" + QUERY))
    assert len(series) - 1 == 3 and series[0][:2] == ["bucket_start", "active_users"]
    totals = dict(_csv(staff.get("/dashboard/export/totals.csv" + QUERY))[1:])
    assert int(totals["requests"]) == whole_days.count()


def test_bad_filters_get_clear_errors(staff) -> None:  # type: ignore[no-untyped-def]
    for query, message in (
        ("?range=custom&start=2026-11-05&end=2026-11-01", "end date is before the start"),
        ("?range=custom&start=yesterday", "YYYY-MM-DD"),
        ("?range=forever", "Unknown range"),
        ("?user=nobody", "No user named"),
    ):
        page = staff.get("/dashboard/" + query)
        assert page.status_code == 200 and message in page.content.decode(), query
        export = staff.get("/dashboard/export/models.csv" + query)
        assert export.status_code == 400 and message in export.json()["error"]["message"]
    assert staff.get("/dashboard/export/nope.csv").status_code == 404


def test_failures_link_to_a_read_only_conversation(staff, bob) -> None:  # type: ignore[no-untyped-def]
    conversation = Conversation.objects.create(user=bob, model="a", title="bob's chat")
    Message.objects.create(
        conversation=conversation, role="user", content="<script>alert(1)</script>"
    )
    reply = Message.objects.create(conversation=conversation, role="assistant", model="a",
                                   status="error", finish_reason="error", error_code="engine_error",
                                   error_message="CUDA out of memory")  # fmt: skip
    moment = datetime(2026, 11, 3, 23, tzinfo=UTC)
    UsageRecord.objects.create(user=bob, model="a", conversation=conversation, message=reply,
                               created_at=moment, finished_at=moment, finish_reason="error",
                               error_code="engine_error")  # fmt: skip
    html = staff.get("/dashboard/" + QUERY).content.decode()
    link = f"/dashboard/conversations/{conversation.id}/"
    assert link in html and "CUDA out of memory" in html
    view = staff.get(link)
    assert view.status_code == 200
    text = view.content.decode()
    assert (
        "bob" in text
        and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        and "<script>alert" not in text
    )
    assert "<form" not in text.split("</header>")[1]  # read-only: nothing to send
    assert staff.get("/dashboard/conversations/not-a-uuid/").status_code == 404


def test_thumbs_are_counted_per_model_in_the_range(staff, alice, bob) -> None:  # type: ignore[no-untyped-def]
    from playground.chat.models import Feedback

    votes = [(alice, "a", 1), (alice, "a", -1), (bob, "a", 1), (bob, "b", -1)]
    for user, model, value in votes:
        conversation = Conversation.objects.create(user=user, model=model)
        reply = Message.objects.create(conversation=conversation, role="assistant", model=model,
                                       status="done", finish_reason="stop")  # fmt: skip
        Feedback.objects.create(message=reply, user=user, model=model, value=value)
    # Given inside the range (Nov 1-3), except one given later.
    Feedback.objects.update(created_at=datetime(2026, 11, 2, 12, tzinfo=UTC))
    Feedback.objects.filter(user=bob, model="b").update(
        created_at=datetime(2026, 11, 20, tzinfo=UTC)
    )
    models = {r[0]: r for r in _csv(staff.get("/dashboard/export/models.csv" + QUERY))}
    header = models["model"]
    up, down = header.index("thumbs_up"), header.index("thumbs_down")
    assert (models["a"][up], models["a"][down]) == ("2", "1")
    assert (models["b"][up], models["b"][down]) == ("0", "0")
    mine = {r[0]: r for r in _csv(staff.get("/dashboard/export/models.csv" + QUERY + "&user=bob"))}
    assert (mine["a"][up], mine["a"][down]) == ("1", "0")
    html = staff.get("/dashboard/" + QUERY + "&model=a").content.decode()
    assert "<td>2 / 1</td>" in html


@pytest.mark.slow
def test_the_live_panel_sees_workers_and_queues(stack, alice, client, busy_single) -> None:  # type: ignore[no-untyped-def]
    from playground.generations.service import create_conversation
    from tests.helpers import ChatSocket

    alice.is_staff = True
    alice.save()
    client.force_login(alice)
    deadline = time.monotonic() + 10
    while True:  # heartbeats report the running generation within a beat
        before = {r["model"]: r for r in client.get("/dashboard/live.json").json()["models"]}
        if before[busy_single]["in_flight"] == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert before["fake-rate"]["workers"] >= 1 and before["fake-rate"]["available"]
    assert before[busy_single]["in_flight"] == 1 and before[busy_single]["capacity"] == 0
    conversation = create_conversation(alice, busy_single)
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(conversation.id, "anyone there?")
        after = {row["model"]: row for row in client.get("/dashboard/live.json").json()["models"]}
        ws.send({"type": "stop", "generation_id": accepted["generation_id"]})
    assert after[busy_single]["queue_depth"] == before[busy_single]["queue_depth"] + 1
