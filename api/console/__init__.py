"""The web console (SPEC section 2, issue 16): server-rendered pages served by the
API process, for people signed in with a password rather than API keys.

Every figure on a page comes from the same repository and reporting functions as
the JSON API, and every scope check from `api.scope`, so the console can neither
show a different number nor a different enterprise than the API would.
"""

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from api.console import actions, pages
from api.console.i18n import HERE
from api.console.session import Cookies
from api.console.web import SignInRequired, error_page
from core.settings import Settings


def is_console(request: Request) -> bool:
    return request.url.path.startswith("/console")


def console_error(request: Request, exc: HTTPException) -> Response:
    return error_page(request, exc)


def invalid_form(request: Request, exc: RequestValidationError) -> Response:
    """A console form or link with a bad field: a page naming the field (the API's
    one validation handler, api/app.py, sends console requests here)."""
    fields = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
    )
    return error_page(request, HTTPException(422, fields))


def mount(app: FastAPI, settings: Settings) -> None:
    """Add the console's routes, static files and sign-in redirect to the API app."""
    app.state.console_cookies = Cookies(settings)
    app.include_router(actions.router)
    app.include_router(pages.router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", 303)

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse("/console/signin", 303)
