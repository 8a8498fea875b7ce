from django import template

register = template.Library()


@register.filter
def percent(ratio: float | None) -> str:
    """0.0234 → "2.3 %"."""
    return "–" if ratio is None else f"{ratio * 100:.1f} %"
