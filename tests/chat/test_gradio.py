"""The Gradio demo at /gradio/, driven by gradio_client against the live ASGI server."""

from __future__ import annotations

import time

import pytest
import requests

from playground.chat.models import Conversation, Message
from playground.dashboard.models import UsageRecord
from tests.helpers import session_cookie

pytestmark = pytest.mark.slow


def _client(base: str, user):  # type: ignore[no-untyped-def]
    from gradio_client import Client

    return Client(
        base + "/gradio/",
        headers={"Cookie": f"sessionid={session_cookie(user)}"},
        verbose=False,
        download_files=False,
        analytics_enabled=False,
    )


def test_only_logged_in_users_get_the_demo(stack, alice) -> None:  # type: ignore[no-untyped-def]
    page = requests.get(stack + "/gradio/", allow_redirects=False, timeout=60)
    assert page.status_code == 302 and page.headers["Location"].startswith("/accounts/login/")
    from gradio_client import Client

    with pytest.raises(Exception):  # noqa: B017  (gradio_client raises its own types)
        Client(stack + "/gradio/", verbose=False)
    assert _client(stack, alice).view_api(return_format="dict", print_info=False)


def test_a_reply_streams_through_the_generation_service(stack, alice, tmp_path) -> None:  # type: ignore[no-untyped-def]
    client = _client(stack, alice)
    result = client.predict(
        {"text": "Count.", "files": []}, "fake-rate", False, 16, api_name="/chat"
    )
    bubbles = result if isinstance(result, list) else [result]
    assert bubbles[-1]["role"] == "assistant"
    assert bubbles[-1]["content"] == " ".join(f"t{i}" for i in range(16)) + " "
    conversation = Conversation.objects.get(user=alice, source="gradio")
    reply = Message.objects.get(conversation=conversation, role="assistant")
    assert reply.status == "done" and reply.content == bubbles[-1]["content"]
    deadline = time.monotonic() + 30
    while not UsageRecord.objects.filter(message=reply).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert UsageRecord.objects.get(message=reply).kind == "gradio"

    # An image, to the vision model, thinking on.
    from gradio_client import handle_file
    from PIL import Image

    image = tmp_path / "red.png"
    Image.new("RGB", (64, 48), (200, 20, 20)).save(image)
    client.predict(
        {"text": "What colour?", "files": [handle_file(str(image))]},
        "qwen3.5-tiny",
        True,
        16,
        api_name="/chat",
    )
    seen = Message.objects.get(
        conversation__user=alice, conversation__source="gradio", images=1, role="assistant"
    )
    assert seen.thinking and seen.status == "done"
