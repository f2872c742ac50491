"""Promising and arranging from the customer's side: on the login-free pay page (a pay-page
link) and in the portal. Bad input is answered next to its field; a double submit makes one;
a plan can be paid by hand or with a card saved on the way (after a step-up for a link)."""

from __future__ import annotations

import datetime
import html
import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import TODAY, Users, dec, issue_invoice, make_contact, signed_in, text_of
from openar.billing.models import Invoice
from openar.commitments.models import Plan, Promise
from openar.customers.models import Contact, Customer
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink
from openar.identity.stepup import DONE_KEY

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@pytest.fixture
def invoices(contact: Contact, clock: time_machine.Traveller) -> dict[str, Invoice]:
    customer = contact.customer
    return {
        "late": issue_invoice(customer, "INV-1", "300.00", due_date=TODAY - datetime.timedelta(days=20)),
        "later": issue_invoice(customer, "INV-2", "150.00", due_date=TODAY - datetime.timedelta(days=5)),
        "next": issue_invoice(customer, "INV-3", "80.00", due_date=TODAY + datetime.timedelta(days=20)),
    }


@pytest.fixture
def payer(contact: Contact, invoices: dict[str, Invoice]) -> Client:
    with scope(organization=contact.customer.organization):
        issued = magic_link_create(contact=contact, scope_=MagicLink.Scope.PAY)
    client = Client()
    client.get(urlsplit(issued.url).path)
    assert client.post("/l/confirm/")["Location"] == "/pay/"
    return client


def form_of(response: Any, marker: str) -> dict[str, list[str]]:
    """The hidden fields of the form holding ``marker`` (a step's value)."""
    page = response.content.decode()
    for form in re.findall(r"<form.*?</form>", page, flags=re.S):
        if marker in form:
            data: dict[str, list[str]] = {}
            for name, value in HIDDEN.findall(form):
                data.setdefault(name, []).append(html.unescape(value))
            return data
    raise AssertionError(f"no form with {marker!r}")


def promises() -> list[Promise]:
    with scopes_disabled():
        return list(Promise.objects.order_by("pk"))


def plans() -> list[Plan]:
    with scopes_disabled():
        return list(Plan.objects.order_by("pk"))


# --- promises -----------------------------------------------------------------------------------


def test_a_promise_from_the_pay_page(payer: Client, contact: Contact, invoices: dict[str, Invoice]) -> None:
    page = payer.get("/pay/promise/?amount=450.00")
    text = text_of(page.content)
    assert page.status_code == 200 and "INV-3" not in text
    assert "none ticked" not in text  # a pay link's promise never covers the whole account
    assert f'id="invoice-{invoices["late"].pk}" checked' in page.content.decode()  # past due, ticked
    data = form_of(page, 'name="token"')
    when = (TODAY + datetime.timedelta(days=7)).isoformat()
    fields = {
        **data,
        "amount": "450.00",
        "date": when,
        "note": "Paid on Friday",
        "invoice": [invoices["late"].pk, invoices["later"].pk],
    }
    first = payer.post("/pay/promise/", fields)
    again = payer.post("/pay/promise/", fields)  # a double click

    assert first.status_code == 302 and again.status_code == 302
    (promise,) = promises()
    assert (promise.amount, promise.promised_date.isoformat(), promise.source) == (
        dec("450.00"),
        when,
        "pay_page",
    )
    assert promise.contact_id == contact.pk
    listed = text_of(payer.get("/pay/promise/").content)
    assert "you promised $450.00" in listed and "Open" in listed


@pytest.mark.parametrize(
    ("amount", "day", "field", "message"),
    [
        ("450.00", -1, "date", "date"),
        ("450.00", 400, "date", "date"),
        ("0", 3, "amount", "above zero"),
        ("5000", 3, "amount", ""),
        ("12,50", 3, "amount", "Use a point before the decimals"),
    ],
)
def test_bad_promises_are_refused_next_to_the_field(
    payer: Client, amount: str, day: int, field: str, message: str
) -> None:
    page = payer.get("/pay/promise/")
    data = form_of(page, 'name="token"')
    refused = payer.post(
        "/pay/promise/",
        {**data, "amount": amount, "date": (TODAY + datetime.timedelta(days=day)).isoformat()},
    )
    assert refused.status_code == 400
    shown = re.search(rf'<p class="field__error" id="{field}-error">(.*?)</p>', refused.content.decode())
    assert shown is not None, text_of(refused.content)
    assert message.lower() in html.unescape(shown.group(1)).lower()
    assert f'value="{html.escape(amount)}"' in refused.content.decode()  # what was typed is kept
    assert promises() == []


