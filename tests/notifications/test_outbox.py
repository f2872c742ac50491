"""The desk's outbox, a message whole, sending again, tomorrow's reminders (skip, send now),
and the unsubscribe link of reminder emails."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import TODAY, TORONTO, Users, issue_invoice, signed_in, text_of
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Contact, Customer
from openar.notifications.models import Message
from openar.notifications.services import Draft, dispatch_due, message_create, message_send
from openar.reminders.engine import run, unsubscribe_url
from openar.reminders.models import DunningStep
from openar.tenants.models import Organization

DAY_8 = datetime.datetime.combine(TODAY + datetime.timedelta(days=8), datetime.time(10), tzinfo=TORONTO)


def email_to(contact: Contact, subject: str = "Your statement") -> Message:
    with scope(organization=contact.organization):
        message = message_create(
            customer=contact.customer,
            channel="email",
            draft=Draft(subject, "Hello\n\nSee https://example.com/x"),
            contact=contact,
        )
    return message


def test_the_outbox_lists_messages_with_their_state_and_filters(
    users: Users, contact: Contact, customer_2: Customer
) -> None:
    sent = email_to(contact, "Statement for June")
    message_send(message_id=sent.pk)
    failed = email_to(contact, "Broken address")
    with scopes_disabled():
        Message.objects.filter(pk=failed.pk).update(
            state="failed", error="The mail server refused the address"
        )
    client = signed_in(users.collector)

    page = text_of(client.get("/desk/outbox/").content)

    assert "Statement for June" in page and "Broken address" in page
    assert "1 message failed or bounced" in page
    assert "The mail server refused the address" in page
    problems = text_of(client.get("/desk/outbox/?state=problems").content)
    assert "Broken address" in problems and "Statement for June" not in problems
    found = text_of(client.get("/desk/outbox/?q=june").content)
    assert "Statement for June" in found and "Broken address" not in found


def test_a_message_is_shown_whole_and_its_html_only_in_a_sandbox(users: Users, contact: Contact) -> None:
    message = email_to(contact)
    with scopes_disabled():
        Message.objects.filter(pk=message.pk).update(body_html='<p>Hi</p><script>alert("x")</script>')
    response = signed_in(users.manager).get(f"/desk/messages/{message.pk}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "See https://example.com/x" in text_of(html)
    assert '<script>alert("x")</script>' not in html  # escaped into srcdoc, never live
    assert re.search(r'<iframe[^>]+sandbox="allow-popups allow-popups-to-escape-sandbox"[^>]+srcdoc=', html)


def test_a_failed_message_is_sent_again_as_a_new_one(users: Users, contact: Contact) -> None:
    message = email_to(contact)
    with scopes_disabled():
        Message.objects.filter(pk=message.pk).update(state="failed", error="refused")
    client = signed_in(users.collector)

    response = client.post(f"/desk/messages/{message.pk}/send-again/")

    with scopes_disabled():
        again = Message.objects.exclude(pk=message.pk).get()
    assert response["Location"] == f"/desk/messages/{again.pk}/"
    assert (again.subject, again.state, again.thread_id) == (message.subject, "ready", message.thread_id)
    assert signed_in(users.manager).post(f"/desk/messages/{message.pk}/send-again/").status_code == 403
    sent = client.post(f"/desk/messages/{again.pk}/send-again/")  # only failed ones
    assert "Only a failed, bounced or skipped message can be sent again." in text_of(
        client.get(sent["Location"]).content
    )


@pytest.fixture
def owing(supplier: Organization, customer: Customer, contact: Contact) -> Customer:
    issue_invoice(customer, "INV-9", "250.00", due_date=TODAY)
    return customer


def test_tomorrows_reminders_can_be_skipped_or_sent_now(
    users: Users, owing: Customer, contact: Contact
) -> None:
    client = signed_in(users.collector)
    with time_machine.travel(DAY_8 - datetime.timedelta(days=1), tick=False):
        page = client.get("/desk/reminders/upcoming/")
        text = text_of(page.content)
        assert "Bolt Hardware" in text and "to Dana Payables · dana@bolt.example" in text
        fields = dict(re.findall(r'name="(customer|step|cycle)" value="(\d+)"', page.content.decode()))

        skipped = client.post("/desk/reminders/upcoming/skip/", fields)
        assert skipped.status_code == 302
        again = client.post("/desk/reminders/upcoming/skip/", fields)
        assert "was already sent or skipped" in text_of(client.get(again["Location"]).content)

    with scopes_disabled():
        (record,) = Message.objects.all()
        assert (record.state, record.dunning_step_id) == ("skipped", int(fields["step"]))
        assert AuditEvent.objects.filter(action="openar.reminder.skipped").count() == 1
    with time_machine.travel(DAY_8, tick=False):
        assert run(owing.organization, DAY_8).created == 0  # the skipped step is never planned again


def test_send_now_creates_the_reminder_at_once(users: Users, owing: Customer, contact: Contact) -> None:
    client = signed_in(users.collector)
    with time_machine.travel(DAY_8 - datetime.timedelta(days=1), tick=False):
        page = client.get("/desk/reminders/upcoming/")
        fields = dict(re.findall(r'name="(customer|step|cycle)" value="(\d+)"', page.content.decode()))
        response = client.post("/desk/reminders/upcoming/send-now/", fields)
        assert "is on its way" in text_of(client.get(response["Location"]).content)
        dispatch_due()
    with scopes_disabled():
        (message,) = Message.objects.all()
    assert message.state == "sent"
    assert [m.to for m in mail.outbox] == [["dana@bolt.example"]]
    assert signed_in(users.manager).post("/desk/reminders/upcoming/send-now/", fields).status_code == 403


def test_the_unsubscribe_link_asks_first_then_stops_reminder_emails(
    owing: Customer, contact: Contact, supplier: Organization
) -> None:
    url = unsubscribe_url(contact, "email")
    path = url.split("testserver", 1)[-1] if "testserver" in url else "/" + url.split("/", 3)[3]
    client = Client()

    page = client.get(path)
    assert "Stop reminder emails?" in text_of(page.content)
    contact.refresh_from_db()
    assert contact.consent_email  # opening the link changes nothing

    done = client.post(path)
    assert "You will not get reminder emails any more" in text_of(done.content)
    with scope(organization=supplier):
        contact.refresh_from_db()
        assert not contact.consent_email
        assert Activity.objects.filter(customer=owing, summary__contains="consent_email").exists()
    with time_machine.travel(DAY_8, tick=False):
        assert run(supplier, DAY_8).created == 0  # the only contact opted out
    assert Client().get(path[:-3] + "xx/").status_code == 404


def test_one_click_unsubscribe_works_without_a_form(contact: Contact, supplier: Organization) -> None:
    path = "/" + unsubscribe_url(contact, "email").split("/", 3)[3]
    response = Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    with scope(organization=supplier):
        contact.refresh_from_db()
    assert not contact.consent_email


def test_staff_see_which_contact_addresses_do_not_work(
    users: Users, contact: Contact, customer: Customer
) -> None:
    with scope(organization=customer.organization):
        Contact.objects.filter(pk=contact.pk).update(
            email_problem="The mail server refused the address: 550 no such user", consent_sms=False
        )
    page = text_of(signed_in(users.collector).get(f"/desk/customers/{customer.pk}/").content)
    assert "Email not working: The mail server refused the address: 550 no such user" in page


def test_a_new_address_clears_the_flag(contact: Contact, customer: Customer) -> None:
    from openar.customers.services import contact_update

    with scope(organization=customer.organization):
        Contact.objects.filter(pk=contact.pk).update(email_problem="bounced")
        contact.refresh_from_db()
        contact_update(contact=contact, changes={"email": "dana.new@bolt.example"})
        contact.refresh_from_db()
    assert (contact.email, contact.email_problem) == ("dana.new@bolt.example", "")


def test_skipping_a_reminder_of_a_cycle_that_is_not_the_customers_changes_nothing(
    users: Users, owing: Customer, contact: Contact
) -> None:
    client = signed_in(users.collector)
    with scope(organization=owing.organization):
        step = DunningStep.objects.first()
    assert step is not None
    for cycle in ("99999999999999999999999", "123456", "-1"):
        response = client.post(
            "/desk/reminders/upcoming/skip/", {"customer": owing.pk, "step": step.pk, "cycle": cycle}
        )
        assert response.status_code == 302
        assert "not in the plan any more" in text_of(client.get(response["Location"]).content)
    with scopes_disabled():
        assert not Message.objects.exists()


def test_a_message_that_cannot_be_prepared_is_retried_not_stranded(contact: Contact, settings: Any) -> None:
    message = email_to(contact)
    settings.OPENAR_CHANNELS = {**settings.OPENAR_CHANNELS, "email": "no-such-backend"}
    state = message_send(message_id=message.pk)
    with scopes_disabled():
        again = Message.objects.get(pk=message.pk)
    assert (state, again.state, again.attempts) == ("ready", "ready", 1)
    assert again.not_before is not None and "Unexpected error" in again.error
