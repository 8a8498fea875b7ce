"""The staff usage dashboard: totals, charts, tables, a live panel, CSV exports, and a
read-only view of any conversation (to look into a failed generation)."""

from __future__ import annotations

import csv
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import wraps
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from playground.arena import leaderboard as arena
from playground.chat.models import Conversation
from playground.dashboard import queries
from playground.dashboard.models import LATENCY_METRICS, UsageRecord
from playground.dashboard.queries import PERCENTILES, Filters
from playground.generations import quotas
from playground.generations.catalogue import get_catalogue
from playground.http import json_error

RANGES = {"today": 0, "7d": 7, "30d": 30, "90d": 90}
MAX_CUSTOM_DAYS = 400
TOP_USERS_SHOWN = 20


def staff_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous → login page; signed in but not staff → 403."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied("staff only")
        return view(request, *args, **kwargs)

    return wrapped


class BadFilter(ValueError):
    pass


@dataclass(frozen=True)
class Selection:
    filters: Filters
    range: str
    username: str


def parse_filters(request: HttpRequest) -> Selection:
    """today / 7d / 30d / 90d (local days, ending now), or custom ?start=&end= (inclusive days).

    Raises BadFilter with a message a person can act on.
    """
    query = request.GET
    choice = query.get("range", "7d")
    if choice == "custom":
        try:
            first = datetime.strptime(query.get("start", ""), "%Y-%m-%d").date()
            last = datetime.strptime(query.get("end", ""), "%Y-%m-%d").date()
        except ValueError:
            raise BadFilter("Custom range: give both dates as YYYY-MM-DD.") from None
        if last < first:
            raise BadFilter("Custom range: the end date is before the start date.")
        if (last - first).days >= MAX_CUSTOM_DAYS:
            raise BadFilter(f"Custom range: at most {MAX_CUSTOM_DAYS} days.")
        start = timezone.make_aware(datetime.combine(first, time.min))
        end = timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min))
    elif choice in RANGES:
        start, end = _last_days(RANGES[choice])
    else:
        raise BadFilter(f"Unknown range {choice!r}: use today, 7d, 30d, 90d or custom.")
    username = query.get("user", "").strip()
    user_id = None
    if username:
        user_id = (
            get_user_model().objects.filter(username=username).values_list("id", flat=True).first()
        )
        if user_id is None:
            raise BadFilter(f"No user named {username!r}.")
    kind = query.get("kind", "").strip()
    if kind not in ("", *UsageRecord.Kind.values):
        choices = ", ".join(UsageRecord.Kind.values)
        raise BadFilter(f"Unknown front end {kind!r}: use one of {choices}.")
    return Selection(
        Filters(start, end, query.get("model", "").strip(), user_id, kind), choice, username
    )


def _last_days(days: int) -> tuple[datetime, datetime]:
    """From local midnight ``days`` days ago (0: today) up to and including now."""
    now = timezone.localtime()
    start = timezone.make_aware(datetime.combine(now.date() - timedelta(days=days), time.min))
    return start, now + timedelta(microseconds=1)


def _selection_or_error(request: HttpRequest) -> Selection | HttpResponse:
    try:
        return parse_filters(request)
    except BadFilter as error:
        return json_error(400, str(error))


def _rounded(value: Any) -> Any:
    """Floats to one decimal for the CSV tables; anything else as it is."""
    return round(value, 1) if isinstance(value, float) else value


@staff_only
def dashboard(request: HttpRequest) -> HttpResponse:
    try:
        selection = parse_filters(request)
        problem = ""
    except BadFilter as error:
        problem = str(error)
        selection = Selection(Filters(*_last_days(RANGES["7d"])), "7d", "")
    filters = selection.filters
    cells = queries.cells(filters)
    users = queries.user_activity(filters)
    context = {
        "selection": selection,
        "problem": problem,
        "filters": filters,
        "last_day": timezone.localtime(filters.end - timedelta(microseconds=1)),
        "time_zone": timezone.get_current_timezone_name(),
        "model_choices": sorted(set(get_catalogue()) | {c.model for c in cells.values()}),
        "totals": queries.totals(cells, users),
        "models": queries.per_model(cells, queries.feedback(filters)),
        "top_users": users.table[:TOP_USERS_SHOWN],
        "failures": queries.failures(filters),
        "front_ends": queries.by_front_end(filters),
        "kind_choices": UsageRecord.Kind.values,
        "throttled": quotas.throttled_counts(7),
        "series": queries.series(filters, cells, users),
        "percentiles": PERCENTILES,
        "arena_votes": arena.recent_votes(filters.start, filters.end),
        "arena_counts": arena.votes_per_model(filters.start, filters.end),
    }
    return render(request, "dashboard/index.html", context)


@staff_only
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"at": timezone.now().isoformat(), **queries.live_status()})


