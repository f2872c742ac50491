"""Regressions found in review of autopay, the pay page and commitments: a charge to a saved
method is never also paid at a checkout page; a sign-in link only uses its own contact's
cards and sees its own contact's plan; an invoice not offered never widens a promise to the
account; autopay leaves planned invoices to their plan; credit pays once per confirm; odd
input is a 400, never a 500."""

from __future__ import annotations

import datetime
import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import (
    TODAY,
    Users,
    dec,
    fresh,
    issue_invoice,
    make_contact,
    record_payment,
    signed_in,
    text_of,
)
from openar.billing.models import Invoice
from openar.commitments.models import Plan, Promise
from openar.commitments.services import plan_create, plan_quote, plan_terms
from openar.customers.models import Contact, Customer
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink
from openar.identity.stepup import DONE_KEY
from openar.payments.autopay import autopay_enable, charge_due, consent_text, setup_complete, setup_start
from openar.payments.models import Autopay, Payment, SavedMethod
from openar.payments.providers import base
from openar.payments.providers.sandbox import SandboxProvider
from openar.payments.sandbox import setup_save

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@pytest.fixture
def invoices(contact: Contact, clock: time_machine.Traveller) -> dict[str, Invoice]:
    customer = contact.customer
    return {
        "late": issue_invoice(customer, "INV-1", "300.00", due_date=TODAY - datetime.timedelta(days=20)),
        "later": issue_invoice(customer, "INV-2", "150.00", due_date=TODAY - datetime.timedelta(days=5)),
        "next": issue_invoice(customer, "INV-3", "80.00", due_date=TODAY + datetime.timedelta(days=20)),
    }


def link_session(contact: Contact, scope_: str = MagicLink.Scope.PAY, *, stepped_up: bool = False) -> Client:
    with scope(organization=contact.customer.organization):
        issued = magic_link_create(contact=contact, scope_=scope_)
    client = Client()
    client.get(urlsplit(issued.url).path)
    client.post("/l/confirm/")
    if stepped_up:
        session = client.session
        session[DONE_KEY] = {"contact": contact.pk, "at": time.time()}
        session.save()
    return client


def saved_card(customer: Customer, contact: Contact | None, number: str = "4242424242424242") -> SavedMethod:
    with scope(organization=customer.organization):
        setup, _ = setup_start(customer=customer, contact=contact, method="card", actor=None)
        setup_save(setup.provider_setup_id, method="card", number=number, expires=None)
        method = setup_complete(setup=setup, actor=None)
    assert method is not None
    return method


def autopay_on(customer: Customer, method: SavedMethod, contact: Contact | None = None) -> None:
    with scope(organization=customer.organization):
        autopay_enable(
            customer=customer,
            method=method,
            agreed_text=consent_text(customer, method),
            contact=contact,
            actor=None,
            ip=None,
        )


