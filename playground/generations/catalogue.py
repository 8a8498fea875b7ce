"""The Django side of the model catalogue: what exists (settings) and what is served (alive).

A model is served when at least one worker announces it in a heartbeat; the
worker's announcement (backend, context length, modalities, batch, GPUs,
version) is what the picker, ``/models/``, the dashboard and the service use.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings

from engines.catalogue import ModelSpec, load_catalogue
from inference.heartbeats import live_models
from inference.redis_clients import get_redis
from playground.generations.errors import InvalidRequest, ServiceError, UnknownModel


@cache
def get_catalogue() -> dict[str, ModelSpec]:
    return load_catalogue(settings.PLAYGROUND_MODELS)


def get_model(name: Any) -> ModelSpec:
    if not isinstance(name, str):
        raise InvalidRequest("model must be a string")
    try:
        return get_catalogue()[name]
    except KeyError:
        known = ", ".join(sorted(get_catalogue()))
        raise UnknownModel(f"unknown model {name!r}; available: {known}") from None


def served_models() -> dict[str, dict[str, Any]]:
    """Models with a live worker, and what their workers announce (see inference.heartbeats)."""
    return live_models(get_redis())


def require_served(spec: ModelSpec) -> dict[str, Any]:
    """The live announcement for ``spec``, or a clear refusal when no worker serves it."""
    live = served_models().get(spec.name)
    if live is None:
        raise ServiceError(
            "model_unavailable",
            f"{spec.label} is not available right now: no worker is serving it. "
            "Pick another model or try again later.",
        )
    return live
