"""The OpenAI-compatible API, driven by the official `openai` client against the live stack."""

from __future__ import annotations

import re
import time

import openai
import pytest
import requests

from playground.api.models import ApiKey
from playground.chat.models import Conversation, Message
from playground.dashboard.models import UsageRecord

pytestmark = pytest.mark.slow


@pytest.fixture
def alice_key(alice) -> str:  # type: ignore[no-untyped-def]
    return ApiKey.issue(alice, "tests")[1]


def _client(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=60)


def test_models_lists_what_is_served(stack, alice_key) -> None:  # type: ignore[no-untyped-def]
    names = {m.id for m in _client(stack, alice_key).models.list()}
    assert {"fake-rate", "qwen3.5-tiny"} <= names
    assert "unserved" not in names  # in the catalogue, but no worker serves it


def test_a_completion_and_its_usage(stack, alice, alice_key) -> None:  # type: ignore[no-untyped-def]
    client = _client(stack, alice_key)
    answer = client.chat.completions.create(
        model="fake-rate",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Count."},
        ],
        max_tokens=5,
        temperature=0.3,
        top_p=0.9,
        seed=7,
        stop=["zzz"],
        extra_body={"top_k": 12, "presence_penalty": 0.5},
    )
    choice = answer.choices[0]
    assert choice.message.content == "t0 t1 t2 t3 t4 "
    assert choice.finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 5
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 5
    # Stored as an API conversation: the history as sent, the reply as generated.
    reply = Message.objects.get(pk=answer.id.removeprefix("chatcmpl-"))
    conversation = reply.conversation
    assert conversation.source == "api" and conversation.system_prompt == "Be brief."
    assert [m.content for m in conversation.messages.order_by("created_at")] == [
        "Hi",
        "Hello!",
        "Count.",
        "t0 t1 t2 t3 t4 ",
    ]
    assert reply.params["temperature"] == 0.3 and reply.params["top_k"] == 12
    assert reply.params["seed"] == 7 and reply.params["stop"] == ["zzz"]
    assert reply.params["presence_penalty"] == 0.5 and reply.params["top_p"] == 0.9
    # Usage of kind "api", and not in the chat sidebar unless asked for.
    deadline = time.monotonic() + 30
    while not UsageRecord.objects.filter(message=reply).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert UsageRecord.objects.get(message=reply).kind == "api"
    from tests.helpers import logged_in_session

    session = logged_in_session(stack, alice)
    assert str(conversation.id) not in session.get(stack + "/", timeout=30).text
    assert str(conversation.id) in session.get(stack + "/?include=all", timeout=30).text


def test_streaming_with_usage_and_max_completion_tokens(stack, alice_key) -> None:  # type: ignore[no-untyped-def]
    stream = _client(stack, alice_key).chat.completions.create(
        model="fake-rate",
        messages=[{"role": "user", "content": "Count."}],
        max_completion_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "t0 t1 t2 t3 t4 t5 "
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6  # type: ignore[union-attr]


def test_thinking_comes_as_reasoning_content(stack, alice_key) -> None:  # type: ignore[no-untyped-def]
    client = _client(stack, alice_key)
    stream = client.chat.completions.create(
        model="qwen3.5-tiny",
        messages=[{"role": "user", "content": "Why is the sky blue?"}],
        max_tokens=8,
        temperature=0,
        stream=True,
        extra_body={"chat_template_kwargs": {"enable_thinking": True}},
    )
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in stream if c.choices
    )
    assert reasoning  # the random tiny model never closes its <think>: all of it is reasoning
    off = client.chat.completions.create(
        model="qwen3.5-tiny",
        messages=[{"role": "user", "content": "Why is the sky blue?"}],
        max_tokens=8,
        temperature=0,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    )
    assert off.choices[0].message.content and not getattr(
        off.choices[0].message, "reasoning_content", None
    )


