"""JSON error answers shared by the HTTP endpoints: ``{"error": {"status", "message"}}``."""

from django.http import JsonResponse


def json_error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": {"status": status, "message": message}}, status=status)
