from django.urls import path

from playground.arena import views

app_name = "arena"
urlpatterns = [
    path("", views.arena, name="index"),
    path("b/<str:battle_id>/", views.battle_page, name="battle"),
    path("battles/", views.start, name="start"),
    path("battles/<str:battle_id>/", views.detail, name="detail"),
    path("battles/<str:battle_id>/vote/", views.vote, name="vote"),
    path("leaderboard/", views.leaderboard_page, name="leaderboard"),
]
