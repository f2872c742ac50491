"""The reminder engine over time: which reminders go out, to whom, on which day.

The default policy (``openar.reminders.defaults``) is used throughout:
-3 email "upcoming", +3 email "friendly", +10 SMS, +15 email "firm" (with the statement),
+30 email "final" (with the statement), +45 letter, counted from the due date of the oldest
open invoice that is not on hold.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Iterator
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django_scopes import scope, scopes_disabled

from factories import TODAY, TORONTO, issue_invoice, make_contact, make_customer, record_payment
from openar.billing.models import Invoice
from openar.customers.models import Contact, Customer, Hold
from openar.notifications.models import Message
from openar.notifications.services import dispatch_due
from openar.reminders.engine import plan, quiet_until, run, run_all
from openar.reminders.models import DunningStep, ReminderSettings
from openar.tenants.models import Creditor, Organization

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


def at(day: int, hour: int = 10, zone: datetime.tzinfo = TORONTO) -> datetime.datetime:
    """``hour`` o'clock, ``day`` days after TODAY, in ``zone`` (as UTC)."""
    moment = datetime.datetime.combine(TODAY + datetime.timedelta(days=day), datetime.time(hour), tzinfo=zone)
    return moment.astimezone(datetime.UTC)


def tick(moment: datetime.datetime) -> None:
    """What the worker does at ``moment``: plan reminders, then send what is due."""
    with time_machine.travel(moment, tick=False):
        run_all(moment)
        dispatch_due(moment)


def sent() -> list[tuple[str, str, str, int]]:
    """(customer, channel, template key, day after TODAY it left) of every sent reminder."""
    with scopes_disabled():
        rows = (
            Message.objects.filter(dunning_step__isnull=False, sent_at__isnull=False)
            .select_related("customer", "dunning_step")
            .order_by("sent_at", "customer__name")
        )
        return [
            (
                m.customer.name,
                m.channel,
                m.dunning_step.template_key,  # type: ignore[union-attr]
                (m.sent_at.astimezone(TORONTO).date() - TODAY).days,  # type: ignore[union-attr]
            )
            for m in rows
        ]


def with_address(customer: Customer) -> Customer:
    with scope(organization=customer.organization):
        Customer.objects.filter(pk=customer.pk).update(
            address_line1="1 Main St", city="Toronto", postal_code="M5V"
        )
        customer.refresh_from_db()
    return customer


@pytest.fixture
def book(supplier: Organization, creditor: Creditor) -> Iterator[dict[str, Customer]]:
    with time_machine.travel(at(0, 9), tick=False):
        bolt = with_address(make_customer(creditor, "C-1", name="Bolt Hardware", email="ap@bolt.example"))
        anvil = with_address(make_customer(creditor, "C-2", name="Anvil Works", email="ap@anvil.example"))
        crane = with_address(make_customer(creditor, "C-3", name="Crane Ltd", email="ap@crane.example"))
        delta = make_customer(creditor, "C-4", name="Delta KK", email="ap@delta.example")
        echo = make_customer(creditor, "C-5", name="Echo Inc", email="ap@echo.example")
        make_contact(bolt, "Dana", "dana@bolt.example")
        make_contact(anvil, "Ann", "ann@anvil.example")
        crane_contact = make_contact(crane, "Cole", "cole@crane.example")
        delta_contact = make_contact(delta, "Daichi", "daichi@delta.example")
        with scope(organization=supplier):
            Contact.objects.filter(pk=crane_contact.pk).update(
                consent_email=False, consent_sms=True, phone="+14165550100"
            )
            Contact.objects.filter(pk=delta_contact.pk).update(timezone="Asia/Tokyo")
        make_contact(echo, "Eve", "eve@echo.example")
        issue_invoice(bolt, "INV-B", "500.00", due_date=TODAY + datetime.timedelta(days=5))
        issue_invoice(anvil, "INV-A", "300.00", due_date=TODAY)
        issue_invoice(crane, "INV-C", "200.00", due_date=TODAY)
        issue_invoice(delta, "INV-D", "100.00", due_date=TODAY)
        issue_invoice(echo, "INV-E", "100.00", due_date=TODAY)
        with scope(organization=supplier):
            Hold.objects.create(
                organization=supplier,
                customer=anvil,
                reason="Credit review",
                placed_at=at(0, 9),
                expires_at=at(20, 0),
            )
    yield {"bolt": bolt, "anvil": anvil, "crane": crane, "delta": delta, "echo": echo}


