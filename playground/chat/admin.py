from django.contrib import admin

from playground.chat.models import Conversation, Feedback, Message


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "title", "model", "updated_at")
    search_fields = ("title", "user__username")

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "role", "status", "model", "output_tokens", "created_at")
    list_filter = ("role", "status", "model")

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ("message", "user", "model", "value", "created_at")
    list_filter = ("value", "model")
    search_fields = ("comment", "user__username")

    def has_change_permission(self, request, obj=None):
        return False
