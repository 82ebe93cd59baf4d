"""Files the API and the console hand out (inventories, hourly CSV): named, so a
browser saves them under a name that says what they hold."""

from __future__ import annotations

from fastapi import Response


def attachment(body: str | bytes, filename: str, media_type: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