def test_after_paying_part_the_rest_is_offered_as_a_promise(
    payer: Client, invoices: dict[str, Invoice], django_capture_on_commit_callbacks: Any
) -> None:
    reviewed = payer.post(
        "/pay/checkout/", {"step": "review", "mode": "amount", "amount": "100", "method": "card"}
    )
    data = form_of(reviewed, "checkout_token")
    confirmed = payer.post("/pay/checkout/", {**data, "step": "confirm"})
    with django_capture_on_commit_callbacks(execute=True):
        paid = payer.post(
            urlsplit(confirmed["Location"]).path,
            {"number": "4242424242424242", "expiry": "12/39", "cvc": "123", "name": "D"},
        )
    page = payer.get(paid["Location"], follow=True)
    text = text_of(page.content)
    assert "Still open: $350.00" in text and "Promise to pay the rest by a date" in text
    assert "/pay/promise/?amount=350.00" in page.content.decode()


# --- plans --------------------------------------------------------------------------------------


def quote(client: Client, door: str, **choice: Any) -> Any:
    return client.post(
        f"/{door}/plan/",
        {
            "step": "quote",
            "frequency": "monthly",
            "installment_count": "3",
            "first_date": TODAY.isoformat(),
            "down_payment": "0",
            **choice,
        },
    )


def test_a_plan_from_the_pay_page_paid_by_hand(payer: Client, invoices: dict[str, Invoice]) -> None:
    form = payer.get("/pay/plan/")
    assert form.status_code == 200 and "INV-3" not in text_of(form.content)
    reviewed = quote(payer, "pay", invoice=[invoices["late"].pk, invoices["later"].pk])
    text = text_of(reviewed.content)
    assert reviewed.status_code == 200, text
    assert "$450.00 in 3 payments, every month" in text
    assert "Payment 1" in text and "$150.00" in text
    accept = form_of(reviewed, 'value="accept"')
    unticked = payer.post("/pay/plan/", accept)
    assert unticked.status_code == 400 and "Tick the box to agree" in text_of(unticked.content)

    done = payer.post("/pay/plan/", {**accept, "consent": "yes"})
    twice = payer.post("/pay/plan/", {**accept, "consent": "yes"})
    assert done.status_code == 302 and twice.status_code == 302
    (plan,) = plans()
    assert (plan.state, plan.total, plan.installment_count, plan.source) == (
        "active",
        dec("450.00"),
        3,
        "pay_page",
    )
    assert plan.consent_text == accept["terms"][0] and plan.consent_ip == "127.0.0.1"
    current = text_of(payer.get("/pay/plan/").content)
    assert "you pay each one yourself" in current and "Payment 3" in current


def test_a_plan_outside_the_policy_is_refused_next_to_the_field(
    payer: Client, invoices: dict[str, Invoice]
) -> None:
    too_many = quote(payer, "pay", invoice=[invoices["late"].pk], installment_count="48")
    past = quote(
        payer,
        "pay",
        invoice=[invoices["late"].pk],
        first_date=(TODAY - datetime.timedelta(days=1)).isoformat(),
    )
    nothing = quote(payer, "pay")
    assert too_many.status_code == 400 and 'id="count-error"' in too_many.content.decode()
    assert past.status_code == 400 and 'id="first-error"' in past.content.decode()
    assert nothing.status_code == 400 and 'id="invoices-error"' in nothing.content.decode()
    assert plans() == []


