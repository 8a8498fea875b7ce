from django.urls import path

from playground.media import views

app_name = "media"
urlpatterns = [
    path("", views.upload, name="upload"),
    path("blob/<str:token>/", views.blob, name="blob"),
    path("<str:attachment_id>/", views.download, name="download"),
    path("<str:attachment_id>/thumbnail/", views.thumbnail, name="thumbnail"),
]
