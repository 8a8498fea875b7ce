"""`make run` on a laptop: debug pages on, everything else from base."""

from playground.settings.base import *  # noqa: F403
from playground.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
