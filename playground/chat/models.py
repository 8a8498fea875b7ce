"""Conversations and messages. An assistant message is also its generation's record."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models

# Full-text search configuration for titles and message text (stemmed English; words of
# other languages still match as written).
SEARCH_CONFIG = "english"


def search_vector(field: str) -> SearchVector:
    """The indexed expression; queries must use this exact one for the GIN index to serve."""
    return SearchVector(field, config=SEARCH_CONFIG)


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=100)
    system_prompt = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Source(models.TextChoices):
        CHAT = "chat"
        API = "api"
        GRADIO = "gradio"
        ARENA = "arena"

    # Which front end started it: the chat sidebar lists only "chat" ones, and usage rows
    # carry it as their kind.
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.CHAT)

    # The branch on screen: the last message of the path the user chose (edits and
    # regenerations make siblings). Null for an empty conversation.
    current_leaf = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pinned = models.BooleanField(default=False)
    # Soft delete: hidden at once, restorable for a short while, then purged.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Generation settings kept per conversation: a preset name ("" = the model's
    # defaults), thinking (None = the model's default) and explicit sampling overrides.
    preset = models.CharField(max_length=64, blank=True)
    thinking = models.BooleanField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    # A read-only link: an unguessable token (None = not shared) showing the branch that
    # ended at ``share_leaf`` when it was shared.
    share_token = models.CharField(max_length=64, null=True, blank=True, unique=True)
    share_leaf = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["user", "-updated_at"]),
            GinIndex(search_vector("title"), name="chat_conversation_search"),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.id}"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        CANCELLED = "cancelled"
        ERROR = "error"

    TERMINAL = (Status.DONE, Status.CANCELLED, Status.ERROR)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    # Messages form a tree (edits and regenerations branch); the UI shows one path.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    reasoning = models.TextField(blank=True)
    reasoning_ms = models.FloatField(null=True, blank=True)  # how long the model thought
    attachments = models.ManyToManyField("media.Attachment", blank=True, related_name="messages")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DONE)

    # Generation record (assistant messages only). Text is written once, at the end.
    model = models.CharField(max_length=100, blank=True)
    params = models.JSONField(default=dict, blank=True)
    thinking = models.BooleanField(default=False)
    finish_reason = models.CharField(max_length=32, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    # Media in the prompt of this generation (usage accounting).
    images = models.PositiveIntegerField(default=0)
    videos = models.PositiveIntegerField(default=0)
    video_seconds = models.FloatField(default=0.0)
    vision_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)  # = enqueued, for assistants
    started_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)  # the worker id that claimed it
    first_token_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    queue_wait_ms = models.FloatField(null=True, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)
    tpot_ms = models.FloatField(null=True, blank=True)
    total_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["conversation", "created_at"]),
            models.Index(fields=["model", "status", "created_at"]),
            GinIndex(search_vector("content"), name="chat_message_search"),
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL


class Feedback(models.Model):
    """A user's thumbs up/down (and optional comment) on one assistant message."""

    class Value(models.IntegerChoices):
        UP = 1
        DOWN = -1

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    model = models.CharField(max_length=100)  # copied from message.model
    value = models.SmallIntegerField(choices=Value.choices)
    comment = models.TextField(blank=True)  # at most 2000 characters
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"]),
            models.Index(fields=["model", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_value_display()} on {self.message_id}"
