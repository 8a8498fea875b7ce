from django.contrib import admin

from playground.dashboard.models import (
    RollupState,
    UsageDaily,
    UsageHourly,
    UsageRecord,
    UsageUserDaily,
)


class ReadOnly(admin.ModelAdmin):
    """Usage and rollups are records and derived data: viewable, never edited or deleted by
    hand (a deleted row would leave rollups that the completeness mark still trusts)."""

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnly):
    list_display = (
        "finished_at",
        "user",
        "model",
        "finish_reason",
        "error_code",
        "input_tokens",
        "output_tokens",
        "ttft_ms",
    )
    list_filter = ("model", "finish_reason", "kind")
    date_hierarchy = "finished_at"


@admin.register(UsageHourly, UsageDaily)
class UsageRollupAdmin(ReadOnly):
    list_display = ("start", "model", "requests", "errors", "input_tokens", "output_tokens")
    list_filter = ("model",)
    date_hierarchy = "start"


@admin.register(UsageUserDaily)
class UsageUserDailyAdmin(ReadOnly):
    list_display = ("start", "model", "user", "requests", "input_tokens", "output_tokens")
    list_filter = ("model",)
    date_hierarchy = "start"


@admin.register(RollupState)
class RollupStateAdmin(ReadOnly):
    list_display = ("complete_until", "time_zone")
