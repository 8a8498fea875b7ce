"""The staff dashboard's numbers equal numbers computed from raw rows; access is staff only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.db.models import Count, Q, Sum

from playground.dashboard.models import UsageRecord
from playground.dashboard.queries import Filters, per_model, totals
from playground.dashboard.usage import rebuild_rollups
from tests.dashboard.test_usage import _seed

START = datetime(2026, 11, 1, 7, 23, tzinfo=UTC)  # partial hours at both ends
END = datetime(2026, 11, 3, 15, 41, tzinfo=UTC)


def _expected(model: str = "", user=None) -> dict:  # type: ignore[no-untyped-def, type-arg]
    rows = UsageRecord.objects.filter(finished_at__gte=START, finished_at__lt=END)
    if model:
        rows = rows.filter(model=model)
    if user:
        rows = rows.filter(user=user)
    sums = rows.aggregate(
        requests=Count("id"), errors=Count("id", filter=Q(finish_reason="error")),
        input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"),
        vision_tokens=Sum("vision_tokens"), images=Sum("images"),
    )  # fmt: skip
    sums["active_users"] = rows.values("user").distinct().count()
    return sums


@pytest.fixture
def seeded(alice, bob):  # type: ignore[no-untyped-def]
    _seed([alice, bob])
    rebuild_rollups(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))


@pytest.mark.parametrize("model", ["", "b"])
def test_totals_match_the_raw_rows_with_rollups(seeded, model) -> None:  # type: ignore[no-untyped-def]
    got = totals(Filters(START, END, model=model))
    expected = _expected(model)
    assert {key: got[key] for key in expected} == expected
    by_model = {row["model"]: row for row in per_model(Filters(START, END))}
    assert sum(row["requests"] for row in by_model.values()) == _expected()["requests"]
    assert by_model["b"]["output_tokens"] == _expected("b")["output_tokens"]


def test_a_user_filter(seeded, alice) -> None:  # type: ignore[no-untyped-def]
    got = totals(Filters(START, END, user_id=alice.id))
    assert got["requests"] == _expected(user=alice)["requests"] and got["active_users"] == 1


def test_access_is_for_staff_only(client, alice, transactional_db) -> None:  # type: ignore[no-untyped-def]
    for url in ("/dashboard/", "/dashboard/usage.csv"):
        anonymous = client.get(url)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    client.force_login(alice)
    assert client.get("/dashboard/").status_code == 403
    assert client.get("/dashboard/usage.csv").status_code == 403


def test_staff_sees_totals_and_downloads_the_rows(client, seeded, alice) -> None:  # type: ignore[no-untyped-def]
    alice.is_staff = True
    alice.save()
    client.force_login(alice)
    query = "?range=custom&start=2026-11-01&end=2026-11-03"
    page = client.get("/dashboard/" + query)
    assert page.status_code == 200
    whole_days = UsageRecord.objects.filter(
        finished_at__gte=datetime(2026, 11, 1, tzinfo=UTC),
        finished_at__lt=datetime(2026, 11, 4, tzinfo=UTC),
    )
    assert f'<dd id="t-requests">{whole_days.count()}</dd>' in page.content.decode()
    download = client.get("/dashboard/usage.csv" + query)
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows[0][:3] == ["finished_at", "user", "model"]
    assert len(rows) - 1 == whole_days.count()
