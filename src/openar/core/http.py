"""Small request helpers shared by the front doors."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The client's address. ``X-Forwarded-For`` is believed only when the direct peer is one
    of ``OPENAR_TRUSTED_PROXIES``; then the right-most address not itself a trusted proxy."""
    peer = request.META.get("REMOTE_ADDR") or None
    trusted = _trusted_networks()
    if peer is None or not trusted or not _in(peer, trusted):
        return peer
    forwarded = [
        part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()
    ]
    for address in reversed(forwarded):
        if not _in(address, trusted):
            return address if _valid(address) else peer
    return peer


def user_agent(request: HttpRequest) -> str:
    return str(request.META.get("HTTP_USER_AGENT", ""))[:300]


def _trusted_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(item, strict=False) for item in getattr(settings, "OPENAR_TRUSTED_PROXIES", ())
    ]


def _valid(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _in(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
