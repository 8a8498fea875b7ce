"""``manage.py refresh_usage_rollups [--full]``: what Celery beat runs, on demand."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from playground.dashboard.models import RollupState
from playground.dashboard.usage import refresh_rollups, rollup_state


class Command(BaseCommand):
    help = "Bring the usage rollups up to date (--full: rebuild them all from the raw rows)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--full", action="store_true", help="forget and rebuild everything")

    def handle(self, *args: Any, full: bool = False, **options: Any) -> None:
        if full:
            RollupState.objects.filter(pk=1).update(complete_until=None)
        if refresh_rollups() is None:
            self.stdout.write("another rebuild is running; try again when it has finished")
            return
        state = rollup_state()
        assert state is not None
        self.stdout.write(f"rollups complete until {state.complete_until} ({state.time_zone})")
