"""Errors the SDK raises: what Ferry answered (`FerryError`, with its stable `code`) or why
it could not be asked (`FerryUnreachable`)."""

from __future__ import annotations

from typing import Any

import httpx


class FerryError(Exception):
    """Ferry answered with an error; `code` is stable (`VALIDATION_FAILED`, `LEASE_LOST`, ...)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        #: For `422`: each bad field by its JSON path (`{"field", "message"}`).
        self.fields = fields or []
        #: Seconds to wait before trying again, from `Retry-After`.
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Worth trying again later: the server or its database is away, or a quota is reached."""
        return self.status in (429, 502, 503, 504)


class FerryUnreachable(Exception):
    """The request got no answer (connection refused, reset, timed out)."""


def error_from(response: httpx.Response) -> FerryError:
    retry_after: float | None = None
    try:
        retry_after = float(response.headers.get("retry-after", "")) or None
    except ValueError:
        retry_after = None
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    return FerryError(
        response.status_code,
        error.get("code") or f"HTTP_{response.status_code}",
        error.get("message") or response.reason_phrase,
        error.get("fields") or [],
        retry_after,
    )
