"""``GET /metrics``: Prometheus text format, for Grafana and friends. Needs the METRICS_TOKEN."""

from __future__ import annotations

import hmac
from collections import defaultdict

from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse

from inference.catalogue import get_catalogue
from inference.heartbeats import list_workers
from inference.redis_clients import get_redis
from playground.dashboard.models import LATENCY_BUCKETS_MS, UsageHourly
from playground.http import json_error


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

    totals = (
        UsageHourly.objects.values("model")
        .annotate(
            requests=Sum("requests"),
            errors=Sum("errors"),
            cancelled=Sum("cancelled"),
            loops=Sum("loops"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            vision_tokens=Sum("vision_tokens"),
        )  # fmt: skip
        .order_by("model")
    )
    metric("playground_requests_total", "counter", "Generations finished (hourly rollups).")
    for row in totals:
        lines.append(
            f'playground_requests_total{{model="{_label(row["model"])}"}} {row["requests"]}'
        )
    for outcome in ("errors", "cancelled", "loops"):
        metric(f"playground_{outcome}_total", "counter", f"Generations that ended as {outcome}.")
        for row in totals:
            lines.append(
                f'playground_{outcome}_total{{model="{_label(row["model"])}"}} {row[outcome]}'
            )
    metric("playground_tokens_total", "counter", "Tokens by direction.")
    for row in totals:
        for direction in ("input", "output", "vision"):
            lines.append(
                f'playground_tokens_total{{model="{_label(row["model"])}",direction="{direction}"}} '
                f"{row[f'{direction}_tokens']}"
            )
    metric("playground_ttft_ms", "histogram", "Time to first token, milliseconds.")
    histograms: dict[str, list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))
    for model, counts in UsageHourly.objects.values_list("model", "ttft_histogram"):
        for index, count in enumerate(counts):
            histograms[model][index] += count
    for model, counts in sorted(histograms.items()):
        running = 0
        for bound, count in zip((*LATENCY_BUCKETS_MS, "+Inf"), counts, strict=True):
            running += count
            lines.append(
                f'playground_ttft_ms_bucket{{model="{_label(model)}",le="{bound}"}} {running}'
            )
        lines.append(f'playground_ttft_ms_count{{model="{_label(model)}"}} {running}')
    client = get_redis()
    workers = list_workers(client)
    metric("playground_workers", "gauge", "Workers online (heartbeats), per model.")
    metric("playground_in_flight", "gauge", "Generations running in workers, per model.")
    metric("playground_queue_depth", "gauge", "Generations waiting in the broker, per model.")
    for spec in get_catalogue().values():
        if not spec.deployed:
            continue
        mine = [w for w in workers if w.get("model") == spec.name]
        name = _label(spec.name)
        lines.append(f'playground_workers{{model="{name}"}} {len(mine)}')
        lines.append(
            f'playground_in_flight{{model="{name}"}} {sum(w.get("in_flight", 0) for w in mine)}'
        )
        lines.append(f'playground_queue_depth{{model="{name}"}} {client.llen(spec.queue)}')
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4")
