"""``python manage.py api_key create USERNAME [--name NAME]``: the new key on the last line."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from playground.api.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key for a user; the key is printed once, on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["create"])
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = get_user_model().objects.get(username=options["username"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user {options['username']!r}") from None
        row, key = ApiKey.issue(user, options["name"])
        self.stdout.write(f"created key {row.name!r} for {user.username}; it is shown only once:")
        self.stdout.write(key)
