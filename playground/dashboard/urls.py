from django.urls import path

from playground.dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.dashboard, name="index"),
    path("usage.csv", views.export_usage_csv, name="usage-csv"),
]
