"""Managing conversations over HTTP: rename, pin, list, full-text search, delete with undo,
settings, branch choice, exports and read-only share links."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from playground.chat.conversations import purge_deleted
from playground.chat.models import Conversation, Message
from tests.helpers import logged_in_session
from tests.media.files import image_bytes

PNG = image_bytes("PNG")


def _chat(user, title: str = "", turns: tuple[tuple[str, str], ...] = (("Hi", "Hello!"),), **kw):  # type: ignore[no-untyped-def]
    """A stored conversation of ``user``; its messages in order, the last one its leaf."""
    conversation = Conversation.objects.create(user=user, model="fake-rate", title=title, **kw)
    parent = None
    for question, answer in turns:
        parent = Message.objects.create(
            conversation=conversation, parent=parent, role="user", content=question
        )
        parent = Message.objects.create(
            conversation=conversation,
            parent=parent,
            role="assistant",
            content=answer,
            model="fake-rate",
        )
    conversation.current_leaf = parent
    conversation.save()
    return conversation


def _patch(client: Client, conversation: Conversation, body: object):  # type: ignore[no-untyped-def]
    return client.patch(f"/c/{conversation.id}/", json.dumps(body), content_type="application/json")


def _listed(client: Client, query: str = "") -> list[dict]:  # type: ignore[type-arg]
    response = client.get("/conversations/", {"q": query} if query else {})
    assert response.status_code == 200, response.content
    return response.json()["conversations"]


def _page_data(client: Client, url: str) -> dict:  # type: ignore[type-arg]
    html = client.get(url).content.decode()
    start = html.index('<script id="page-data" type="application/json">') + 47
    return json.loads(html[start : html.index("</script>", start)])


# --- rename, pin, list -----------------------------------------------------------------


def test_a_conversation_is_renamed_without_moving_in_the_list(client, alice) -> None:  # type: ignore[no-untyped-def]
    older = _chat(alice, "Older")
    newer = _chat(alice, "Newer")
    client.force_login(alice)
    renamed = _patch(client, older, {"title": "  Trip   to Lisbon "})
    assert renamed.status_code == 200
    assert renamed.json()["conversation"]["title"] == "Trip to Lisbon"
    assert [c["title"] for c in _listed(client)] == ["Newer", "Trip to Lisbon"]
    assert Conversation.objects.get(pk=older.pk).updated_at == older.updated_at
    assert newer.title == "Newer"


def test_bad_titles_are_refused_with_the_field_named(client, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = _chat(alice, "Kept")
    client.force_login(alice)
    for body, why in (
        ({"title": "   "}, "non-empty"),
        ({"title": "x" * 201}, "limit is 200"),
        ({"title": 5}, "non-empty string"),
        ({"title": "a\x00b"}, "NUL character"),
    ):
        refused = _patch(client, conversation, body)
        assert refused.status_code == 400
        assert refused.json()["error"]["field"] == "title"
        assert why in refused.json()["error"]["message"]
    unknown = _patch(client, conversation, {"owner": "bob"})
    assert (
        unknown.status_code == 400 and "cannot change owner" in unknown.json()["error"]["message"]
    )
    assert Conversation.objects.get(pk=conversation.pk).title == "Kept"


def test_pinned_conversations_come_first_and_the_list_shows_model_and_date(client, alice) -> None:  # type: ignore[no-untyped-def]
    pinned = _chat(alice, "Pinned one")
    _chat(alice, "Latest")
    client.force_login(alice)
    assert _patch(client, pinned, {"pinned": True}).json()["conversation"]["pinned"] is True
    listed = _listed(client)
    assert [c["title"] for c in listed] == ["Pinned one", "Latest"]
    assert listed[0]["model_label"] == "FakeRateEngine (test fake, not a model)"
    assert listed[0]["updated_at"].startswith(str(pinned.updated_at.date()))
    assert _patch(client, pinned, {"pinned": "yes"}).status_code == 400


def test_someone_elses_conversation_cannot_be_changed_or_seen(client, alice, bob) -> None:  # type: ignore[no-untyped-def]
    conversation = _chat(alice, "Alice's")
    client.force_login(bob)
    assert _patch(client, conversation, {"title": "Bob's now"}).status_code == 404
    assert client.delete(f"/c/{conversation.id}/").status_code == 404
    assert client.post(f"/c/{conversation.id}/share/").status_code == 404
    assert client.get(f"/c/{conversation.id}/export.json").status_code == 404
    assert _listed(client) == [] and _listed(client, "Alice") == []
    assert Conversation.objects.get(pk=conversation.pk).title == "Alice's"


def test_json_endpoints_answer_401_to_visitors(client, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = _chat(alice, "Private")
    assert client.get("/conversations/").status_code == 401
    assert _patch(client, conversation, {"title": "x"}).status_code == 401
    assert client.get(f"/c/{conversation.id}/export.md").status_code == 401


def test_changes_need_the_csrf_token_over_real_http(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = _chat(alice, "Guarded")
    session = logged_in_session(stack, alice)
    forged = session.patch(f"{stack}/c/{conversation.id}/", json={"title": "Forged"})
    assert forged.status_code == 403
    session.get(f"{stack}/")  # sets the csrftoken cookie, as the page does
    token = session.cookies["csrftoken"]
    ok = session.patch(
        f"{stack}/c/{conversation.id}/",
        json={"title": "Renamed"},
        headers={"X-CSRFToken": token, "Referer": stack + "/"},
    )
    assert ok.status_code == 200, ok.text
    assert Conversation.objects.get(pk=conversation.pk).title == "Renamed"


# --- search ----------------------------------------------------------------------------


def test_search_finds_titles_and_message_text_on_any_branch(client, alice, bob) -> None:  # type: ignore[no-untyped-def]
    by_title = _chat(alice, "Lisbon itinerary", (("Plan my days", "Day one: Alfama."),))
    by_text = _chat(alice, "Dinner", (("Something with capers?", "Try a puttanesca with capers."),))
    branch = _chat(alice, "Other", (("Hello", "Hi"),))
    Message.objects.create(  # an earlier version of the answer, on another branch
        conversation=branch,
        parent=branch.current_leaf.parent,
        role="assistant",
        content="Bonjour, the capital of France is Paris.",
    )
    _chat(bob, "Bob's Lisbon notes", (("Lisbon capers", "Yes"),))
    client.force_login(alice)
    assert [c["id"] for c in _listed(client, "lisbon")] == [str(by_title.id)]
    capers = _listed(client, "caper")  # a prefix, stemmed: "capers" matches
    assert [c["id"] for c in capers] == [str(by_text.id)]
    assert "\u0002capers\u0003" in capers[0]["snippet"]
    assert [c["id"] for c in _listed(client, "capital paris")] == [str(branch.id)]
    assert _listed(client, "capital tokyo") == []  # every word must match
    assert _listed(client, "!!! & | :*") == []  # operators are not a query


def test_search_uses_the_gin_index_on_message_text(alice, bob) -> None:  # type: ignore[no-untyped-def]
    from playground.chat.conversations import search

    _chat(alice, "Index me", (("needle", "haystack"),))
    # Enough text (other people's) that the planner's choice reflects a real database.
    filler = Conversation.objects.create(user=bob, model="fake-rate")
    Message.objects.bulk_create(
        Message(conversation=filler, role="user", content=f"words of message {i} " * 20)
        for i in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE chat_message")
        with CaptureQueriesContext(connection) as queries:
            assert [c["title"] for c in search(alice, "needle")] == ["Index me"]
        cursor.execute("EXPLAIN " + queries.captured_queries[0]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Bitmap Index Scan on chat_message_search" in plan, plan


# --- delete with undo ------------------------------------------------------------------


def test_a_deleted_conversation_is_hidden_can_be_restored_then_is_purged(client, alice) -> None:  # type: ignore[no-untyped-def]
    kept = _chat(alice, "Kept")
    gone = _chat(alice, "Deleted")
    client.force_login(alice)
    deleted = client.delete(f"/c/{gone.id}/")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert [c["title"] for c in _listed(client)] == ["Kept"]
    assert client.get(f"/c/{gone.id}/").status_code == 404
    restored = client.post(f"/c/{gone.id}/restore/")
    assert restored.status_code == 200 and restored.json()["conversation"]["title"] == "Deleted"
    assert {c["title"] for c in _listed(client)} == {"Kept", "Deleted"}

    client.delete(f"/c/{gone.id}/")
    # Past the undo window: no restore, and the purge removes it with its messages.
    Conversation.objects.filter(pk=gone.pk).update(
        deleted_at=timezone.now() - timedelta(seconds=31)
    )
    assert client.post(f"/c/{gone.id}/restore/").status_code == 404
    assert purge_deleted() > 0
    assert not Conversation.objects.filter(pk=gone.pk).exists()
    assert not Message.objects.filter(conversation_id=gone.pk).exists()
    assert Conversation.objects.filter(pk=kept.pk).exists()


def test_a_just_deleted_conversation_survives_the_purge(client, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = _chat(alice, "Oops")
    client.force_login(alice)
    client.delete(f"/c/{conversation.id}/")
    purge_deleted()
    assert client.post(f"/c/{conversation.id}/restore/").status_code == 200


# --- settings and branches -------------------------------------------------------------


def test_sampling_settings_are_checked_and_kept(stack, client, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = Conversation.objects.create(user=alice, model="qwen3.5-tiny")
    client.force_login(alice)
    saved = _patch(
        client,
        conversation,
        {
            "preset": "thinking-coding",
            "thinking": False,
            "params": {"temperature": 0.3, "top_k": 10, "max_tokens": 16},
            "system_prompt": "Answer in French.",
        },
    )
    assert saved.status_code == 200, saved.content
    stored = Conversation.objects.get(pk=conversation.pk)
    assert (stored.preset, stored.thinking, stored.system_prompt) == (
        "thinking-coding",
        False,
        "Answer in French.",
    )
    assert stored.params == {"temperature": 0.3, "top_k": 10, "max_tokens": 16}
    for params, field, why in (
        ({"temperature": 3}, "temperature", "temperature must be between 0 and 2"),
        ({"top_p": 0}, "top_p", "top_p must be in (0, 1]"),
        ({"top_k": -1}, "top_k", "top_k must be between 0"),
        ({"presence_penalty": 9}, "presence_penalty", "presence_penalty must be between -2 and 2"),
        ({"max_tokens": 33}, "max_tokens", "at most 32"),
        ({"max_tokens": 1.5}, "max_tokens", "whole number"),
        ({"colour": 1}, "colour", "unknown sampling parameter"),
    ):
        refused = _patch(client, conversation, {"params": params})
        assert refused.status_code == 400, params
        assert refused.json()["error"]["field"] == field
        assert why in refused.json()["error"]["message"]
    bad_preset = _patch(client, conversation, {"preset": "hot"})
    assert bad_preset.json()["error"]["field"] == "preset"
    assert Conversation.objects.get(pk=conversation.pk).params == stored.params


def test_switching_model_needs_a_served_one_and_drops_a_preset_it_lacks(
    stack, client, alice
) -> None:  # type: ignore[no-untyped-def]
    conversation = Conversation.objects.create(
        user=alice, model="qwen3.5-tiny", preset="instruct-general"
    )
    client.force_login(alice)
    unserved = _patch(client, conversation, {"model": "unserved"})
    assert unserved.status_code == 400 and unserved.json()["error"]["field"] == "model"
    assert "not available" in unserved.json()["error"]["message"]
    assert _patch(client, conversation, {"model": "nope"}).json()["error"]["field"] == "model"
    switched = _patch(client, conversation, {"model": "smollm2"})
    assert switched.status_code == 200
    assert switched.json()["conversation"]["model"] == "smollm2"
    assert switched.json()["conversation"]["preset"] == ""  # SmolLM2 has no presets


def test_the_branch_on_screen_is_kept_and_only_this_conversations_messages_qualify(  # type: ignore[no-untyped-def]
    client, alice
) -> None:
    conversation = _chat(alice, "Branches", (("Q", "A1"),))
    first_reply = conversation.current_leaf
    second = Message.objects.create(
        conversation=conversation, parent=first_reply.parent, role="assistant", content="A2"
    )
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=second)
    other = _chat(alice, "Other")
    client.force_login(alice)
    data = _page_data(client, f"/c/{conversation.id}/")
    assert data["current_leaf_id"] == str(second.id)
    assert {m["content"] for m in data["messages"]} == {"Q", "A1", "A2"}  # every branch
    assert _patch(client, conversation, {"current_leaf": str(first_reply.id)}).status_code == 200
    assert _page_data(client, f"/c/{conversation.id}/")["current_leaf_id"] == str(first_reply.id)
    foreign = _patch(client, conversation, {"current_leaf": str(other.current_leaf_id)})
    assert foreign.status_code == 404


# --- export ----------------------------------------------------------------------------


def test_exports_give_the_branch_on_screen_as_markdown_and_every_branch_as_json(  # type: ignore[no-untyped-def]
    client, alice
) -> None:
    conversation = _chat(
        alice,
        "Capitals: France & more",
        (("What is the capital of France?", "Paris."),),
        system_prompt="Be terse.",
    )
    answer = conversation.current_leaf
    Message.objects.create(
        conversation=conversation,
        parent=answer.parent,
        role="assistant",
        content="An older version about Lyon.",
        created_at=answer.created_at,
    )
    Message.objects.filter(pk=answer.pk).update(reasoning="France's capital city is Paris.")
    client.force_login(alice)

    md = client.get(f"/c/{conversation.id}/export.md")
    assert md.status_code == 200 and md["Content-Type"].startswith("text/markdown")
    assert md["Content-Disposition"] == 'attachment; filename="capitals-france-more.md"'
    text = md.content.decode()
    assert text.startswith("# Capitals: France & more\n")
    assert "## System prompt\n\nBe terse." in text
    assert "## You\n\nWhat is the capital of France?" in text
    assert "<summary>Thinking</summary>\n\nFrance's capital city is Paris." in text
    assert "Paris." in text and "Lyon" not in text  # only the branch on screen

    exported = client.get(f"/c/{conversation.id}/export.json")
    assert exported["Content-Disposition"].endswith('.json"')
    data = exported.json()
    assert data["title"] == "Capitals: France & more" and data["system_prompt"] == "Be terse."
    assert len(data["messages"]) == 3
    assert data["branch"] == [str(answer.parent_id), str(answer.id)]
    by_id = {m["id"]: m for m in data["messages"]}
    assert by_id[str(answer.id)]["parent_id"] == str(answer.parent_id)
    assert client.get(f"/c/{conversation.id}/export.txt").status_code == 404


# --- share links -----------------------------------------------------------------------


def test_a_share_link_shows_the_branch_read_only_to_anyone_until_revoked(client, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = _chat(alice, "Shared trip", (("Where to eat?", "Try the pastéis."),))
    _chat(alice, "My private diary", (("secret", "kept"),))
    client.force_login(alice)
    shared = client.post(f"/c/{conversation.id}/share/")
    assert shared.status_code == 200
    url = shared.json()["url"]
    path = url.split("testserver", 1)[1]
    assert len(path.split("/")[2]) >= 40  # an unguessable token

    visitor = Client()
    page = visitor.get(path)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Shared trip" in html and "Try the pastéis." in html and "Where to eat?" in html
    assert "My private diary" not in html  # no other conversations
    assert "<form" not in html and "<textarea" not in html  # nothing to write with
    assert page["X-Robots-Tag"] == "noindex"
    # Visitors cannot act on it through the real endpoints either.
    assert visitor.get(f"/c/{conversation.id}/").status_code == 302  # to the login page
    assert _patch(visitor, conversation, {"title": "x"}).status_code == 401

    assert client.delete(f"/c/{conversation.id}/share/").json() == {"shared": False}
    assert visitor.get(path).status_code == 404
    again = client.post(f"/c/{conversation.id}/share/").json()["url"]
    assert again != url  # a new link; the revoked one stays dead
    assert visitor.get(path).status_code == 404


def test_a_share_link_shows_the_branch_as_it_was_when_shared(client, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = _chat(alice, "Snapshot", (("First question", "First answer"),))
    client.force_login(alice)
    path = client.post(f"/c/{conversation.id}/share/").json()["url"].split("testserver", 1)[1]
    later = Message.objects.create(
        conversation=conversation,
        parent=conversation.current_leaf,
        role="user",
        content="A later private question",
    )
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=later)
    assert "A later private question" not in Client().get(path).content.decode()
    client.delete(f"/c/{conversation.id}/")  # deleting it ends the link too
    assert Client().get(path).status_code == 404


def test_a_share_link_serves_only_the_files_of_its_branch(client, alice) -> None:  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import TemporaryUploadedFile

    from playground.media.services import ingest_upload

    def attachment(name: str):  # type: ignore[no-untyped-def]
        upload = TemporaryUploadedFile(name, "image/png", len(PNG), None)
        upload.write(PNG)
        upload.seek(0)
        return ingest_upload(alice, upload)

    conversation = _chat(alice, "Pictures", (("Look", "Nice"),))
    shown, hidden = attachment("shown.png"), attachment("hidden.png")
    conversation.current_leaf.parent.attachments.set([shown])
    client.force_login(alice)
    token = client.post(f"/c/{conversation.id}/share/").json()["url"].rstrip("/").split("/")[-1]
    visitor = Client()
    served = visitor.get(f"/s/{token}/media/{shown.id}/")
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    # Files stream from an async iterator (as ASGI serves them); the sync test client
    # reads it whole, and Django says so.
    with pytest.warns(Warning, match="asynchronous iterators"):
        assert b"".join(served) == PNG
    assert visitor.get(f"/s/{token}/media/{hidden.id}/").status_code == 404
    assert visitor.get(f"/media/{shown.id}/").status_code == 302  # the owner's URL stays private
    assert f"/s/{token}/media/{shown.id}/" in visitor.get(f"/s/{token}/").content.decode()


def test_unknown_share_tokens_are_404(client, db) -> None:  # type: ignore[no-untyped-def]
    for token in ("x", "a" * 43, "%00" * 30):
        assert client.get(f"/s/{token}/").status_code == 404


def test_deleting_a_conversation_stops_its_unfinished_reply(stack, client, alice) -> None:  # type: ignore[no-untyped-def]
    from playground.generations.service import create_conversation
    from tests.helpers import ChatSocket

    conversation = create_conversation(alice, "fake-rate")
    client.force_login(alice)
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(conversation.id, "long", params={"max_tokens": 5000})
        assert ws.recv()["generation_id"] == accepted["generation_id"]
        assert client.delete(f"/c/{conversation.id}/").status_code == 200
        done = ws.events_until_done(accepted["generation_id"], timeout=10)[-1]
        assert done["finish_reason"] == "cancelled"
        ws.send({"type": "resume", "generation_id": accepted["generation_id"], "after_seq": 0})
        assert ws.recv()["code"] == "not_found"  # a deleted conversation is gone for the socket
    assert client.post(f"/c/{conversation.id}/restore/").status_code == 200
    assert Message.objects.get(pk=accepted["generation_id"]).status == "cancelled"
