"""How the console joins the API app: its routes, static files, sign-in redirect
and error pages (`api/app.py` calls `mount`). Kept out of the package's
`__init__`, so that `emissions user ...` and every other command that imports a
console module does not load the pages, charts and spreadsheet writer."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from api.console import actions, pages, users
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
    users.dummy_hash()  # now, not during the first sign-in of an unknown name
    app.include_router(actions.router)
    app.include_router(pages.router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", 303)

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse("/console/signin", 303)
