"""``python manage.py invite create [--count N] [--note TEXT]``: print new invite codes."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from playground.accounts.models import InviteCode


class Command(BaseCommand):
    help = "Create invite codes for PLAYGROUND_SIGNUP_MODE=invite (one code per line)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["create"])
        parser.add_argument("--count", type=int, default=1)
        parser.add_argument("--note", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["count"] <= 1000:
            raise SystemExit("--count must be between 1 and 1000")
        for _ in range(options["count"]):
            self.stdout.write(InviteCode.objects.create(note=options["note"]).code)
