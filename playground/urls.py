from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from playground.accounts.views import signup
from playground.api import keys
from playground.api import views as api
from playground.dashboard.metrics import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", signup, name="signup"),
    path("media/", include("playground.media.urls")),
    path("metrics", metrics),
    path("v1/models", api.models),
    path("v1/chat/completions", api.chat_completions),
    path("settings/keys/", keys.keys, name="api-keys"),
    path("dashboard/", include("playground.dashboard.urls")),
    path("arena/", include("playground.arena.urls")),
    path("", include("playground.chat.urls")),
]
