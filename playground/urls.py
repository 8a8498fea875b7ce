from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from playground.accounts.views import signup
from playground.dashboard.metrics import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", signup, name="signup"),
    path("media/", include("playground.media.urls")),
    path("metrics", metrics),
    path("dashboard/", include("playground.dashboard.urls")),
    path("", include("playground.chat.urls")),
]
