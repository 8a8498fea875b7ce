from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "playground.dashboard"
    label = "dashboard"
