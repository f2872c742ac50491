"""django-allauth adapter: accounts are created by organizations, never by open sign-up;
failed sign-ins are counted per account whatever the Host header says; the client address
is the one our own proxy rules give (``openar.core.http.client_ip``)."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from openar.core.http import client_ip


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # allauth keys failures by host:port + login; the port is not part of ALLOWED_HOSTS'
        # check, so each port would be a fresh allowance. One account, one counter.
        login = str(credentials.get("email", credentials.get("username", ""))).strip().lower()
        return f"account:{login}"

    def get_client_ip(self, request: HttpRequest) -> str:
        # X-Forwarded-For only from OPENAR_TRUSTED_PROXIES, checked against the direct peer.
        ip = client_ip(request)
        if not ip:
            raise PermissionDenied("Unable to determine the client's address")
        return ip