def test_a_pending_autopay_charge_is_never_paid_at_a_checkout_page(
    users: Users, contact: Contact, invoices: dict[str, Invoice], monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = contact.customer
    autopay_on(customer, saved_card(customer, contact))

    def down(self: object, request: object, credentials: object) -> base.Charge:
        raise base.ProviderUnavailable("down", retryable=True)

    monkeypatch.setattr(SandboxProvider, "charge_saved", down)
    assert [o.result for o in charge_due()] == ["retry later"]
    with scopes_disabled():
        (payment,) = Payment.objects.all()
    client = signed_in(users.customer)
    page = client.get(f"/portal/pay/{payment.pk}/")
    assert page.status_code == 200 and "Continue paying" not in text_of(page.content)
    tried = client.post("/portal/pay/", {"step": "confirm", "checkout_token": payment.checkout_token})
    assert tried.status_code == 302 and tried["Location"] == f"/portal/pay/{payment.pk}/"
    with scopes_disabled():
        payment.refresh_from_db()
    assert payment.provider_payment_id == "" and payment.state == "pending"


def test_a_sign_in_link_only_uses_cards_its_own_contact_saved(
    contact: Contact, invoices: dict[str, Invoice]
) -> None:
    customer = contact.customer
    boss = make_contact(customer, "The Controller", "controller@bolt.example", is_primary=False)
    theirs = saved_card(customer, boss)
    client = link_session(contact, MagicLink.Scope.PAST_DUE, stepped_up=True)
    page = text_of(client.get("/portal/autopay/").content)
    assert "Visa ending 4242" not in page
    refused = client.post(
        "/portal/autopay/",
        {"action": "enable", "method_id": theirs.pk, "terms": "x", "consent": "yes"},
    )
    assert refused.status_code == 400
    removal = client.post("/portal/autopay/", {"action": "remove", "method_id": theirs.pk})
    assert removal.status_code == 404
    with scopes_disabled():
        assert not Autopay.objects.exists() and SavedMethod.objects.get(pk=theirs.pk).removed_at is None


def test_an_invoice_not_offered_never_makes_a_promise_for_the_whole_account(
    contact: Contact, invoices: dict[str, Invoice]
) -> None:
    client = link_session(contact)
    page = client.get("/pay/promise/")
    token = re.search(r'name="token" value="([^"]+)"', page.content.decode())
    assert token is not None
    for bogus in ("999999", str(invoices["next"].pk), "²"):
        refused = client.post(
            "/pay/promise/",
            {
                "token": token.group(1),
                "amount": "10.00",
                "date": (TODAY + datetime.timedelta(days=3)).isoformat(),
                "invoice": [bogus],
            },
        )
        assert refused.status_code == 400, bogus
        assert 'id="invoices-error"' in refused.content.decode()
    with scopes_disabled():
        assert not Promise.objects.exists()


def test_odd_input_on_the_plan_and_pay_pages_is_a_400_not_a_500(
    contact: Contact, invoices: dict[str, Invoice]
) -> None:
    client = link_session(contact)
    bad_down = client.post(
        "/pay/plan/",
        {
            "step": "quote",
            "invoice": [invoices["late"].pk],
            "frequency": "monthly",
            "installment_count": "3",
            "first_date": TODAY.isoformat(),
            "down_payment": "abc",
        },
    )
    assert bad_down.status_code == 400 and 'id="down-error"' in bad_down.content.decode()
    assert client.get("/pay/plan/?proposal=1&down_payment=x&invoices=1").status_code in (200, 400)
    assert client.get("/pay/checkout/?invoice=²").status_code == 200
    assert client.post("/pay/plan/", {"step": "quote", "invoice": ["²"]}).status_code == 400


def test_autopay_leaves_invoices_in_a_plan_to_the_plan(
    contact: Contact, invoices: dict[str, Invoice], django_capture_on_commit_callbacks: Any
) -> None:
    customer = contact.customer
    autopay_on(customer, saved_card(customer, contact))
    arrangement: dict[str, Any] = {
        "invoices": [invoices["late"]],
        "down_payment": dec("0"),
        "frequency": "monthly",
        "installment_count": 3,
        "first_date": TODAY + datetime.timedelta(days=10),
    }
    with scope(organization=customer.organization):
        quote = plan_quote(customer=customer, **arrangement)
        plan_create(
            customer=customer,
            **arrangement,
            agreed_text=plan_terms(customer, quote, None),
            contact=contact,
            actor=None,
            ip=None,
            source="portal",
        )
    with django_capture_on_commit_callbacks(execute=True):
        assert [o.result for o in charge_due()] == ["succeeded"]
    with scopes_disabled():
        (payment,) = Payment.objects.all()
    assert payment.amount == dec("150.00")  # INV-2 only: INV-1 is the plan's
    assert fresh(invoices["late"]).open_amount == dec("300.00")


def test_credit_pays_once_however_often_the_confirm_is_sent(
    users: Users, contact: Contact, invoices: dict[str, Invoice]
) -> None:
    customer = contact.customer
    record_payment(customer, "250.00", allocations=[])  # credit
    client = signed_in(users.customer)
    reviewed = client.post(
        "/portal/pay/", {"step": "review", "mode": "amount", "amount": "60", "method": "card"}
    )
    data: dict[str, list[str]] = {}
    for name, value in HIDDEN.findall(reviewed.content.decode()):
        data.setdefault(name, []).append(value)
    first = client.post("/portal/pay/", {**data, "step": "confirm"})
    again = client.post("/portal/pay/", {**data, "step": "confirm"})
    assert first.status_code == 302 and again.status_code == 302
    assert fresh(invoices["late"]).open_amount == dec("240.00")  # 60 of credit, once


def test_a_proposal_with_an_invoice_not_yet_due_opens_the_portal(
    users: Users, contact: Contact, invoices: dict[str, Invoice], django_capture_on_commit_callbacks: Any
) -> None:
    from django.core import mail

    customer = contact.customer
    with django_capture_on_commit_callbacks(execute=True):
        sent = signed_in(users.collector).post(
            f"/desk/customers/{customer.pk}/plans/new/",
            {
                "invoices": [invoices["late"].pk, invoices["next"].pk],
                "down_payment": "0",
                "frequency": "monthly",
                "installment_count": "2",
                "first_date": (TODAY + datetime.timedelta(days=3)).isoformat(),
                "step": "propose",
                "propose_contact": contact.pk,
            },
        )
    assert sent.status_code == 302
    link = re.search(r"http://\S+/l/[A-Za-z0-9_-]+/", mail.outbox[-1].body)
    assert link is not None, mail.outbox[-1].body
    client = Client()
    client.get(urlsplit(link.group(0)).path)
    landed = client.post("/l/confirm/")
    assert landed["Location"].startswith("/portal/plan/?proposal=1")
    assert "$380.00 in 2 payments" in text_of(client.get(landed["Location"]).content)


def test_a_sign_in_link_is_not_shown_another_contacts_plan(
    contact: Contact, invoices: dict[str, Invoice]
) -> None:
    customer = contact.customer
    boss = make_contact(customer, "The Controller", "controller@bolt.example", is_primary=False)
    arrangement: dict[str, Any] = {
        "invoices": [invoices["late"]],
        "down_payment": dec("0"),
        "frequency": "monthly",
        "installment_count": 3,
        "first_date": TODAY + datetime.timedelta(days=10),
    }
    with scope(organization=customer.organization):
        quote = plan_quote(customer=customer, **arrangement)
        plan_create(
            customer=customer,
            **arrangement,
            agreed_text=plan_terms(customer, quote, None),
            contact=boss,
            actor=None,
            ip=None,
            source="portal",
        )
    page = link_session(contact).get("/pay/plan/")
    text = text_of(page.content)
    assert "A payment plan is in place" in text and "$100.00" not in text
    with scopes_disabled():
        assert Plan.objects.count() == 1
