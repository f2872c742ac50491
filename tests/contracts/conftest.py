"""Fixtures of the contract tests: a small real PDF, contracts made and sent through the
services, and browsers signed in the ways a customer can be (a sign-in link, a password
alone, a password and an authenticator app)."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django_scopes import scope, scopes_disabled
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from factories import Users
from openar.contracts.models import Contract
from openar.contracts.services import Signer, consent_text, contract_send, contract_sign, contract_upload
from openar.core.models import AuditEvent
from openar.customers.models import Contact, Customer
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink, User

SignFn = Callable[..., Contract]


def pdf_bytes(
    text: str = "Service agreement between Acme Supplies and Bolt Hardware", pages: int = 2
) -> bytes:
    buffer = io.BytesIO()
    drawing = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    for n in range(pages):
        drawing.drawString(72, 750, f"{text} - page {n + 1}")
        drawing.showPage()
    drawing.save()
    return buffer.getvalue()


def fresh(contract: Contract) -> Contract:
    with scopes_disabled():
        return Contract.objects.get(pk=contract.pk)


def events(action: str) -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.filter(action=action).order_by("pk"))


@pytest.fixture
def make_contract(users: Users) -> Callable[..., Contract]:
    def make(
        customer: Customer, *, send: bool = True, content: bytes | None = None, **kwargs: Any
    ) -> Contract:
        with scope(organization=customer.organization):
            contract = contract_upload(
                customer=customer,
                title=kwargs.pop("title", "Service agreement 2025"),
                content=content if content is not None else pdf_bytes(),
                filename="service agreement.pdf",
                summary=kwargs.pop("summary", "Delivery within 5 days; net 30."),
                actor=users.collector,
                **kwargs,
            )
            if send:
                contract_send(contract=contract, actor=users.collector)
        return fresh(contract)

    return make


@pytest.fixture
def sign(users: Users) -> SignFn:
    """Sign through the service, as the portal does after a proof of identity."""

    def do(contract: Contract, contact: Contact | None, **change: Any) -> Contract:
        with scope(organization=contract.organization):
            contract = Contract.objects.select_related("customer__organization").get(pk=contract.pk)
            fields: dict[str, Any] = {
                "typed_name": "Dana Payables",
                "consent": True,
                "shown_consent": consent_text(contract),
                "seen_sha256": contract.sha256,
            }
            fields.update(change)
            signer = fields.pop(
                "signer",
                Signer(
                    user=users.customer,
                    contact=contact,
                    ip="203.0.113.7",
                    user_agent="Mozilla/5.0 (Test) Firefox/130.0",
                    auth_method="password + authenticator app",
                ),
            )
            return contract_sign(contract=contract, signer=signer, **fields)

    return do


def narrow_client(contact: Contact, target: str = "") -> Client:
    """A browser that opened a sign-in link of ``contact`` and confirmed it."""
    with scope(organization=contact.customer.organization):
        issued = magic_link_create(contact=contact, scope_=MagicLink.Scope.ACCOUNT, target=target)
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (Narrow) Safari/605.1")
    assert client.get(f"/l/{issued.token}/").status_code == 302
    assert client.post("/l/confirm/").status_code == 302
    return client


def full_client(user: User, *, mfa: str | None = "totp") -> Client:
    """A full session of ``user``, signed in with a password and (``mfa``) a second factor,
    as allauth records them in the session."""
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (Full) Chrome/129.0")
    client.force_login(user)
    session = client.session
    records: list[dict[str, Any]] = [{"method": "password", "at": time.time(), "email": user.email}]
    if mfa:
        records.append({"method": "mfa", "at": time.time(), "type": mfa})
    session["account_authentication_methods"] = records
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()
    return client


def emailed_code() -> str:
    found = re.search(r"\b(\d{6})\b", str(mail.outbox[-1].subject))
    assert found is not None, mail.outbox[-1].subject
    return found.group(1)


@pytest.fixture
def linked(users: Users, contact: Contact) -> Contact:
    """Dana's contact record, linked to Dana's own portal user."""
    contact.user = users.customer
    contact.save(update_fields=["user"])
    return contact
