from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "playground.media"
    label = "media"
