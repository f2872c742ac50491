"""Fixtures of the dispute tests: Bolt Hardware owes INV-1 (two lines, 300.00 + 100.00,
due 10 days ago) and INV-2 (one line of 50.00, due in 20 days); its collector is assigned;
Dana is its contact, who gets the emails. The clock stands at noon on TODAY in Toronto."""

from __future__ import annotations

import datetime
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django_scopes import scope, scopes_disabled

from factories import TODAY, Users, issue_invoice
from openar.billing.models import Invoice, InvoiceLine
from openar.billing.services import LineInput
from openar.core.uploads import CheckedUpload, UploadKind, upload_check
from openar.customers.models import Contact, Customer
from openar.disputes.models import Dispute, DisputeReason
from openar.disputes.reasons import dispute_reasons
from openar.disputes.services import LineClaim, dispute_open
from openar.notifications.models import Message


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    """A small, valid PNG image (what a phone camera would send, only smaller)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + b"\xcc\x22\x22" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def png_upload(name: str = "damage.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, png_bytes(), content_type="image/png")


def checked_png(name: str = "damage.png") -> CheckedUpload:
    return upload_check(png_upload(name), kind=UploadKind.ATTACHMENT)


@dataclass
class Account:
    customer: Customer
    contact: Contact
    users: Users
    invoice: Invoice  # INV-1: two lines
    lines: list[InvoiceLine]
    later: Invoice  # INV-2: one line
    reasons: dict[str, DisputeReason]


@pytest.fixture
def account(
    customer: Customer, contact: Contact, users: Users, clock: time_machine.Traveller
) -> Iterator[Account]:
    organization = customer.organization
    with scope(organization=organization):
        Customer.objects.filter(pk=customer.pk).update(assigned_collector=users.collector)
        organization.email = "ar@acme.example"
        organization.save(update_fields=["email"])
    customer.assigned_collector = users.collector
    invoice = issue_invoice(
        customer,
        "INV-1",
        "0",
        due_date=TODAY - datetime.timedelta(days=10),
        lines=[
            LineInput("Pallet racking", Decimal(2), Decimal("150.00"), sku="RK-2"),
            LineInput("Assembly", Decimal(1), Decimal("100.00")),
        ],
    )
    later = issue_invoice(customer, "INV-2", "50.00", due_date=TODAY + datetime.timedelta(days=20))
    with scope(organization=organization):
        reasons = {reason.code: reason for reason in dispute_reasons(organization)}
        lines = list(invoice.lines.order_by("position"))
    yield Account(customer, contact, users, invoice, lines, later, reasons)


def open_dispute(
    account: Account, *amounts: tuple[int, str, str], files: int = 0, token: str = ""
) -> Dispute:
    """A dispute on INV-1 by Dana: ``(line index, reason code, amount)`` each."""
    with scope(organization=account.customer.organization):
        return dispute_open(
            invoice=account.invoice,
            lines=[
                LineClaim(account.lines[i].pk, account.reasons[code].pk, Decimal(amount), f"comment {i}")
                for i, code, amount in amounts
            ],
            contact=account.contact,
            actor=account.users.customer,
            message="Please check these.",
            attachments=[checked_png(f"photo-{n}.png") for n in range(files)],
            form_token=token,
        )


def customer_emails(customer: Customer) -> list[tuple[str, str]]:
    """(channel, subject) of every message to the customer that is not a reminder, oldest first."""
    with scopes_disabled():
        return list(
            Message.objects.filter(
                customer=customer, direction=Message.Direction.OUT, dunning_step__isnull=True
            )
            .order_by("pk")
            .values_list("channel", "subject")
        )


def reload(dispute: Dispute) -> Dispute:
    with scopes_disabled():
        return Dispute.objects.get(pk=dispute.pk)
