"""``GET /metrics``: Prometheus text format, for Grafana and friends. Needs the METRICS_TOKEN."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from playground.dashboard.models import LATENCY_BINS, bin_upper_bound
from playground.dashboard.queries import Filters, by_model, cells, live_status
from playground.http import json_error

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
    models = sorted(by_model(cells(everything)).items())
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
    live = live_status()
    metric("playground_workers", "gauge", "Workers online (heartbeats), per model.")
    metric("playground_in_flight", "gauge", "Generations running in workers, per model.")
    metric("playground_queue_depth", "gauge", "Generations waiting in the broker, per model.")
    for row in live["models"]:
        name = _label(row["model"])
        lines.append(f'playground_workers{{model="{name}"}} {row["workers"]}')
        lines.append(f'playground_in_flight{{model="{name}"}} {row["in_flight"]}')
        lines.append(f'playground_queue_depth{{model="{name}"}} {row["queue_depth"]}')
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4")
