from django.urls import path

from playground.chat import endpoints, views

app_name = "chat"
urlpatterns = [
    path("", views.index, name="index"),
    path("models/", views.model_catalogue, name="models"),
    path("conversations/", endpoints.conversation_list, name="list"),
    path("c/<str:conversation_id>/", views.conversation_detail, name="conversation"),
    path("c/<str:conversation_id>/restore/", endpoints.conversation_restore, name="restore"),
    path("c/<str:conversation_id>/share/", endpoints.conversation_share, name="share"),
    path(
        "c/<str:conversation_id>/export.<str:fmt>",
        endpoints.conversation_export,
        name="export",
    ),
    path(
        "c/<str:conversation_id>/messages/<str:message_id>/feedback/",
        views.message_feedback,
        name="feedback",
    ),
    path("s/<str:token>/", views.shared_page, name="shared"),
    path("s/<str:token>/media/<str:attachment_id>/", endpoints.shared_media, name="shared-media"),
]
