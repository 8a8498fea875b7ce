from django.contrib import admin

from playground.api.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "shown", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("hashed", "shown", "created_at", "last_used_at")
    search_fields = ("name", "user__username", "shown")

    def has_add_permission(self, request):  # keys are issued by the page or the command
        return False
