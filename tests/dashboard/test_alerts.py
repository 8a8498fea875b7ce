"""The example alert rules (docs/alerts.yml) against /metrics, and worker_error replies counted.

The other alerting series are caused for real on a private stack in tests/faults/test_ops.py.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from inference.jobs import GENERATE_TASK
from playground.chat.models import Message
from playground.dashboard.models import UsageRecord
from playground.generations.service import create_conversation
from tests.helpers import ROOT

RULES = ROOT / "docs" / "alerts.yml"
DURATION = re.compile(r"^\d+[smhd]$")


def _metrics(client, settings) -> str:  # type: ignore[no-untyped-def]
    settings.METRICS_TOKEN = "alerts"
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer alerts")
    assert response.status_code == 200
    return str(response.content.decode())


def _series_names(text: str) -> set[str]:
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_alert_rules_parse_and_every_metric_they_use_is_exported(
    client, settings, db, redis_client
) -> None:  # type: ignore[no-untyped-def]
    rules = yaml.safe_load(Path(RULES).read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(alerts) >= 8
    assert len({rule["alert"] for rule in alerts}) == len(alerts)
    exported = _series_names(_metrics(client, settings))
    used: set[str] = set()
    for rule in alerts:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert isinstance(rule["expr"], str) and rule["expr"].strip()
        assert DURATION.match(rule.get("for", "0s")), rule
        assert rule["labels"]["severity"] in ("page", "warn")
        assert rule["annotations"]["summary"]
        names = set(re.findall(r"\bplayground_[a-z_]+", rule["expr"]))
        assert names or "up{" in rule["expr"], rule
        missing = names - exported
        assert not missing, f"{rule['alert']} uses {missing}, not in /metrics"
        used |= names
    # What the issue asks an operator to be alerted on, each covered by a rule.
    for wanted in (
        "playground_replies_stuck",
        "playground_recorder_failures_total",
        "playground_reaper_failures_total",
        "playground_broker_disconnects_total",
        "playground_worker_heartbeats_lost_total",
        "playground_model_up",
        "playground_worker_errors_total",
    ):
        assert wanted in used, wanted


@pytest.mark.slow
def test_a_reply_that_ends_with_worker_error_is_counted(stack, alice, client, settings) -> None:  # type: ignore[no-untyped-def]
    from playground.celery import app

    def counted() -> int:
        text = _metrics(client, settings)
        found = re.search(r'^playground_worker_errors_total\{model="smollm2"\} (\d+)$', text, re.M)
        assert found, text
        return int(found.group(1))

    before = counted()
    conversation = create_conversation(alice, "smollm2")
    reply = Message.objects.create(
        conversation=conversation, role="assistant", status="queued", model="smollm2"
    )
    # Straight onto the worker's queue: chat options the worker passes on unchecked
    # make its prompt counting raise outside the engine (a worker bug, not a bad model).
    app.send_task(
        GENERATE_TASK,
        args=[
            {
                "generation_id": str(reply.id),
                "model": "smollm2",
                "messages": [{"role": "user", "content": "hi"}],
                "params": {"max_tokens": 4},
                "chat_options": {"tokenize": False},
            }
        ],
        queue="model.smollm2",
    )
    deadline = time.monotonic() + 60
    while not UsageRecord.objects.filter(message_id=reply.id).exists():
        assert time.monotonic() < deadline, "the reply was never stored"
        time.sleep(0.2)
    reply.refresh_from_db()
    assert (reply.status, reply.error_code) == ("error", "worker_error")
    assert counted() == before + 1
