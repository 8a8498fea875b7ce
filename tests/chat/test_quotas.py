"""Per-user quotas and rate limits, on the socket, the API and uploads alike (real Redis)."""

from __future__ import annotations

import io
import time

import openai
import pytest
import requests

from playground.api.models import ApiKey
from playground.chat.models import Message
from playground.generations.models import QuotaOverride
from playground.generations.quotas import Limits, limits_for
from playground.generations.service import create_conversation
from tests.helpers import ChatSocket, logged_in_session

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def fresh_quotas(redis_client):  # type: ignore[no-untyped-def]
    for key in redis_client.scan_iter(match="quota:*"):
        redis_client.delete(key)


def _client(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=60)


def test_limits_come_from_settings_then_groups_then_the_user(alice) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group

    assert limits_for(alice) == Limits()  # the test settings: all unlimited
    strict, generous = Group.objects.create(name="strict"), Group.objects.create(name="generous")
    alice.groups.add(strict, generous)
    QuotaOverride.objects.create(group=strict, requests_per_minute=1, concurrent=1)
    QuotaOverride.objects.create(group=generous, requests_per_minute=3)
    assert limits_for(alice) == Limits(requests_per_minute=3, concurrent=1)
    QuotaOverride.objects.create(user=alice, requests_per_minute=2, tokens_per_day=100)
    assert limits_for(alice) == Limits(requests_per_minute=2, concurrent=1, tokens_per_day=100)


def test_the_socket_refuses_over_the_rate_saying_when_to_retry(stack, alice) -> None:  # type: ignore[no-untyped-def]
    QuotaOverride.objects.create(user=alice, requests_per_minute=2)
    conversation = create_conversation(alice, "fake-rate")
    with ChatSocket(stack, alice) as ws:
        for _ in range(2):
            accepted = ws.generate(conversation.id, "hi", params={"max_tokens": 2})
            ws.events_until_done(accepted["generation_id"])
        ws.send(
            {
                "type": "generate",
                "conversation_id": str(conversation.id),
                "content": "hi again",
                "params": {"max_tokens": 2},
            }
        )
        refused = ws.recv()
    assert refused["type"] == "error" and refused["code"] == "rate_limited"
    assert refused["limit"] == "requests_per_minute" and 1 <= refused["retry_after"] <= 31
    assert "at most 2 a minute" in refused["message"]
    # Nothing of the refused turn is stored.
    assert not Message.objects.filter(conversation=conversation, content="hi again").exists()
    # Staff see it on the dashboard (once both replies' usage rows are stored).
    from django.contrib.auth.models import User

    from playground.dashboard.models import UsageRecord

    deadline = time.monotonic() + 30
    while UsageRecord.objects.filter(user=alice).count() < 2 and time.monotonic() < deadline:
        time.sleep(0.2)

    staff = User.objects.create_user("staff", password="staff-pass-1", is_staff=True)
    page = logged_in_session(stack, staff).get(stack + "/dashboard/", timeout=30).text
    assert "<td>requests_per_minute</td><td>1</td>" in page
    assert "<td>chat</td><td>2</td>" in page


def test_the_api_answers_429_with_retry_after_and_frees_slots(stack, alice) -> None:  # type: ignore[no-untyped-def]
    QuotaOverride.objects.create(user=alice, concurrent=1)
    key = ApiKey.issue(alice, "q")[1]
    client = _client(stack, key)
    long_reply = client.chat.completions.create(
        model="fake-rate",
        messages=[{"role": "user", "content": "Count for long."}],
        max_tokens=3000,
        stream=True,
    )
    first = next(iter(long_reply))
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(
            model="fake-rate", messages=[{"role": "user", "content": "Hi"}], max_tokens=2
        )
    assert limited.value.status_code == 429 and limited.value.code == "concurrent"
    assert int(limited.value.response.headers["Retry-After"]) >= 1
    long_reply.close()  # the disconnect stops it; the recorder frees the slot
    reply = Message.objects.get(pk=first.id.removeprefix("chatcmpl-"))
    deadline = time.monotonic() + 30
    answer = None
    while time.monotonic() < deadline:
        try:
            answer = client.chat.completions.create(
                model="fake-rate", messages=[{"role": "user", "content": "Hi"}], max_tokens=2
            )
            break
        except openai.RateLimitError:
            time.sleep(0.5)
    assert answer is not None and answer.choices[0].message.content == "t0 t1 "
    reply.refresh_from_db()
    assert reply.status == "cancelled"


def test_the_daily_token_quota(stack, alice) -> None:  # type: ignore[no-untyped-def]
    QuotaOverride.objects.create(user=alice, tokens_per_day=20)
    client = _client(stack, ApiKey.issue(alice, "q")[1])
    used = client.chat.completions.create(
        model="fake-rate", messages=[{"role": "user", "content": "Hi"}], max_tokens=30
    )
    assert used.usage is not None and used.usage.total_tokens >= 20
    deadline = time.monotonic() + 30  # the recorder counts them once it stores the reply
    while time.monotonic() < deadline:
        try:
            client.chat.completions.create(
                model="fake-rate", messages=[{"role": "user", "content": "Hi"}], max_tokens=2
            )
            time.sleep(0.3)
        except openai.RateLimitError as exc:
            assert exc.code == "tokens_per_day" and "resets at midnight" in str(exc)
            assert int(exc.response.headers["Retry-After"]) <= 86400
            return
    pytest.fail("the daily token quota never refused")


def test_the_daily_upload_quota(stack, alice) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    QuotaOverride.objects.create(user=alice, upload_bytes_per_day=60_000)
    session = logged_in_session(stack, alice)
    token = session.get(stack + "/", timeout=30).cookies.get("csrftoken") or session.cookies.get(
        "csrftoken"
    )

    def upload(size: int) -> requests.Response:
        buffer = io.BytesIO()
        Image.effect_noise((size, size), 64).convert("RGB").save(buffer, "PNG")
        return session.post(
            stack + "/media/",
            files={"file": ("noise.png", buffer.getvalue(), "image/png")},
            headers={"X-CSRFToken": token or "", "Referer": stack + "/"},
            timeout=60,
        )

    assert upload(64).status_code == 201  # ~12 KB
    refused = upload(200)  # ~120 KB: over what is left today
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "upload quota" in refused.json()["error"]["message"]
    assert upload(64).status_code == 201  # the refused bytes were not counted
