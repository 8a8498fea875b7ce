"""Staff in a browser: the dashboard's charts draw real data, the range changes, CSV downloads."""

from __future__ import annotations

import csv
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from playground.dashboard.models import UsageRecord
from playground.dashboard.usage import refresh_rollups
from tests.dashboard.test_usage import _seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHART_TOTAL = """id => {
  const chart = Chart.getChart(id);
  return chart.data.datasets.reduce((n, d) => n + d.data.reduce((a, b) => a + (b || 0), 0), 0);
}"""


def _log_in_as_staff(page, base_url: str, user) -> None:  # type: ignore[no-untyped-def]
    user.is_staff = True
    user.save()
    page.goto(base_url + "/dashboard/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice-password-1")
    page.get_by_role("button", name="Log in").click()
    _charts_drawn(page)


def _charts_drawn(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-queue') !== undefined")


@pytest.fixture
def usage(alice, bob):  # type: ignore[no-untyped-def]
    now = timezone.now()
    _seed([alice, bob], n=300, base=now - timedelta(days=3), days=3)
    # Recent rows, some in the current hour: read raw, next to the rollups.
    _seed([alice, bob], n=20, base=now - timedelta(hours=5.5), days=0.22)
    refresh_rollups()
    return UsageRecord.objects.all()


def test_staff_sees_charts_changes_the_range_and_downloads_csv(stack, alice, usage, page) -> None:  # type: ignore[no-untyped-def]
    _log_in_as_staff(page, stack, alice)
    # Last 7 days (the default): every seeded row is drawn in the stacked requests chart.
    assert page.evaluate(CHART_TOTAL, "chart-requests") == usage.count()
    assert page.evaluate(CHART_TOTAL, "chart-users") > 0
    assert page.evaluate(CHART_TOTAL, "chart-ttft") > 0
    x_title = page.evaluate("() => Chart.getChart('chart-ttft').options.scales.x.title.text")
    assert x_title.startswith("Day (")
    assert (
        page.evaluate("() => Chart.getChart('chart-ttft').options.scales.y.title.text")
        == "Milliseconds"
    )
    # The live panel fills itself from the workers' heartbeats.
    expect(page.locator('#live-models tr[data-model="fake-rate"] td').nth(1)).not_to_have_text("0")
    page.locator("#live-workers-box summary").click()
    worker = page.locator("#live-workers tbody tr").filter(has_text="fake-rate").first
    expect(worker).to_contain_text("s ago")

    page.get_by_label("Range").select_option("today")  # submits the form
    expect(page).to_have_url(re.compile(r"range=today"))
    _charts_drawn(page)
    today = usage.filter(
        finished_at__gte=timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    )
    assert page.evaluate(CHART_TOTAL, "chart-requests") == today.count()
    assert page.evaluate(
        "() => Chart.getChart('chart-requests').options.scales.x.title.text"
    ).startswith("Hour (")

    with page.expect_download() as download:
        page.locator("#usage-csv").click()
    with open(download.value.path(), newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["finished_at", "user", "model"] and len(rows) - 1 == today.count()


def test_charts_follow_dark_mode(stack, alice, usage, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(color_scheme="dark", viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        _log_in_as_staff(page, stack, alice)
        colour = page.evaluate("() => Chart.getChart('chart-tokens').options.scales.y.title.color")
        assert colour == "#ececf1"  # app.css's dark --fg
        canvas = page.locator("#chart-tokens").bounding_box()
        assert canvas is not None and canvas["width"] > 300 and canvas["height"] > 150
    finally:
        context.close()
