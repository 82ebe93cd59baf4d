"""The HTTP API (SPEC section 6): FastAPI application factory.

`create_app(settings)` builds everything from settings; tests and the benchmark
pass their own settings (and may share an engine). OpenAPI at /openapi.json, docs
at /docs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg.errors import UndefinedTable
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, OperationalError, ProgrammingError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.body_limit import BodyLimit
from api.console.app import console_error, invalid_form, is_console
from api.console.app import mount as mount_console
from api.errors import excerpt, short_errors
from api.hourly_cache import HourlyCache
from api.metrics import RequestMetrics
from api.routes import alerts, emissions, health, inventory, meters, quarantine, reports, roadmap
from api.throttle import AuthThrottle
from core.db import make_engine
from core.logs import get_logger
from core.settings import Settings

log = get_logger("api")

DESCRIPTION = """
Hourly emissions, totals, roadmap status, MRV inventories, meters, quarantine and
alerts of the park. Every `/v1` endpoint needs an API key
(`Authorization: Bearer <key>`); roles: admin, operator (every site, read),
tenant (its own enterprise only). Timestamps out are UTC; `start`/`end` take
RFC 3339 with any offset. See docs/api.md.
"""


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    owned = engine is None
    db = engine if engine is not None else make_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            db.dispose()

    app = FastAPI(
        title="Park emissions API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = db
    app.state.hourly_cache = HourlyCache(settings.api_hourly_cache_mb * 1024 * 1024)
    app.state.auth_throttle = AuthThrottle(
        settings.api_auth_failure_burst, settings.api_auth_failures_per_minute
    )
    for module in (health, emissions, roadmap, inventory, meters, alerts, quarantine, reports):
        app.include_router(module.router)
    mount_console(app, settings)
    # Added first, so it runs inside the metrics: a refused body is counted too.
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(RequestMetrics)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if is_console(request):
            return invalid_form(request, exc)
        return JSONResponse({"detail": short_errors(exc.errors())}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_console(request):
            return console_error(request, exc)
        if exc.status_code == 400:  # an unparsable body: a bad parameter like any other
            error = {"loc": ["body"], "msg": excerpt(str(exc.detail), 300), "type": "value_error"}
            return JSONResponse({"detail": [error]}, 422)
        return await http_exception_handler(request, exc)

    @app.exception_handler(OperationalError)
    async def store_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("api_store_unavailable", path=request.url.path, error=str(exc.orig))
        return JSONResponse({"detail": "the store is unavailable; retry later"}, 503)

    @app.exception_handler(ProgrammingError)
    async def schema_missing(request: Request, exc: ProgrammingError) -> JSONResponse:
        if isinstance(exc.orig, UndefinedTable):
            log.error("api_schema_missing", path=request.url.path, error=str(exc.orig))
            return JSONResponse(
                {"detail": "the store has no schema: run emissions db upgrade"}, 503
            )
        log.exception("api_unexpected_error", path=request.url.path)
        return JSONResponse({"detail": "internal error; it has been logged"}, 500)

    @app.exception_handler(DataError)
    async def bad_data(request: Request, exc: DataError) -> JSONResponse:
        # A value the store refuses (out-of-range number, invalid text) is the client's.
        message = excerpt(f"invalid parameter: {exc.orig}", 300)
        error = {"loc": ["query"], "msg": message, "type": "value_error"}
        return JSONResponse({"detail": [error]}, 422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("api_unexpected_error", path=request.url.path)
        return JSONResponse({"detail": "internal error; it has been logged"}, 500)

    return app
