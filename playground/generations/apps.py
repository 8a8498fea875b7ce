from django.apps import AppConfig


class GenerationsConfig(AppConfig):
    """The one generation service (start, events, stop, record) every front end goes through."""

    name = "playground.generations"
    label = "generations"

    def ready(self) -> None:
        from django.conf import settings

        from inference.redis_clients import configure

        configure(settings.REDIS_URL)
