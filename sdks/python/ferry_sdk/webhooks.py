"""Checking that a webhook delivery came from Ferry: `Ferry-Signature` is
`v1=<hex HMAC-SHA256(secret, "{Ferry-Timestamp}.{body}")>`."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Mapping


def verify_webhook(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance_seconds: float = 300,
    now: float | None = None,
) -> bool:
    """Whether `body` (the raw bytes as received) was signed with `secret` less than
    `tolerance_seconds` ago (older deliveries are refused, which stops replays). Compares
    in constant time; header names in any case."""
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp = lower.get("ferry-timestamp", "")
    signature = lower.get("ferry-signature", "")
    if not (timestamp.isascii() and timestamp.isdigit()) or not signature:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_seconds:
        return False
    key = secret.encode() if isinstance(secret, str) else secret
    raw = body.encode() if isinstance(body, str) else body
    mac = hmac.new(key, timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"v1={mac}".encode(), signature.encode("utf-8", "replace"))
