"""Production: the default of every entry point (manage.py, asgi.py, the app worker, the
``celery`` command) unless `make run` (local), `make test` (test) or a benchmark (bench)
chooses otherwise. Secrets and hosts come from the environment.

``python manage.py check --deploy --fail-level WARNING`` passes with these settings and with
compose's environment (tests/deploy/test_production.py and test_compose.py run it). TLS is
the reverse proxy's (docker/Caddyfile): it terminates HTTPS, redirects HTTP to HTTPS when it
has a certificate, and tells uvicorn the scheme and the client's address in
X-Forwarded-Proto / -For, which uvicorn applies for the addresses in --forwarded-allow-ips
(compose: web publishes no port, only the proxy does). So Django's redirect is off by
default (security.W008 silenced); without such a proxy, set DJANGO_SECURE_SSL_REDIRECT=true.
"""

from django.core.exceptions import ImproperlyConfigured

from playground.settings.base import *  # noqa: F403
from playground.settings.base import env

DEBUG = False

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. The production settings (the default outside "
        "`make run`, `make test` and the benchmarks) need a long random secret, e.g. "
        "DJANGO_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))'). "
        "On a laptop, use `make run` (DJANGO_SETTINGS_MODULE=playground.settings.local)."
    )

if not env.str("DATABASE_URL", default=""):
    raise ImproperlyConfigured("DATABASE_URL is not set (postgres://USER:PASSWORD@HOST:5432/DB)")

# Cookies only over HTTPS. Browsers treat http://localhost as secure too, so compose's
# plain-HTTP default works on the machine itself and nowhere else.
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HSTS, sent on HTTPS responses only (so never pinned over plain HTTP). Start lower
# (DJANGO_HSTS_SECONDS=3600) while trying TLS out: browsers remember it that long.
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading commits the whole registrable domain to HTTPS in browsers for months; an
# operator opts in (DJANGO_HSTS_PRELOAD=true) before submitting the domain.
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=False)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SILENCED_SYSTEM_CHECKS = [
    *([] if SECURE_SSL_REDIRECT else ["security.W008"]),  # the proxy redirects
    *([] if SECURE_HSTS_PRELOAD else ["security.W021"]),  # preloading is opt-in
]

# A server on the internet does not take strangers by default: invite codes (the admin,
# or `python manage.py invite create`). PLAYGROUND_SIGNUP_MODE=open opens it.
SIGNUP_MODE = env.str("PLAYGROUND_SIGNUP_MODE", default="invite")
if SIGNUP_MODE not in ("open", "invite", "closed"):
    raise ValueError(f"PLAYGROUND_SIGNUP_MODE must be open, invite or closed, not {SIGNUP_MODE!r}")
