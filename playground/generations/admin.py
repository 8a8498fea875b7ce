from django.contrib import admin

from playground.generations.models import QuotaOverride


@admin.register(QuotaOverride)
class QuotaOverrideAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "requests_per_minute",
        "concurrent",
        "tokens_per_day",
        "upload_bytes_per_day",
    )
    search_fields = ("user__username", "group__name")