def test_errors_come_in_openai_shape_with_the_right_status(stack, alice, alice_key) -> None:  # type: ignore[no-untyped-def]
    client = _client(stack, alice_key)
    hi = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.AuthenticationError) as bad_key:
        _client(stack, "qp-not-a-key").chat.completions.create(model="fake-rate", messages=hi)
    assert bad_key.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="no-such-model", messages=hi)
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="fake-rate", messages=hi, temperature=-1)
    assert "temperature" in str(bad.value)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="fake-rate", messages=[{"role": "assistant", "content": "x"}]
        )
    with pytest.raises(openai.APIStatusError) as too_large:
        client.chat.completions.create(
            model="fake-rate", messages=[{"role": "user", "content": "x" * 40_000}]
        )
    assert too_large.value.status_code == 413
    with pytest.raises(openai.APIStatusError) as huge_body:
        client.chat.completions.create(
            model="fake-rate", messages=[{"role": "user", "content": "x" * 3_000_000}]
        )
    assert huge_body.value.status_code == 413
    with pytest.raises(openai.InternalServerError) as unserved:
        client.chat.completions.create(model="unserved", messages=hi)
    assert unserved.value.status_code == 503 and unserved.value.code == "model_unavailable"
    # A refused request leaves nothing behind.
    assert not Conversation.objects.filter(user=alice, source="api").exists()
    raw = requests.post(
        stack + "/v1/chat/completions",
        data="{not json",
        timeout=30,
        headers={"Authorization": f"Bearer {alice_key}"},
    )
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"


def test_a_client_that_disconnects_stops_its_generation(stack, alice, alice_key) -> None:  # type: ignore[no-untyped-def]
    stream = _client(stack, alice_key).chat.completions.create(
        model="fake-rate",
        messages=[{"role": "user", "content": "Count for a long time."}],
        max_tokens=5000,
        stream=True,
    )
    completion_id = ""
    for seen, chunk in enumerate(stream, 1):
        completion_id = chunk.id
        if seen == 5:
            break
    stream.close()
    reply = Message.objects.get(pk=completion_id.removeprefix("chatcmpl-"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        reply.refresh_from_db()
        if reply.status == "cancelled":
            break
        time.sleep(0.3)
    assert reply.status == "cancelled"
    assert (reply.output_tokens or 0) < 1000  # stopped, not run to 5000 tokens


def test_keys_are_per_user_shown_once_and_revocable(stack, alice, bob) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import logged_in_session

    session = logged_in_session(stack, alice)
    page = session.get(stack + "/settings/keys/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]  # type: ignore[index]
    created = session.post(
        stack + "/settings/keys/",
        data={"action": "create", "name": "laptop", "csrfmiddlewaretoken": token},
        headers={"Referer": stack + "/settings/keys/"},
        timeout=30,
    )
    key = re.search(r'<code id="new-key">([^<]+)</code>', created.text)[1]  # type: ignore[index]
    assert key.startswith("qp-")
    listing = session.get(stack + "/settings/keys/", timeout=30).text
    assert key not in listing and key[:10] in listing  # shown once; then only its start
    row = ApiKey.objects.get(user=alice, name="laptop")
    assert row.hashed != key and key not in row.hashed

    # Bob's key works for Bob, and what it makes is Bob's.
    bob_key = ApiKey.issue(bob, "bob")[1]
    answer = _client(stack, bob_key).chat.completions.create(
        model="fake-rate", messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    assert Message.objects.get(pk=answer.id.removeprefix("chatcmpl-")).conversation.user == bob
    # Alice cannot revoke Bob's key from her page.
    bob_row = ApiKey.objects.get(user=bob)
    session.post(
        stack + "/settings/keys/",
        data={"action": "revoke", "key_id": bob_row.pk, "csrfmiddlewaretoken": token},
        headers={"Referer": stack + "/settings/keys/"},
        timeout=30,
    )
    bob_row.refresh_from_db()
    assert bob_row.revoked_at is None

    # Revoked: refused at once.
    assert _client(stack, key).models.list().data
    session.post(
        stack + "/settings/keys/",
        data={"action": "revoke", "key_id": row.pk, "csrfmiddlewaretoken": token},
        headers={"Referer": stack + "/settings/keys/"},
        timeout=30,
    )
    with pytest.raises(openai.AuthenticationError):
        _client(stack, key).models.list()


def test_operators_create_keys_on_the_command_line(stack, alice) -> None:  # type: ignore[no-untyped-def]
    from tests.chat.test_accounts import manage

    made = manage("api_key", "create", "alice", "--name", "ci")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert [m.id for m in _client(stack, key).models.list()]
    missing = manage("api_key", "create", "nobody")
    assert missing.returncode != 0 and "no user 'nobody'" in missing.stderr


def _upload_png(base: str, user, colour: tuple[int, int, int]) -> str:  # type: ignore[no-untyped-def]
    """Upload a PNG through POST /media/ as ``user``; its attachment id."""
    import base64

    from tests.helpers import logged_in_session

    session = logged_in_session(base, user)
    session.get(base + "/", timeout=30)  # the CSRF cookie
    png = base64.b64decode(_png_data_url(colour).split(",", 1)[1])
    uploaded = session.post(
        base + "/media/",
        files={"file": ("picture.png", png, "image/png")},
        headers={"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": base + "/"},
        timeout=60,
    )
    assert uploaded.status_code == 201, uploaded.text
    attachment_id: str = uploaded.json()["id"]
    return attachment_id


def _png_data_url(colour: tuple[int, int, int]) -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_images_as_data_urls_and_as_uploaded_ids(stack, alice, alice_key) -> None:  # type: ignore[no-untyped-def]

    client = _client(stack, alice_key)
    text_only = client.chat.completions.create(
        model="qwen3.5-tiny", messages=[{"role": "user", "content": "What colour?"}], max_tokens=2
    )
    answer = client.chat.completions.create(
        model="qwen3.5-tiny",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": _png_data_url((200, 20, 20))}},
                    {"type": "text", "text": "What colour?"},
                ],
            }
        ],
        max_tokens=2,
    )
    assert answer.usage.prompt_tokens > text_only.usage.prompt_tokens  # type: ignore[union-attr]
    reply = Message.objects.get(pk=answer.id.removeprefix("chatcmpl-"))
    assert reply.images == 1 and reply.parent.attachments.count() == 1  # type: ignore[union-attr]

    # An uploaded file's id, as POST /media/ returned it; an image with no text at all.
    uploaded_id = _upload_png(stack, alice, (20, 200, 20))
    by_id = client.chat.completions.create(
        model="qwen3.5-tiny",
        messages=[
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": uploaded_id}}],
            }
        ],
        max_tokens=2,
    )
    assert by_id.choices[0].finish_reason == "length"

    # Refusals: a model that cannot see, someone else's (or no) attachment, a broken file.
    picture = [{"type": "image_url", "image_url": {"url": _png_data_url((1, 2, 3))}}]
    with pytest.raises(openai.BadRequestError, match="cannot see images"):
        client.chat.completions.create(
            model="fake-rate", messages=[{"role": "user", "content": picture}]
        )
    with pytest.raises(openai.BadRequestError, match="not found"):
        client.chat.completions.create(
            model="qwen3.5-tiny",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",
                            "image_url": {"url": "00000000-0000-0000-0000-000000000000"},
                        }
                    ],
                }
            ],
        )
    with pytest.raises(openai.APIStatusError) as broken:
        client.chat.completions.create(
            model="qwen3.5-tiny",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,aGVsbG8gd29ybGQ="},
                        }
                    ],
                }
            ],
        )
    assert broken.value.status_code in (400, 415)
    with pytest.raises(openai.BadRequestError, match="not fetched"):
        client.chat.completions.create(
            model="qwen3.5-tiny",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
                    ],
                }
            ],
        )