def test_ninety_days_of_reminders(supplier: Organization, book: dict[str, Customer]) -> None:
    """Holds, an opt-out, a quiet-hours contact in Tokyo, a payment, and a worker outage of 10
    days (days 35 to 44): exactly these reminders leave, on these days."""
    for day in range(0, 91):
        if 35 <= day < 45:
            continue  # every worker is down
        if day == 12:
            with scope(organization=supplier):
                invoice = Invoice.objects.get(number="INV-E")
            with time_machine.travel(at(12, 9), tick=False):
                record_payment(
                    book["echo"],
                    "100.00",
                    allocations=[(invoice, "100.00")],
                    reference="CHK-1",
                    received_at=at(12, 9),
                )
        tick(at(day, 10))
        tick(at(day, 19))  # an evening run: sends what waited for the quiet hours to end

    assert sent() == [
        # Echo, Anvil, Crane and Delta owe invoices due today: the "upcoming" step (-3) is due
        # at once. Anvil is on hold until day 20; Crane has opted out of email; Delta's
        # contact is in Tokyo, where 10:00 in Toronto is 23:00: it waits for 08:00 there
        # (19:00 in Toronto, the evening run).
        ("Echo Inc", "email", "reminder-upcoming", 0),
        ("Delta KK", "email", "reminder-upcoming", 0),
        # Bolt's invoice is due on day 5: "upcoming" on day 2.
        ("Bolt Hardware", "email", "reminder-upcoming", 2),
        ("Delta KK", "email", "reminder-friendly", 3),
        ("Echo Inc", "email", "reminder-friendly", 3),
        ("Bolt Hardware", "email", "reminder-friendly", 8),
        # The SMS step (+10) reaches only Crane: nobody else has a mobile number with consent.
        ("Crane Ltd", "sms", "reminder-sms", 10),
        # Echo paid on day 12: its reminders stop.
        ("Delta KK", "email", "reminder-firm", 15),
        # Anvil's hold ended on day 20: only the latest due step goes out ("firm", +15); the
        # "friendly" and SMS steps it superseded are skipped.
        ("Anvil Works", "email", "reminder-firm", 20),
        ("Bolt Hardware", "email", "reminder-firm", 20),
        ("Anvil Works", "email", "reminder-final", 30),
        ("Delta KK", "email", "reminder-final", 30),
        # Days 35 to 44 no worker ran. On day 45: Anvil's and Crane's letters (+45, due that
        # day) and Bolt's "final" (+30, due on day 35 during the outage) go out once.
        ("Anvil Works", "letter", "reminder-letter", 45),
        ("Bolt Hardware", "email", "reminder-final", 45),
        ("Crane Ltd", "letter", "reminder-letter", 45),
        # Bolt's letter (+45 from day 5); Delta has no postal address, so no letter.
        ("Bolt Hardware", "letter", "reminder-letter", 50),
    ]
    emails = [m for m in mail.outbox if m.subject]
    assert len(emails) == 12
    firm = next(
        m for m in emails if m.to == ["ann@anvil.example"] and m.subject.startswith("Second reminder")
    )
    assert firm.subject == "Second reminder: $300.00 past due since 30 June 2025"
    assert "INV-A: $300.00, due 30 June 2025" in firm.body
    assert "/l/" in firm.body and "/u/" in firm.body and "List-Unsubscribe" in firm.extra_headers
    assert [name for name, _, _ in firm.attachments] == ["statement-C-2-2025-07-20.pdf"]
    assert {m.to[0] for m in emails} == {
        "dana@bolt.example",
        "ann@anvil.example",
        "daichi@delta.example",
        "eve@echo.example",
    }
    with scopes_disabled():
        assert not Message.objects.exclude(state__in=["sent", "delivered"]).exists()


def test_quiet_hours_span_midnight_in_the_contacts_zone() -> None:
    start, end = datetime.time(20), datetime.time(8)
    assert quiet_until(at(0, 12, TOKYO), TOKYO, start, end) is None
    assert quiet_until(at(0, 21, TOKYO), TOKYO, start, end) == at(1, 8, TOKYO)
    assert quiet_until(at(0, 3, TOKYO), TOKYO, start, end) == at(0, 8, TOKYO)
    assert quiet_until(at(0, 8, TOKYO), TOKYO, start, end) is None


def test_planning_twice_creates_each_reminder_once(supplier: Organization, book: dict[str, Customer]) -> None:
    moment = at(8)
    with time_machine.travel(moment, tick=False):
        first = run(supplier, moment)
        second = run(supplier, moment)
    assert first.created > 0
    assert second.created == 0
    with scopes_disabled():
        keys = list(Message.objects.values_list("customer_id", "dunning_step_id", "dunning_cycle"))
    assert len(keys) == len(set(keys)) == first.created
    del mail.outbox[:]


def test_a_paused_organization_plans_nothing(supplier: Organization, book: dict[str, Customer]) -> None:
    with scope(organization=supplier):
        ReminderSettings.objects.filter(organization=supplier).update(is_paused=True)
        assert plan(supplier, at(8)) == []
        assert DunningStep.objects.exists()
    assert Decimal(0) == Decimal(0)


def test_a_rendered_subject_never_exceeds_what_a_message_holds() -> None:
    from openar.notifications.rendering import render

    draft = render(
        "{% for i in invoices %}{{ i.number }} {% endfor %}",
        "Body",
        {"invoices": [{"number": "N" * 50}] * 20},
    )
    assert len(draft.subject) == 300
