"""``GET /metrics``: Prometheus text format, for Grafana and friends. Needs the METRICS_TOKEN.

Besides usage (from the rollups) it reports what an operator alerts on (example rules:
``docs/alerts.yml``, explained in ``docs/operations.md``): replies stuck queued or running,
served models without a live worker, worker heartbeats lost, ``worker_error`` replies,
recorder and reaper failures, and processes losing Redis or the broker. The last four
happen in other processes (the app worker, model workers on other hosts): those
processes count them in Redis (``inference.counters``), and this view reads the counts.
Every series an alert uses is always present, at 0 when nothing happened.
"""

from __future__ import annotations

import hmac
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from inference import counters, heartbeats, state
from inference.process import BROKER_DISCONNECTS
from inference.redis_clients import redis_url
from playground.chat.models import Message
from playground.dashboard.models import LATENCY_BINS, bin_upper_bound
from playground.dashboard.queries import Filters, by_model, cells, live_status
from playground.dashboard.usage import Cell
from playground.generations.catalogue import get_catalogue
from playground.http import json_error

# Counters kept in Redis by other processes: metric name → (counter name, help).
REDIS_COUNTERS = {
    "playground_recorder_failures_total": (
        "recorder_failures",
        "Failed attempts of the recorder (storing a finished reply; retried with back-off).",
    ),
    "playground_reaper_failures_total": (
        "reaper_failures",
        "Reaper runs that failed (closing replies nobody will finish).",
    ),
    "playground_broker_disconnects_total": (
        BROKER_DISCONNECTS,
        "Outages of Redis or the Celery broker seen by a process, counted when it is back.",
    ),
    "playground_worker_heartbeats_lost_total": (
        heartbeats.LOST_COUNTER,
        "Model workers whose heartbeat went stale without a clean stop (killed, hung, cut off).",
    ),
}
Labels = tuple[tuple[str, str], ...]
_clients: dict[str, redis.Redis] = {}