def test_another_users_attachment_and_an_inactive_users_key(stack, alice, bob, alice_key) -> None:  # type: ignore[no-untyped-def]

    bobs = _upload_png(stack, bob, (9, 9, 200))
    # Alice's key cannot use Bob's upload: it looks missing.
    with pytest.raises(openai.BadRequestError, match="not found"):
        _client(stack, alice_key).chat.completions.create(
            model="qwen3.5-tiny",
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": bobs}}]}
            ],
        )
    # A deactivated user's keys stop working.
    alice.is_active = False
    alice.save()
    with pytest.raises(openai.AuthenticationError):
        _client(stack, alice_key).models.list()


def test_api_usage_is_filterable_on_the_dashboard(stack, alice, alice_key) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    from tests.helpers import logged_in_session

    answer = _client(stack, alice_key).chat.completions.create(
        model="fake-rate", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
    )
    reply = Message.objects.get(pk=answer.id.removeprefix("chatcmpl-"))
    deadline = time.monotonic() + 30
    while not UsageRecord.objects.filter(message=reply).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    staff = User.objects.create_user("boss", password="boss-pass-1", is_staff=True)
    session = logged_in_session(stack, staff)

    def requests_shown(query: str) -> str:
        page = session.get(stack + "/dashboard/" + query, timeout=60)
        assert page.status_code == 200, page.text[:300]
        return re.search(r'<dd id="t-requests">(\d+)</dd>', page.text)[1]  # type: ignore[index]

    assert requests_shown("?kind=api") == "1"
    assert requests_shown("?kind=chat") == "0"
    assert requests_shown("") == "1"
    assert "Unknown front end" in session.get(stack + "/dashboard/?kind=fax", timeout=60).text
    csv = session.get(stack + "/dashboard/usage.csv?kind=api", timeout=60)
    assert csv.status_code == 200 and csv.text.count("\n") == 2  # header + the one row
