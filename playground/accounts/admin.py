from django.contrib import admin

from playground.accounts.models import InviteCode


@admin.register(InviteCode)
class InviteCodeAdmin(admin.ModelAdmin):
    list_display = ("code", "note", "created_at", "used_by", "used_at")
    readonly_fields = ("used_by", "used_at", "created_at")
    search_fields = ("code", "note", "used_by__username")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
