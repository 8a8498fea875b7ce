from django.contrib import admin

from playground.arena.models import Battle


@admin.register(Battle)
class BattleAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "model_a", "model_b", "blind", "vote", "voted_at", "created_at")
    list_filter = ("vote", "blind", "model_a", "model_b")
    search_fields = ("prompt", "user__username")
    raw_id_fields = ("reply_a", "reply_b")

    def has_change_permission(self, request, obj=None):
        return False
