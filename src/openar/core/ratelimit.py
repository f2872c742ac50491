"""Fixed-window rate limits on the shared cache (Redis when configured, else the database
cache or, in tests, local memory)."""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache


def _key(scope: str, subject: str, window: int) -> str:
    digest = hashlib.sha256(subject.strip().lower().encode()).hexdigest()[:32]
    return f"openar:rl:{scope}:{digest}:{int(time.time()) // window}"


def hit(scope: str, subject: str, *, limit: int, window: int) -> bool:
    """Count one attempt of ``subject`` (an IP address, an email) in ``scope``; False when
    it is over ``limit`` attempts in the current ``window`` seconds."""
    key = _key(scope, subject, window)
    if cache.add(key, 1, timeout=window + 1):
        return True
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window + 1)
        return True
    return count <= limit
