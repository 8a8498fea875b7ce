"""Arena battles: one prompt, two served models answering it blind, and the user's vote."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Battle(models.Model):
    """Each side is an ordinary generation (a conversation of source "arena" with one turn),
    so streaming, quotas, usage and the recorder are the generation service's own."""

    class Vote(models.TextChoices):
        A = "a", "A is better"
        B = "b", "B is better"
        TIE = "tie", "Tie"
        BOTH_BAD = "both_bad", "Both are bad"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Kept (as null) when the user is deleted: the leaderboard keeps their votes.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="battles"
    )
    prompt = models.TextField()
    # True: the pair was drawn at random and the names stay hidden until the vote; only
    # these battles are rated. False: the user chose both models (names shown throughout).
    blind = models.BooleanField(default=True)
    model_a = models.CharField(max_length=100)
    model_b = models.CharField(max_length=100)
    # Null once a reply is gone (a turn too long for the model's context is deleted by the
    # recorder): such a battle cannot be voted on.
    reply_a = models.OneToOneField(
        "chat.Message", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reply_b = models.OneToOneField(
        "chat.Message", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    vote = models.CharField(max_length=8, choices=Vote.choices, blank=True)
    voted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            # The leaderboard and the dashboard read voted battles only.
            models.Index(
                fields=["voted_at"], condition=~models.Q(vote=""), name="arena_voted_by_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_a} vs {self.model_b} ({self.vote or 'no vote'})"
