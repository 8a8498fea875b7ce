from django.contrib import admin

from playground.dashboard.models import UsageHourly, UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = (
        "finished_at",
        "user",
        "model",
        "finish_reason",
        "input_tokens",
        "output_tokens",
        "ttft_ms",
    )
    list_filter = ("model", "finish_reason", "kind")
    date_hierarchy = "finished_at"

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(UsageHourly)
class UsageHourlyAdmin(admin.ModelAdmin):
    list_display = ("hour", "model", "user", "requests", "errors", "output_tokens")
    list_filter = ("model",)
    date_hierarchy = "hour"

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
