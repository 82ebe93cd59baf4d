"""Session and CSRF cookies, signed with itsdangerous.

The session cookie carries only the user id and the time it was signed; the user is
read back on every request, so disabling a user ends its sessions at once. CSRF is
a signed double submit: every visitor gets a random token in an HttpOnly cookie,
every form carries that token signed with the server's key, and a POST whose form
token does not verify or does not match the cookie is refused (403). Both cookies
are SameSite=Lax and Secure when `EMISSIONS_CONSOLE_COOKIE_SECURE` is set.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from core.paths import generated_secret, secrets_dir
from core.settings import Environment, Settings, SettingsError

SESSION_COOKIE = "pem_session"
CSRF_COOKIE = "pem_csrf"
CSRF_FIELD = "csrf"
CSRF_MAX_AGE_S = 24 * 3600


def secret_key(settings: Settings) -> str:
    """EMISSIONS_CONSOLE_SECRET_KEY, else the state file (generated in development)."""
    if settings.console_secret_key is not None:
        return settings.console_secret_key.get_secret_value()
    path = secrets_dir(settings.state_dir) / "console_secret_key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    if settings.environment is Environment.production:
        raise SettingsError(f"the console needs EMISSIONS_CONSOLE_SECRET_KEY or {path}")
    return generated_secret(path)


class Cookies:
    """Signs and checks the console's cookies with one key."""

    def __init__(self, settings: Settings) -> None:
        key = secret_key(settings)
        self._session = URLSafeTimedSerializer(key, salt="console-session")
        self._csrf = URLSafeTimedSerializer(key, salt="console-csrf")
        self.secure = settings.console_cookie_secure
        self.max_age_s = int(settings.console_session_hours * 3600)

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/console",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )

    def user_id(self, request: Request) -> int | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            value = self._session.loads(raw, max_age=self.max_age_s)
        except BadSignature:
            return None
        return value if isinstance(value, int) else None

    def start_session(self, response: Response, user_id: int) -> None:
        self._set(response, SESSION_COOKIE, self._session.dumps(user_id), self.max_age_s)
        # A new CSRF token at sign-in: one planted before it is worthless after.
        self._set(response, CSRF_COOKIE, secrets.token_urlsafe(32), CSRF_MAX_AGE_S)

    def end_session(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/console")

    def csrf_token(self, request: Request, response: Response | None = None) -> str:
        """The form token for this visitor, setting the cookie when it has none."""
        raw = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
        if not raw:
            raw = secrets.token_urlsafe(32)
            request.state.new_csrf = raw
        return str(self._csrf.dumps(raw))

    def attach_csrf(self, request: Request, response: Response) -> None:
        new = getattr(request.state, "new_csrf", None)
        if new:
            self._set(response, CSRF_COOKIE, new, CSRF_MAX_AGE_S)

    def check_csrf(self, request: Request, form_token: object) -> None:
        cookie = request.cookies.get(CSRF_COOKIE)
        if not cookie or not isinstance(form_token, str):
            raise HTTPException(403, "the form has expired; reload the page and try again")
        try:
            signed = self._csrf.loads(form_token, max_age=CSRF_MAX_AGE_S)
        except BadSignature as exc:
            raise HTTPException(403, "the form has expired; reload the page and try again") from exc
        if not hmac.compare_digest(str(signed), cookie):
            raise HTTPException(403, "the form has expired; reload the page and try again")