HISTOGRAMS = {
    "ttft_ms": "Time to first token, milliseconds.",
    "tpot_ms": "Time per output token, milliseconds.",
    "queue_wait_ms": "Time queued before a worker took the generation, milliseconds.",
}
# Every 8th histogram bin: bounds from 1 ms growing ~2.1x (cumulative counts are exact there).
PROMETHEUS_BINS = range(0, LATENCY_BINS - 1, 8)


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        return json_error(404, "metrics are disabled")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        return json_error(403, "bad or missing token")
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    everything = Filters(datetime(2000, 1, 1, tzinfo=UTC), timezone.now())
    served = sorted(set(settings.PLAYGROUND_SERVED_MODELS))
    summed = by_model(cells(everything))
    for model in served:  # served models are listed from the start, at 0
        summed.setdefault(model, Cell(everything.end, model))
    models = sorted(summed.items())
    metric("playground_requests_total", "counter", "Generations finished.")
    for model, cell in models:
        lines.append(f'playground_requests_total{{model="{_label(model)}"}} {cell.requests}')
    for outcome in ("errors", "cancelled", "loops"):
        metric(f"playground_{outcome}_total", "counter", f"Generations that ended as {outcome}.")
        for model, cell in models:
            lines.append(
                f'playground_{outcome}_total{{model="{_label(model)}"}} {getattr(cell, outcome)}'
            )
    metric("playground_tokens_total", "counter", "Tokens by direction.")
    for model, cell in models:
        for direction in ("input", "output", "vision"):
            lines.append(
                f'playground_tokens_total{{model="{_label(model)}",direction="{direction}"}} '
                f"{getattr(cell, f'{direction}_tokens')}"
            )
    for name, help_text in HISTOGRAMS.items():
        metric(f"playground_{name}", "histogram", help_text)
        for model, cell in models:
            cumulative = np.cumsum(cell.latency[name])
            label = _label(model)
            for index in PROMETHEUS_BINS:
                lines.append(
                    f'playground_{name}_bucket{{model="{label}",le="{bin_upper_bound(index):.6g}"}}'
                    f" {cumulative[index]}"
                )
            lines.append(f'playground_{name}_bucket{{model="{label}",le="+Inf"}} {cumulative[-1]}')
            lines.append(f'playground_{name}_count{{model="{label}"}} {cumulative[-1]}')
    metric(
        "playground_worker_errors_total",
        "counter",
        "Replies that ended with worker_error (a failure in the worker, not the engine).",
    )
    for model, cell in models:
        errors = cell.error_codes.get("worker_error", 0)
        lines.append(f'playground_worker_errors_total{{model="{_label(model)}"}} {errors}')
    metric("playground_errors_by_code_total", "counter", "Replies that ended in error, by code.")
    for model, cell in models:
        for code, count in sorted(cell.error_codes.items()):
            lines.append(
                f'playground_errors_by_code_total{{model="{_label(model)}",code="{_label(code)}"}}'
                f" {count}"
            )

    client = _redis()
    metric("playground_redis_up", "gauge", "1 when this web process reaches Redis.")
    try:
        client.ping()
    except redis.RedisError:  # the rest comes from Redis
        lines.append("playground_redis_up 0")
        return _text(lines)
    lines.append("playground_redis_up 1")

    live = live_status()
    metric("playground_workers", "gauge", "Workers online (heartbeats), per model.")
    metric("playground_in_flight", "gauge", "Generations running in workers, per model.")
    metric("playground_queue_depth", "gauge", "Generations waiting in the broker, per model.")
    for row in live["models"]:
        name = _label(row["model"])
        lines.append(f'playground_workers{{model="{name}"}} {row["workers"]}')
        lines.append(f'playground_in_flight{{model="{name}"}} {row["in_flight"]}')
        lines.append(f'playground_queue_depth{{model="{name}"}} {row["queue_depth"]}')
    live_counts = {row["model"]: row["workers"] for row in live["models"]}
    metric(
        "playground_model_up",
        "gauge",
        "1 while a served model (PLAYGROUND_SERVED_MODELS) has at least one live worker.",
    )
    for model in sorted({*served, *(m for m, n in live_counts.items() if n)}):
        lines.append(
            f'playground_model_up{{model="{_label(model)}"}} {int(live_counts.get(model, 0) > 0)}'
        )

    after = settings.METRICS_STUCK_AFTER_S
    metric(
        "playground_replies_stuck",
        "gauge",
        f"Unfinished replies older than {after:g} s (PLAYGROUND_STUCK_REPLY_S), by where they "
        "are: queued (no worker has taken them) or running (a worker claimed them).",
    )
    stuck = stuck_replies(client, after)
    for model in sorted({*served, *(m for m, _ in stuck)}):
        for where in ("queued", "running"):
            lines.append(
                f'playground_replies_stuck{{model="{_label(model)}",state="{where}"}}'
                f" {stuck.get((model, where), 0)}"
            )

    heartbeats.sweep_lost(client)  # heartbeats that went stale since the last scrape
    known = counters.read(client)
    for name, (counter, help_text) in REDIS_COUNTERS.items():
        metric(name, "counter", help_text)
        values = counters.by_name(known, counter)
        for labels in _zero_series(counter, served):  # so that rate() and alerts see them
            values.setdefault(labels, 0)
        for labels, value in sorted(values.items()):
            rendered = ",".join(f'{key}="{_label(val)}"' for key, val in labels)
            lines.append(f"{name}{{{rendered}}} {value}" if rendered else f"{name} {value}")
    return _text(lines)


def stuck_replies(client: redis.Redis, after_s: float) -> Counter[tuple[str, str]]:
    """Unfinished replies created more than ``after_s`` ago, per (model, queued|running):
    running once a worker claimed it (its owner key names the worker)."""
    cutoff = timezone.now() - timedelta(seconds=after_s)
    rows = list(
        Message.objects.filter(
            role=Message.Role.ASSISTANT,
            model__in=list(get_catalogue()),  # the (model, status, created_at) index
            status__in=(Message.Status.QUEUED, Message.Status.RUNNING),
            created_at__lt=cutoff,
        ).values_list("id", "model")[:10_000]
    )
    pipe = client.pipeline(transaction=False)
    for generation_id, _ in rows:
        pipe.get(state.owner_key(str(generation_id)))
    owners = pipe.execute() if rows else []
    stuck: Counter[tuple[str, str]] = Counter()
    for (_, model), owner in zip(rows, owners, strict=True):
        claimed = owner is not None and owner != state.STOPPED
        stuck[(model, "running" if claimed else "queued")] += 1
    return stuck


def _zero_series(counter: str, served: list[str]) -> list[Labels]:
    """The series of a Redis counter that exist before anything was counted."""
    if counter == BROKER_DISCONNECTS:  # labels in counters' (sorted) order
        processes = [("model worker", model) for model in served]
        processes += [("app worker", ""), ("beat", "")]
        return [
            (("connection", "redis"), ("model", model), ("process", process))
            for process, model in processes
        ]
    if counter == heartbeats.LOST_COUNTER:
        return [(("model", model),) for model in served]
    return [()]


def _redis() -> redis.Redis:
    """A client with short timeouts: a hung Redis must not hang the scrape."""
    url = redis_url()
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2
        )
    return _clients[url]


def _text(lines: list[str]) -> HttpResponse:
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4")
