"""Holds and reminder policies from the desk's customer page: a hold stops the reminders
until it is released or its day ends; the policy follows the customer's segment."""

from __future__ import annotations

import datetime

import time_machine
from django_scopes import scope, scopes_disabled

from factories import TODAY, TORONTO, Users, issue_invoice, signed_in, text_of
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Contact, Customer, Hold
from openar.notifications.models import Message
from openar.reminders.engine import plan, run
from openar.reminders.models import DunningPolicy, DunningStep
from openar.tenants.models import Organization


def at(day: int) -> datetime.datetime:
    return datetime.datetime.combine(TODAY + datetime.timedelta(days=day), datetime.time(10), tzinfo=TORONTO)


def test_a_hold_placed_in_the_desk_stops_reminders_until_its_day_ends(
    users: Users, supplier: Organization, customer: Customer, contact: Contact
) -> None:
    issue_invoice(customer, "INV-H", "80.00", due_date=TODAY)
    client = signed_in(users.collector)
    with time_machine.travel(at(0), tick=False):
        response = client.post(
            f"/desk/customers/{customer.pk}/holds/",
            {
                "reason": "Customer disputes the freight charge",
                "until": str(TODAY + datetime.timedelta(days=9)),
            },
        )
        page = text_of(client.get(response["Location"]).content)
    assert "On hold Customer disputes the freight charge until" in page
    for day in (3, 9):
        with time_machine.travel(at(day), tick=False):
            assert run(supplier, at(day)).created == 0, day
    with time_machine.travel(at(10), tick=False):
        result = run(supplier, at(10))
    assert result.created == 1  # the day after the hold's last day: the latest due step only
    with scopes_disabled():
        (message,) = Message.objects.all()
        assert message.dunning_step.offset_days == 3  # type: ignore[union-attr]
        assert AuditEvent.objects.filter(action="openar.hold.placed").count() == 1
        assert Activity.objects.filter(summary__startswith="Collection on hold").exists()


def test_releasing_a_hold_resumes_reminders(
    users: Users, supplier: Organization, customer: Customer, contact: Contact
) -> None:
    issue_invoice(customer, "INV-H", "80.00", due_date=TODAY)
    client = signed_in(users.collector)
    client.post(f"/desk/customers/{customer.pk}/holds/", {"reason": "Awaiting a credit note"})
    with scope(organization=supplier):
        hold = Hold.objects.get()
        assert plan(supplier, at(5)) == []
    client.post(f"/desk/customers/{customer.pk}/holds/{hold.pk}/release/")
    with scope(organization=supplier):
        assert [p.customer_id for p in plan(supplier, at(5))] == [customer.pk]
    assert (
        signed_in(users.manager).post(f"/desk/customers/{customer.pk}/holds/", {"reason": "x"}).status_code
        == 403
    )


def test_a_hold_needs_a_reason_and_a_future_end(users: Users, customer: Customer) -> None:
    client = signed_in(users.collector)
    blank = client.post(f"/desk/customers/{customer.pk}/holds/", {"reason": "  "})
    assert "Say why collection is on hold." in text_of(client.get(blank["Location"]).content)
    past = client.post(f"/desk/customers/{customer.pk}/holds/", {"reason": "x", "until": "2000-01-01"})
    assert "The end of a hold must be in the future." in text_of(client.get(past["Location"]).content)
    with scope(organization=customer.organization):
        assert not Hold.objects.exists()


def test_the_customer_follows_the_policy_of_its_segment(
    users: Users, supplier: Organization, customer: Customer, contact: Contact
) -> None:
    issue_invoice(customer, "INV-S", "80.00", due_date=TODAY)
    with scope(organization=supplier):
        key = DunningPolicy.objects.create(organization=supplier, name="Key accounts", segment="key")
        DunningStep.objects.create(
            organization=supplier, policy=key, offset_days=20, channel="email", template_key="reminder-firm"
        )
    client = signed_in(users.collector)
    assert "Key accounts (key)" in text_of(client.get(f"/desk/customers/{customer.pk}/").content)

    client.post(f"/desk/customers/{customer.pk}/segment/", {"segment": "key"})

    with scope(organization=supplier):
        customer.refresh_from_db()
        assert customer.segment == "key"
        assert plan(supplier, at(5)) == []  # the key-account policy starts at +20
        assert [p.step.policy_id for p in plan(supplier, at(21))] == [key.pk]
    bogus = client.post(f"/desk/customers/{customer.pk}/segment/", {"segment": "nope"})
    assert "Choose one of the reminder policies." in text_of(client.get(bogus["Location"]).content)


def test_a_hold_end_date_out_of_range_is_a_message_not_an_error(users: Users, customer: Customer) -> None:
    client = signed_in(users.collector)
    for until in ("9999-12-31", "31/12/2026", "²"):
        response = client.post(f"/desk/customers/{customer.pk}/holds/", {"reason": "x", "until": until})
        assert response.status_code == 302, until
        assert "Enter the end date as a date" in text_of(client.get(response["Location"]).content)
    with scope(organization=customer.organization):
        assert not Hold.objects.exists()
