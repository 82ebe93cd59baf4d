"""The ASGI application uvicorn serves: `uvicorn api.main:app`."""

from __future__ import annotations

from api.app import create_app
from core.settings import get_settings

app = create_app(get_settings())
