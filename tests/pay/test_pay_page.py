"""The login-free pay page: a pay-page link opens ``/pay/`` (after the confirm step), which
shows what is past due and lets the payer pay it in full or in part, and reaches nothing else
of the account."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import TODAY, dec, fresh, issue_invoice, text_of
from openar.billing.models import Invoice
from openar.customers.models import Contact, Customer
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink
from openar.payments.models import Payment

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
Capture = Callable[..., Any]


@pytest.fixture
def invoices(contact: Contact, clock: time_machine.Traveller) -> dict[str, Invoice]:
    customer = contact.customer
    return {
        "late": issue_invoice(customer, "INV-1", "100.00", due_date=TODAY - datetime.timedelta(days=10)),
        "later": issue_invoice(customer, "INV-2", "50.00", due_date=TODAY - datetime.timedelta(days=5)),
        "next": issue_invoice(customer, "INV-3", "80.00", due_date=TODAY + datetime.timedelta(days=20)),
    }


@pytest.fixture
def payer(contact: Contact, invoices: dict[str, Invoice]) -> Client:
    """A payer who opened a pay-page link and confirmed it."""
    with scope(organization=contact.customer.organization):
        issued = magic_link_create(contact=contact, scope_=MagicLink.Scope.PAY)
    assert urlsplit(issued.url).path == f"/pay/{issued.token}/"
    client = Client()
    opened = client.get(urlsplit(issued.url).path)
    assert opened.status_code == 302 and opened["Location"] == "/l/confirm/"
    assert client.get("/l/confirm/").status_code == 200  # opening uses nothing up
    confirmed = client.post("/l/confirm/")
    assert confirmed.status_code == 302 and confirmed["Location"] == "/pay/"
    return client


def test_the_pay_page_shows_what_is_past_due_and_the_choices(payer: Client) -> None:
    text = text_of(payer.get("/pay/").content)
    assert "Past due: $150.00" in text
    assert "INV-1" in text and "INV-2" in text and "INV-3" not in text
    assert "Pay in full ($150.00)" in text and "Pay part now" in text
    assert "This page is only for paying Acme Supplies" in text


@pytest.mark.parametrize(
    "path",
    ["/portal/", "/portal/invoices/", "/portal/pay/", "/portal/documents/", "/portal/details/", "/desk/"],
)
def test_nothing_else_of_the_account_is_reachable(payer: Client, path: str) -> None:
    assert payer.get(path).status_code in (403, 302)
    assert "INV-3" not in text_of(payer.get(path).content)


def test_paying_in_full_from_the_pay_page(
    payer: Client, invoices: dict[str, Invoice], django_capture_on_commit_callbacks: Capture
) -> None:
    choose = payer.get("/pay/checkout/")
    assert choose.status_code == 200 and "INV-3" not in text_of(choose.content)
    reviewed = payer.post("/pay/checkout/", {"step": "review", "mode": "past_due", "method": "card"})
    assert "Total to pay $150.00" in text_of(reviewed.content)
    data: dict[str, list[str]] = {}
    for name, value in HIDDEN.findall(reviewed.content.decode()):
        data.setdefault(name, []).append(value)
    confirmed = payer.post("/pay/checkout/", {**data, "step": "confirm"})
    checkout = urlsplit(confirmed["Location"]).path
    with django_capture_on_commit_callbacks(execute=True):
        paid = payer.post(
            checkout, {"number": "4242424242424242", "expiry": "12/39", "cvc": "123", "name": "D"}
        )
    back = payer.get(paid["Location"])
    with scopes_disabled():
        payment = Payment.objects.get()
    assert back["Location"] == f"/pay/payment/{payment.pk}/"
    page = payer.get(back["Location"])
    assert page.status_code == 200 and "Paid, thank you" in text_of(page.content)
    assert "Set up automatic payments" not in text_of(page.content)
    assert payer.get(f"/pay/payment/{payment.pk}/receipt.pdf").status_code == 200
    assert fresh(invoices["late"]).open_amount == 0 and fresh(invoices["later"]).open_amount == 0
    assert fresh(invoices["next"]).open_amount == dec("80.00")


def test_paying_part_starts_with_an_amount_and_stays_within_what_is_past_due(
    payer: Client, invoices: dict[str, Invoice]
) -> None:
    choose = payer.get("/pay/checkout/?mode=amount")
    assert 'id="mode-amount" checked' in choose.content.decode()
    too_much = payer.post(
        "/pay/checkout/", {"step": "review", "mode": "amount", "amount": "200", "method": "card"}
    )
    beyond = payer.post(
        "/pay/checkout/",
        {"step": "review", "mode": "invoices", "invoice": [invoices["next"].pk], "method": "card"},
    )
    part = payer.post(
        "/pay/checkout/", {"step": "review", "mode": "amount", "amount": "60", "method": "card"}
    )
    assert too_much.status_code == 400 and "you can pay up to $150.00" in text_of(too_much.content)
    assert beyond.status_code == 400
    assert part.status_code == 200 and "Total to pay $60.00" in text_of(part.content)


def test_a_portal_link_cannot_open_the_pay_doors_pages(
    contact: Contact, invoices: dict[str, Invoice]
) -> None:
    with scope(organization=contact.customer.organization):
        issued = magic_link_create(contact=contact, scope_=MagicLink.Scope.PAST_DUE)
    client = Client()
    client.get(urlsplit(issued.url).path)
    client.post("/l/confirm/")
    assert client.get("/pay/").status_code == 403
    assert client.get("/portal/").status_code == 200


def test_another_customers_payment_is_a_404(payer: Client, customer_2: Customer) -> None:
    from factories import record_payment

    other = record_payment(customer_2, "10.00", allocations=[])
    assert payer.get(f"/pay/payment/{other.pk}/").status_code == 404
    assert payer.get(f"/pay/payment/{other.pk}/receipt.pdf").status_code == 404


def test_a_past_due_reminder_carries_a_pay_page_link(
    contact: Contact, invoices: dict[str, Invoice], django_capture_on_commit_callbacks: Capture
) -> None:
    """The friendly reminder (3 days after the oldest due date) links to ``/pay/<token>/``:
    opened and confirmed, it lands on the pay page."""
    from openar.notifications.models import Message
    from openar.notifications.services import dispatch_due
    from openar.reminders.engine import run_all

    moment = datetime.datetime.now(datetime.UTC)
    with django_capture_on_commit_callbacks(execute=True):
        run_all(moment)
        dispatch_due(moment)
    with scopes_disabled():
        reminder = Message.objects.filter(dunning_step__isnull=False, channel="email").order_by("pk").last()
    assert reminder is not None
    links = [link for link in reminder.links if "/pay/" in link and "/portal/" not in link]
    assert len(links) == 1 and links[0] in reminder.body_text
    client = Client()
    client.get(urlsplit(links[0]).path)
    assert client.post("/l/confirm/")["Location"] == "/pay/"
    assert "Past due: $150.00" in text_of(client.get("/pay/").content)
