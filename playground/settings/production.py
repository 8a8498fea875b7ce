"""Production: secrets and hosts must come from the environment."""

from playground.settings.base import *  # noqa: F403
from playground.settings.base import env

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A server on the internet does not take strangers by default: invite codes (the admin,
# or `python manage.py invite create`). PLAYGROUND_SIGNUP_MODE=open opens it.
SIGNUP_MODE = env.str("PLAYGROUND_SIGNUP_MODE", default="invite")
if SIGNUP_MODE not in ("open", "invite", "closed"):
    raise ValueError(f"PLAYGROUND_SIGNUP_MODE must be open, invite or closed, not {SIGNUP_MODE!r}")
