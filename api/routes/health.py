"""Open endpoints: liveness, readiness (store and broker reachable), Prometheus."""

from __future__ import annotations

import socket

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine, text

from api.schemas import HealthOut
from core.settings import Settings

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, summary="The process is up")
def healthz() -> HealthOut:
    return HealthOut(status="ok")


def _store(engine: Engine, timeout_s: float) -> str:
    try:
        with engine.connect() as conn:
            conn.execute(text(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}"))
            conn.execute(text("SELECT 1 FROM sites LIMIT 1"))
    except Exception as exc:
        return f"failed: {type(getattr(exc, 'orig', None) or exc).__name__}"
    return "ok"


def _broker(settings: Settings) -> str:
    try:
        with socket.create_connection(
            (settings.mqtt_host, settings.mqtt_port), timeout=settings.api_ready_timeout_s
        ):
            pass
    except OSError as exc:
        return f"unreachable: {exc.strerror or type(exc).__name__}"
    return "ok"


@router.get(
    "/readyz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "The store or the broker is down."}},
    summary="The store and the broker are reachable",
)
def readyz(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    checks = {
        "store": _store(request.app.state.engine, settings.api_ready_timeout_s),
        "broker": _broker(settings),
    }
    ok = all(v == "ok" for v in checks.values())
    body = HealthOut(status="ready" if ok else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    summary="Prometheus metrics",
)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
