""" "My details" in the portal and the step-up that a magic-link session must pass before
saving: an emailed 6-digit code, kept hashed in the session, good for 10 minutes and 5 tries.
A full (password) session saves directly. Everything through the real URLs, the mail in
Django's locmem outbox, the clock moved with time-machine."""

from __future__ import annotations

import datetime
import html
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django_scopes import scope, scopes_disabled
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks

from factories import Users, make_contact, text_of
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Contact, Customer
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink
from openar.identity.stepup import CODE_KEY
from openar.tenants.models import Organization
from openar.tenants.services import policy_update

DETAILS = "/portal/details/"
STEP_UP = "/portal/step-up/"
TO_STEP_UP = "/portal/step-up/?next=%2Fportal%2Fdetails%2F"
# Whole seconds, so that no timestamp written during a test has digits that could pass for a code.
START = datetime.datetime(2025, 6, 30, 14, 0, 0, tzinfo=datetime.UTC)

WRONG = "That code is not right. Check the latest email and try again."
EXPIRED = "That code has expired. Send a new one."
LOCKED = "Too many wrong codes. Send a new one."

CHANGES = {
    "name": "Dana Payables-Smith",
    "email": "dana@bolt.example",
    "phone": "+1 416 555 0100",
    "consent_email": "on",
}


# --- helpers ------------------------------------------------------------------------------------


def field_errors(content: bytes) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for block in re.findall(r'<div class="field[^"]*">(.*?)</div>', content.decode(), re.S):
        name = re.search(r'name="([a-z_]+)"', block)
        messages = re.findall(r'<p class="field__error" id="id_[a-z_]+-error">([^<]*)</p>', block)
        if name and messages:
            found[name.group(1)] = [html.unescape(message) for message in messages]
    return found


def row(contact: Contact) -> dict[str, Any]:
    with scopes_disabled():
        return Contact.objects.filter(pk=contact.pk).values().get()


def events(action: str | None = None) -> list[AuditEvent]:
    with scopes_disabled():
        query = AuditEvent.objects.order_by("pk")
        return list(query.filter(action=action) if action else query)


def activities() -> list[Activity]:
    with scopes_disabled():
        return list(Activity.objects.order_by("pk"))


def narrow_client(contact: Contact) -> Client:
    """A browser that opened a sign-in link of ``contact`` and confirmed it."""
    with scope(organization=contact.customer.organization):
        issued = magic_link_create(contact=contact, scope_=MagicLink.Scope.ACCOUNT)
    client = Client()
    opened = client.get(f"/l/{issued.token}/")
    assert (opened.status_code, opened["Location"]) == (302, "/l/confirm/")
    confirmed = client.post("/l/confirm/")
    assert (confirmed.status_code, confirmed["Location"]) == (302, "/portal/")
    return client


def send_code(client: Client, capture: DjangoCaptureOnCommitCallbacks, next_url: str = DETAILS) -> str:
    """Ask for a code; return the one the email carries."""
    sent_before = len(mail.outbox)
    with capture(execute=True):
        response = client.post(STEP_UP, {"send": "1", "next": next_url})
    assert response.status_code == 200
    assert len(mail.outbox) == sent_before + 1
    found = re.fullmatch(r"Your Acme Supplies confirmation code: (\d{6})", mail.outbox[-1].subject)
    assert found is not None, mail.outbox[-1].subject
    return found.group(1)


