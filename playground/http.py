"""JSON error answers shared by the HTTP endpoints: ``{"error": {"status", "message"}}``."""

from django.http import JsonResponse


def json_error(status: int, message: str, field: str | None = None) -> JsonResponse:
    """``field`` names the request field at fault, when one is (a form can point at it)."""
    error: dict[str, object] = {"status": status, "message": message}
    if field:
        error["field"] = field
    return JsonResponse({"error": error}, status=status)
