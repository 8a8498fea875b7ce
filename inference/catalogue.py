"""The Django side of the model catalogue: settings → ``engines.catalogue.ModelSpec``."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from engines.catalogue import ModelSpec, load_catalogue
from inference.errors import InvalidRequest


@cache
def get_catalogue() -> dict[str, ModelSpec]:
    return load_catalogue(settings.PLAYGROUND_MODELS)


def get_model(name: str) -> ModelSpec:
    try:
        return get_catalogue()[name]
    except KeyError:
        known = ", ".join(sorted(get_catalogue()))
        raise InvalidRequest(f"unknown model {name!r}; available: {known}") from None
