"""Property-based fuzzing of the whole HTTP API from its own OpenAPI document
(schemathesis): no 5xx, and every answer conforms to the documented status codes,
content types and schemas. Bounded and derandomised, so CI runs are repeatable."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from core.park.models import Park
from core.settings import Settings
from tests.api_support import ApiEnv, bearer, build

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def env(database_factory: Callable[[], Settings], test_park: Park) -> Iterator[ApiEnv]:
    built = build(database_factory, test_park)
    yield built
    built.engine.dispose()


# Built at import with default settings (nothing connects yet); the test points it
# at its own database. (schemathesis.pytest.from_fixture does not run on pytest 9.)
APP = create_app(Settings())
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def app(env: ApiEnv) -> Iterator[Any]:
    APP.state.settings = env.settings
    APP.state.engine = env.engine
    with TestClient(APP):
        yield APP


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("API_FUZZ_EXAMPLES", "25")),
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi(case: Any, env: ApiEnv, app: Any) -> None:
    for key in ("admin", "wwtp"):
        case.call_and_validate(headers=bearer(env.keys[key]), checks=CHECKS)
