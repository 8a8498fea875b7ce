from django.urls import path

from playground.dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.dashboard, name="index"),
    path("live.json", views.live, name="live"),
    path("usage.csv", views.export_usage_csv, name="usage-csv"),
    path("export/<str:table>.csv", views.export_table, name="export"),
    path("conversations/<str:conversation_id>/", views.conversation, name="conversation"),
]
