from django.apps import AppConfig


class ArenaConfig(AppConfig):
    name = "playground.arena"
    label = "arena"