def other_than(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def enter(client: Client, code: str, next_url: str = DETAILS) -> Any:
    return client.post(STEP_UP, {"code": code, "next": next_url})


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def linked(users: Users, contact: Contact) -> Contact:
    """Dana's contact record, linked to Dana's own user (a full, password sign-in)."""
    contact.user = users.customer
    contact.save(update_fields=["user"])
    return contact


@pytest.fixture
def full_client(users: Users, linked: Contact) -> Client:
    client = Client()
    client.force_login(users.customer)
    return client


# --- a full session -----------------------------------------------------------------------------


def test_a_full_session_shows_the_details_form(full_client: Client) -> None:
    response = full_client.get(DETAILS)

    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="name" value="Dana Payables"' in page
    assert 'name="email" value="dana@bolt.example"' in page
    assert "confirm it is you" not in text_of(response.content)


def test_a_full_session_saves_directly_and_audits_before_and_after(
    users: Users, full_client: Client, linked: Contact, customer: Customer, supplier: Organization
) -> None:
    before = row(linked)

    response = full_client.post(DETAILS, CHANGES)

    assert (response.status_code, response["Location"]) == (302, DETAILS)
    assert row(linked) == before | {"name": "Dana Payables-Smith", "phone": "+1 416 555 0100"}
    (event,) = events()
    assert event.action == "openar.contact.updated"
    assert (event.organization_id, event.actor_id, event.object_type, event.object_id, event.ip) == (
        supplier.pk,
        users.customer.pk,
        "customers.contact",
        str(linked.pk),
        "127.0.0.1",
    )
    assert event.data == {
        "changes": {
            "name": ["Dana Payables", "Dana Payables-Smith"],
            "phone": ["", "+1 416 555 0100"],
        },
        "by_contact": True,
    }
    (activity,) = activities()
    assert (activity.customer_id, activity.kind, activity.actor_id, activity.summary) == (
        customer.pk,
        Activity.Kind.PORTAL,
        users.customer.pk,
        "Contact details of Dana Payables-Smith updated by the contact: name, phone",
    )
    assert mail.outbox == []
    assert "Your details are saved." in text_of(full_client.get(DETAILS).content)


def test_saving_the_same_details_writes_nothing(full_client: Client, linked: Contact) -> None:
    before = row(linked)

    response = full_client.post(
        DETAILS, {"name": "Dana Payables", "email": "dana@bolt.example", "consent_email": "on"}
    )

    assert response.status_code == 302
    assert row(linked) == before
    assert events() == []
    assert activities() == []


@pytest.mark.parametrize("email", ["not-an-address", "dana@", "dana bolt@example.com"])
def test_an_invalid_email_is_refused_at_the_field_and_nothing_is_saved(
    full_client: Client, linked: Contact, email: str
) -> None:
    before = row(linked)

    response = full_client.post(DETAILS, CHANGES | {"email": email})

    assert response.status_code == 400
    assert field_errors(response.content) == {"email": ["Enter a valid email address."]}
    assert row(linked) == before
    assert events() == []
    assert activities() == []
    assert mail.outbox == []


def test_a_full_session_needs_no_step_up(full_client: Client) -> None:
    response = full_client.get(STEP_UP)

    assert response.status_code == 200
    assert "You signed in with your password, so there is nothing more to confirm." in text_of(
        response.content
    )
    assert mail.outbox == []


# --- a magic-link (narrow) session ---------------------------------------------------------------


def test_a_narrow_session_must_step_up_before_saving(
    clock: time_machine.Traveller,
    contact: Contact,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    client = narrow_client(contact)
    before = row(contact)
    events_before = events()
    assert "we will ask you to confirm it is you before saving changes" in text_of(
        client.get(DETAILS).content
    )

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(DETAILS, CHANGES)

    assert (response.status_code, response["Location"]) == (302, TO_STEP_UP)
    assert row(contact) == before
    assert events() == events_before
    assert activities() == []
    assert callbacks == []
    assert mail.outbox == []


def test_sending_a_code_emails_one_six_digit_code_to_the_contact(
    clock: time_machine.Traveller,
    contact: Contact,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    client = narrow_client(contact)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(STEP_UP, {"send": "1", "next": DETAILS})

    assert response.status_code == 200
    assert "We emailed a 6-digit code to dana@bolt.example" in text_of(response.content)
    (message,) = mail.outbox
    assert message.to == ["dana@bolt.example"]
    (code,) = re.findall(r"Your confirmation code is (\d{6})\. It works for 10 minutes\.", message.body)
    assert re.findall(r"\d{6}", message.subject + message.body) == [code, code]
    (event,) = events("openar.step_up.code_sent")
    assert (event.object_type, event.object_id, event.data) == ("customers.contact", str(contact.pk), {})
    pending = client.session[CODE_KEY]
    assert set(pending) == {"digest", "salt", "at", "tries", "contact"}
    assert pending["contact"] == contact.pk
    assert pending["tries"] == 0
    assert code not in json.dumps(pending)


def test_a_wrong_code_is_a_400_and_counts(
    clock: time_machine.Traveller,
    contact: Contact,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    client = narrow_client(contact)
    code = send_code(client, django_capture_on_commit_callbacks)
    before = row(contact)

    response = enter(client, other_than(code))

    assert response.status_code == 400
    assert WRONG in text_of(response.content)
    assert client.session[CODE_KEY]["tries"] == 1
    assert [event.data for event in events("openar.step_up.failed")] == [{"tries": 1}]
    assert events("openar.step_up.passed") == []
    still = client.post(DETAILS, CHANGES)
    assert (still.status_code, still["Location"]) == (302, TO_STEP_UP)
    assert row(contact) == before


def test_after_five_wrong_codes_even_the_right_one_is_refused(
    clock: time_machine.Traveller,
    contact: Contact,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    client = narrow_client(contact)
    code = send_code(client, django_capture_on_commit_callbacks)
    before = row(contact)

    answers = [enter(client, other_than(code)) for _ in range(5)]
    right = enter(client, code)

    assert [answer.status_code for answer in answers] == [400] * 5
    assert [WRONG in text_of(answer.content) for answer in answers] == [True] * 4 + [False]
    assert LOCKED in text_of(answers[-1].content)
    assert right.status_code == 400
    assert LOCKED in text_of(right.content)
    assert [event.data for event in events("openar.step_up.failed")] == [{"tries": n} for n in range(1, 6)]
    assert events("openar.step_up.passed") == []
    still = client.post(DETAILS, CHANGES)
    assert (still.status_code, still["Location"]) == (302, TO_STEP_UP)
    assert row(contact) == before
    # A new code starts over.
    fresh = send_code(client, django_capture_on_commit_callbacks)
    assert enter(client, fresh).status_code == 302


def test_a_code_older_than_ten_minutes_is_refused(
    clock: time_machine.Traveller,
    contact: Contact,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    client = narrow_client(contact)
    code = send_code(client, django_capture_on_commit_callbacks)
    before = row(contact)
    clock.shift(datetime.timedelta(minutes=10, seconds=1))

    response = enter(client, code)

    assert response.status_code == 400
    assert EXPIRED in text_of(response.content)
    assert events("openar.step_up.passed") == []
    still = client.post(DETAILS, CHANGES)
    assert (still.status_code, still["Location"]) == (302, TO_STEP_UP)
    assert row(contact) == before


def test_a_code_works_until_its_tenth_minute_is_over(
    clock: time_machine.Traveller,
    contact: Contact,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    client = narrow_client(contact)
    code = send_code(client, django_capture_on_commit_callbacks)
    clock.shift(datetime.timedelta(minutes=10))

    response = enter(client, code)

    assert (response.status_code, response["Location"]) == (302, DETAILS)


def test_the_right_code_lets_the_next_post_save_and_the_code_is_never_audited(
    clock: time_machine.Traveller,
    contact: Contact,
    customer: Customer,
    supplier: Organization,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    client = narrow_client(contact)
    assert client.post(DETAILS, CHANGES)["Location"] == TO_STEP_UP
    first = send_code(client, django_capture_on_commit_callbacks)
    wrong = other_than(first)
    assert enter(client, wrong).status_code == 400
    code = send_code(client, django_capture_on_commit_callbacks)  # the newest code replaces the first
    before = row(contact)

    assert enter(client, first if first != code else wrong).status_code == 400
    passed = enter(client, code)
    assert (passed.status_code, passed["Location"]) == (302, DETAILS)
    assert [event.object_id for event in events("openar.step_up.passed")] == [str(contact.pk)]
    assert row(contact) == before  # stepping up saves nothing by itself

    response = client.post(DETAILS, CHANGES)

    assert (response.status_code, response["Location"]) == (302, DETAILS)
    assert row(contact) == before | {"name": "Dana Payables-Smith", "phone": "+1 416 555 0100"}
    (updated,) = events("openar.contact.updated")
    assert (updated.actor_id, updated.ip, updated.organization_id) == (None, "127.0.0.1", supplier.pk)
    assert updated.data == {
        "changes": {"name": ["Dana Payables", "Dana Payables-Smith"], "phone": ["", "+1 416 555 0100"]},
        "by_contact": True,
    }
    (activity,) = activities()
    assert (activity.customer_id, activity.kind, activity.summary) == (
        customer.pk,
        Activity.Kind.PORTAL,
        "Contact details of Dana Payables-Smith updated by the contact: name, phone",
    )
    assert "Your details are saved." in text_of(client.get(DETAILS).content)
    with scopes_disabled():
        audited = json.dumps(list(AuditEvent.objects.values()), default=str)
    for secret in {first, wrong, code}:
        assert secret not in audited
    assert CODE_KEY not in client.session


def test_a_step_up_lasts_fifteen_minutes(
    clock: time_machine.Traveller,
    contact: Contact,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    client = narrow_client(contact)
    assert enter(client, send_code(client, django_capture_on_commit_callbacks)).status_code == 302
    before = row(contact)
    clock.shift(datetime.timedelta(minutes=15, seconds=1))

    response = client.post(DETAILS, CHANGES)

    assert (response.status_code, response["Location"]) == (302, TO_STEP_UP)
    assert row(contact) == before
    assert events("openar.contact.updated") == []


@pytest.mark.parametrize("next_url", ["https://evil.example/portal/", "//evil.example/portal/", "/desk/"])
def test_after_the_step_up_the_browser_only_goes_back_into_the_portal(
    clock: time_machine.Traveller,
    contact: Contact,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    next_url: str,
) -> None:
    client = narrow_client(contact)
    code = send_code(client, django_capture_on_commit_callbacks, next_url=next_url)

    response = enter(client, code, next_url=next_url)

    assert (response.status_code, response["Location"]) == (302, DETAILS)


def test_without_email_codes_in_the_policy_nothing_is_sent(
    clock: time_machine.Traveller,
    contact: Contact,
    supplier: Organization,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    policy_update(organization=supplier, actor=None, changes={"step_up_by_email_code": False})
    client = narrow_client(contact)
    events_before = events()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(STEP_UP, {"send": "1", "next": DETAILS})

    assert response.status_code == 200
    assert "This change needs a full sign-in" in text_of(response.content)
    assert callbacks == []
    assert mail.outbox == []
    assert events() == events_before
    assert CODE_KEY not in client.session


def test_a_step_up_proves_one_contact_not_another_opened_later_in_the_same_browser(
    clock: time_machine.Traveller,
    contact: Contact,
    customer_2: Customer,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    """Dana steps up with the code from her mailbox; then a link of Ann (another customer's
    contact) is opened in the same browser. Saving Ann's details must ask Ann's mailbox."""
    client = narrow_client(contact)
    assert enter(client, send_code(client, django_capture_on_commit_callbacks)).status_code == 302
    ann = make_contact(customer_2, "Ann Vil", "ann@anvil.example")
    with scope(organization=customer_2.organization):
        issued = magic_link_create(contact=ann, scope_=MagicLink.Scope.ACCOUNT)
    assert client.get(f"/l/{issued.token}/")["Location"] == "/l/confirm/"
    assert client.post("/l/confirm/")["Location"] == "/portal/"
    assert "Hello, Anvil Works" in text_of(client.get("/portal/").content)
    before = row(ann)

    response = client.post(
        DETAILS, {"name": "Ann Vil", "email": "mallory@evil.example", "consent_email": "on"}
    )

    assert row(ann) == before
    assert events("openar.contact.updated") == []
    assert (response.status_code, response["Location"]) == (302, TO_STEP_UP)