@staff_only
def conversation(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """Any user's conversation, read-only, for staff following up a failure."""
    try:
        key = uuid.UUID(conversation_id)
    except ValueError:
        return json_error(404, "no such conversation")
    found = get_object_or_404(Conversation.objects.select_related("user"), pk=key)
    messages = found.messages.prefetch_related("attachments").order_by("created_at")
    return render(
        request, "dashboard/conversation.html", {"conversation": found, "messages": messages}
    )


# --- CSV ---------------------------------------------------------------------------------


class _Echo:
    def write(self, value: str) -> str:
        return value


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """Empty for None; text that a spreadsheet would run as a formula gets a leading '."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _csv(
    name: str, header: list[str], rows: Iterable[list[Any]] | AsyncIterator[list[Any]]
) -> StreamingHttpResponse:
    """A CSV download, streamed asynchronously (under ASGI Django would otherwise read a
    synchronous iterator whole into memory before sending the first byte)."""
    writer = csv.writer(_Echo())

    async def lines() -> AsyncIterator[str]:
        yield writer.writerow(header)
        if isinstance(rows, AsyncIterator):
            async for row in rows:
                yield writer.writerow([_cell(value) for value in row])
        else:
            for row in rows:
                yield writer.writerow([_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


USAGE_COLUMNS = ["finished_at", "user", "model", "kind", "finish_reason", "error_code",
                 "queue_wait_ms", "ttft_ms", "tpot_ms", "total_ms", "input_tokens",
                 "output_tokens", "vision_tokens", "images", "video_seconds",
                 "conversation_id"]  # fmt: skip


@staff_only
def export_usage_csv(request: HttpRequest) -> HttpResponse:
    """Every raw usage row in the range (streamed, oldest first)."""
    selection = _selection_or_error(request)
    if isinstance(selection, HttpResponse):
        return selection
    rows = queries.usage_rows(selection.filters).order_by("finished_at")
    fields = [c if c != "user" else "user__username" for c in USAGE_COLUMNS]

    async def values() -> AsyncIterator[list[Any]]:
        # .values(), not .values_list(): Django 5.2's aiterator() runs a values_list query
        # in the event loop's thread and refuses.
        async for row in rows.values(*fields).aiterator(chunk_size=5000):
            yield [row["finished_at"].isoformat(), *(row[f] for f in fields[1:])]

    return _csv("usage", USAGE_COLUMNS, values())


def _table_models(filters: Filters) -> tuple[list[str], list[list[Any]]]:
    rows = queries.per_model(queries.cells(filters), queries.feedback(filters))
    header = list(rows[0]) if rows else ["model"]
    return header, [[_rounded(v) for v in r.values()] for r in rows]


def _table_users(filters: Filters) -> tuple[list[str], list[list[Any]]]:
    header = ["username", "requests", "input_tokens", "output_tokens", "tokens", "errors",
              "last_at"]  # fmt: skip
    rows = queries.user_activity(filters).table
    return header, [
        [r["username"], r["requests"], r["input_tokens"], r["output_tokens"], r["tokens"],
         r["errors"], r["last_at"].isoformat()]
        for r in rows
    ]  # fmt: skip


def _table_failures(filters: Filters) -> tuple[list[str], list[list[Any]]]:
    header = ["finished_at", "username", "model", "error_code", "error_message",
              "conversation_id"]  # fmt: skip
    rows = queries.failures(filters)
    return header, [[r["finished_at"].isoformat(), *(r[k] for k in header[1:])] for r in rows]


def _table_totals(filters: Filters) -> tuple[list[str], list[list[Any]]]:
    cells = queries.cells(filters)
    totals = queries.totals(cells, queries.user_activity(filters))
    return ["measure", "value"], [[key, value] for key, value in totals.items()]


def _table_series(filters: Filters) -> tuple[list[str], list[list[Any]]]:
    cells = queries.cells(filters)
    data = queries.series(filters, cells, queries.user_activity(filters))
    starts = queries.bucket_starts(filters)
    columns: list[tuple[str, list[Any]]] = [("active_users", data["active_users"])]
    for group in ("requests", "tokens", "errors"):
        columns += [(f"{group}:{key}", values) for key, values in sorted(data[group].items())]
    for metric in LATENCY_METRICS:
        columns += [(f"{metric}_p{p}", data[metric][f"p{p}"]) for p in PERCENTILES]
    header = ["bucket_start", *(name for name, _ in columns)]
    rows = [
        [timezone.localtime(start).isoformat(), *(_rounded(values[i]) for _, values in columns)]
        for i, start in enumerate(starts)
    ]
    return header, rows


TABLES: dict[str, Callable[[Filters], tuple[list[str], list[list[Any]]]]] = {
    "totals": _table_totals,
    "models": _table_models,
    "users": _table_users,
    "failures": _table_failures,
    "series": _table_series,
}


@staff_only
def export_table(request: HttpRequest, table: str) -> HttpResponse:
    """Any dashboard table (or the chart data) for the same range and filters, as CSV."""
    if table not in TABLES:
        return json_error(404, f"no table {table!r}; tables: {', '.join(TABLES)}")
    selection = _selection_or_error(request)
    if isinstance(selection, HttpResponse):
        return selection
    header, rows = TABLES[table](selection.filters)
    return _csv(table, header, rows)
