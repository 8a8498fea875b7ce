from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from playground.accounts.models import InviteCode


class InviteSignupForm(UserCreationForm):
    invite_code = forms.CharField(max_length=64, help_text="The code you were given.")

    def clean_invite_code(self) -> str:
        code: str = self.cleaned_data["invite_code"].strip()
        if not InviteCode.objects.filter(code=code, used_at__isnull=True).exists():
            raise forms.ValidationError("This invite code is not valid or has been used.")
        return code


def signup(request: HttpRequest) -> HttpResponse:
    mode = settings.SIGNUP_MODE
    if mode == "closed":
        return render(request, "registration/signup_closed.html", status=403)
    form_class: Any = InviteSignupForm if mode == "invite" else UserCreationForm
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            if mode == "invite":
                # Claim the code and create the user together: one account per code, even
                # when two people submit the same code at once.
                claimed = InviteCode.objects.filter(
                    code=form.cleaned_data["invite_code"], used_at__isnull=True
                ).update(used_at=timezone.now())
                if not claimed:
                    form.add_error("invite_code", "This invite code has just been used.")
                    return render(request, "registration/signup.html", {"form": form}, status=400)
            user = form.save()
            if mode == "invite":
                InviteCode.objects.filter(code=form.cleaned_data["invite_code"]).update(
                    used_by=user
                )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("chat:index")
    return render(request, "registration/signup.html", {"form": form, "mode": mode})