def test_a_plan_paid_by_a_card_saved_on_the_way_after_a_step_up(
    payer: Client, contact: Contact, invoices: dict[str, Invoice]
) -> None:
    reviewed = quote(payer, "pay", invoice=[invoices["late"].pk, invoices["later"].pk])
    save = {**form_of(reviewed, 'value="save_method"'), "kind": "card"}
    asked = payer.post("/pay/plan/", save)
    assert asked.status_code == 302 and asked["Location"].startswith("/pay/step-up/?next=")
    session = payer.session
    session[DONE_KEY] = {"contact": contact.pk, "at": time.time()}
    session.save()
    started = payer.post("/pay/plan/", save)
    setup_path = urlsplit(started["Location"]).path
    assert setup_path.startswith("/sandbox/setup/")
    saved = payer.post(
        setup_path, {"number": "4242424242424242", "expiry": "12/39", "cvc": "123", "name": "D"}
    )
    review = payer.get(urlsplit(saved["Location"]).path)
    assert review.status_code == 200
    assert "Visa ending 4242 is saved." in text_of(review.content)
    assert "Charge my Visa ending 4242 on each date" in text_of(review.content)
    accept = form_of(review, 'value="accept"')
    assert "Visa ending 4242" in accept["terms"][0]
    assert payer.post("/pay/plan/", {**accept, "consent": "yes"}).status_code == 302
    (plan,) = plans()
    assert plan.saved_method is not None and plan.saved_method.label == "Visa ending 4242"


def test_the_portal_offers_the_same_pages(
    users: Users, customer: Customer, invoices: dict[str, Invoice]
) -> None:
    make_contact(customer, "Dana", "dana@bolt.example", user=users.customer)
    client = signed_in(users.customer)
    assert client.get("/portal/promise/").status_code == 200
    reviewed = quote(client, "portal", invoice=[invoices["next"].pk], installment_count="2")
    assert reviewed.status_code == 200 and "$80.00 in 2 payments" in text_of(reviewed.content)
    accept = form_of(reviewed, 'value="accept"')
    assert client.post("/portal/plan/", {**accept, "consent": "yes"}).status_code == 302
    assert plans()[0].source == "portal"
    pay_page = text_of(client.get("/portal/pay/").content)
    assert "Promise to pay by a date" in pay_page


def test_staff_viewing_as_the_customer_cannot_promise_or_agree(
    users: Users, customer: Customer, invoices: dict[str, Invoice]
) -> None:
    staff = signed_in(users.collector)
    staff.post(f"/desk/customers/{customer.pk}/view-as/")
    page = staff.get("/portal/promise/")
    data = form_of(page, 'name="token"')
    refused = staff.post(
        "/portal/promise/", {**data, "amount": "10", "date": (TODAY + datetime.timedelta(days=2)).isoformat()}
    )
    assert refused.status_code == 400 and "nothing can be promised" in text_of(refused.content)
    reviewed = quote(staff, "portal", invoice=[invoices["late"].pk])
    accept = form_of(reviewed, 'value="accept"')
    assert staff.post("/portal/plan/", {**accept, "consent": "yes"}).status_code == 403
    assert promises() == [] and plans() == []


def test_a_plan_proposed_at_the_desk_is_accepted_by_the_customer(
    users: Users, contact: Contact, invoices: dict[str, Invoice], django_capture_on_commit_callbacks: Any
) -> None:
    from django.core import mail

    customer = contact.customer
    staff = signed_in(users.collector)
    arrangement = {
        "invoices": [invoices["late"].pk, invoices["later"].pk],
        "down_payment": "0",
        "frequency": "monthly",
        "installment_count": "3",
        "first_date": (TODAY + datetime.timedelta(days=3)).isoformat(),
    }
    nobody = staff.post(f"/desk/customers/{customer.pk}/plans/new/", {**arrangement, "step": "propose"})
    assert nobody.status_code == 400 and "Choose a contact who takes email" in text_of(nobody.content)
    with django_capture_on_commit_callbacks(execute=True):
        sent = staff.post(
            f"/desk/customers/{customer.pk}/plans/new/",
            {**arrangement, "step": "propose", "propose_contact": contact.pk},
        )
    assert sent.status_code == 302
    assert plans() == []  # nothing is set up until the customer accepts
    (email,) = [m for m in mail.outbox if m.subject == f"A payment plan for account {customer.number}"]
    link = re.search(r"http://\S+/pay/[A-Za-z0-9_-]+/", email.body)
    assert link is not None and "$150.00" in email.body

    client = Client()
    client.get(urlsplit(link.group(0)).path)
    landed = client.post("/l/confirm/")
    assert landed.status_code == 302 and landed["Location"].startswith("/pay/plan/?proposal=1")
    review = client.get(landed["Location"])
    assert "$450.00 in 3 payments, every month" in text_of(review.content)
    accept = form_of(review, 'value="accept"')
    assert client.post("/pay/plan/", {**accept, "consent": "yes"}).status_code == 302
    (plan,) = plans()
    assert (plan.state, plan.source, plan.consent_contact_id) == ("active", "pay_page", contact.pk)
