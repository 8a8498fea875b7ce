from django.urls import path

from playground.chat import views

app_name = "chat"
urlpatterns = [
    path("", views.index, name="index"),
    path("c/new/", views.conversation_create, name="create"),
    path("models/", views.model_catalogue, name="models"),
    path("c/<str:conversation_id>/", views.conversation_detail, name="conversation"),
    path(
        "c/<str:conversation_id>/messages/<str:message_id>/feedback/",
        views.message_feedback,
        name="feedback",
    ),
]
