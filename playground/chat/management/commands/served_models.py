from django.conf import settings
from django.core.management.base import BaseCommand

from playground.generations.catalogue import get_catalogue


class Command(BaseCommand):
    help = "Print the catalogue names of the models `make run` starts workers for."

    def handle(self, *args: object, **options: object) -> None:
        catalogue = get_catalogue()
        for name in settings.PLAYGROUND_SERVED_MODELS:
            if name not in catalogue:
                raise SystemExit(
                    f"PLAYGROUND_SERVED_MODELS names {name!r}, which is not in the catalogue"
                )
            self.stdout.write(name)
