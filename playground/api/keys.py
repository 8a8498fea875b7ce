"""The API keys settings page: create (shown once), name, revoke."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from playground.api.models import ApiKey

MAX_KEYS = 20


@never_cache
@login_required
def keys(request: HttpRequest) -> HttpResponse:
    new_key = ""
    error = ""
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create":
            name = (request.POST.get("name") or "").strip()[:100]
            live = ApiKey.objects.filter(user=request.user, revoked_at__isnull=True).count()
            if not name:
                error, status = "Give the key a name.", 400
            elif live >= MAX_KEYS:
                error, status = f"You have {MAX_KEYS} keys; revoke one first.", 400
            else:
                _, new_key = ApiKey.issue(request.user, name)
        elif action == "revoke" and str(request.POST.get("key_id", "")).isdigit():
            ApiKey.objects.filter(
                user=request.user, pk=int(request.POST["key_id"]), revoked_at__isnull=True
            ).update(revoked_at=timezone.now())
    rows = ApiKey.objects.filter(user=request.user)
    return render(
        request,
        "api/keys.html",
        {"keys": rows, "new_key": new_key, "error": error},
        status=status,
    )
