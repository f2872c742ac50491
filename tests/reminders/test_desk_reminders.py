"""The desk pages where admins shape reminders, through the real URLs: the overview, message
templates (saving, line-numbered errors, the live preview on a real customer's data and its
sandboxed HTML), policies and their steps, and the reminder settings. Everyone at the desk
may read; only admins change anything; another organization's ids are 404s."""

from __future__ import annotations

import datetime
import html
import itertools
import re
from typing import Any

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import Users, days_ago, issue_invoice, make_customer, signed_in, text_of
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.customers.models import Contact, Customer
from openar.notifications.models import Channel, Message, MessageTemplate
from openar.notifications.rendering import render
from openar.reminders.context import reminder_context
from openar.reminders.models import DunningPolicy, DunningStep, ReminderSettings
from openar.reminders.services import TemplateInvalid, step_add, step_remove, template_update
from openar.tenants.models import Creditor, Organization

OVERVIEW = "/desk/reminders/"
SETTINGS = "/desk/reminders/settings/"
NEW_POLICY = "/desk/reminders/policies/new/"
NEW_TEMPLATE = "/desk/reminders/templates/new/"


def template_url(template: MessageTemplate) -> str:
    return f"/desk/reminders/templates/{template.pk}/"


def policy_url(policy: DunningPolicy) -> str:
    return f"/desk/reminders/policies/{policy.pk}/"


def step_url(step: DunningStep) -> str:
    return f"/desk/reminders/steps/{step.pk}/"


def template_of(
    organization: Organization,
    key: str = "reminder-friendly",
    channel: str = Channel.EMAIL,
    language: str = "en",
) -> MessageTemplate:
    with scope(organization=organization):
        return MessageTemplate.objects.select_related("organization").get(
            key=key, channel=channel, language=language
        )


def default_policy(organization: Organization) -> DunningPolicy:
    with scope(organization=organization):
        return DunningPolicy.objects.select_related("organization").get(segment="", is_active=True)


def steps_of(policy: DunningPolicy) -> list[tuple[int, str, str, str, bool]]:
    with scopes_disabled():
        return list(
            DunningStep.objects.filter(policy=policy)
            .order_by("offset_days", "channel")
            .values_list("offset_days", "channel", "template_key", "tone", "attach_statement")
        )


def first_step(policy: DunningPolicy) -> DunningStep:
    with scopes_disabled():
        return DunningStep.objects.filter(policy=policy).order_by("offset_days")[0]


def reminder_settings(organization: Organization) -> dict[str, Any]:
    with scopes_disabled():
        return ReminderSettings.objects.filter(organization=organization).values().get()


def events(action: str) -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def fresh(template: MessageTemplate) -> MessageTemplate:
    with scopes_disabled():
        return MessageTemplate.objects.get(pk=template.pk)


def template_post(template: MessageTemplate, action: str, **changes: str) -> dict[str, str]:
    """What the browser posts for the template form, with ``changes`` typed in (CRLF line
    ends, as browsers send a textarea)."""
    data = {"name": template.name, "subject": template.subject, "body": template.body, "action": action}
    data |= changes
    data["body"] = data["body"].replace("\n", "\r\n")
    return data


def step_post(**values: Any) -> dict[str, str]:
    data = {"offset_days": "20", "channel": "sms", "template_key": "reminder-sms", "tone": "firm"} | values
    return {name: str(value) for name, value in data.items() if value is not False}


def field_error(content: bytes, field_id: str) -> str:
    """The visible text of the error block tied to ``field_id`` (its ``{id}_error`` element)."""
    found = re.search(rf'<ul class="[^"]*" id="{field_id}_error">(.*?)</ul>', content.decode(), re.S)
    return text_of(found.group(1)) if found else ""


@pytest.fixture
def late_customer(customer: Customer, contact: Contact, clock: Any) -> Customer:
    """Bolt Hardware, with $1,250.00 past due over two invoices (the most of any customer)."""
    issue_invoice(customer, "INV-LATE-1", "1000.00", due_date=days_ago(20))
    issue_invoice(customer, "INV-LATE-2", "250.00", due_date=days_ago(5))
    return customer


# --- the overview -------------------------------------------------------------------------------


def test_the_overview_lists_policies_in_order_settings_and_templates(
    users: Users, supplier: Organization
) -> None:
    response = signed_in(users.admin).get(OVERVIEW)

    assert response.status_code == 200
    page = text_of(response.content)
    steps = [
        "3 days before due · Email · Before the due date · friendly",
        "3 days after due · Email · Just past due · friendly",
        "10 days after due · SMS · Text reminder · friendly",
        "15 days after due · Email · Second reminder · firm",
        "30 days after due · Email · Final reminder · final",
        "45 days after due · Letter · Final letter · final",
    ]
    positions = [page.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "Standard reminders" in page and "Default policy" in page
    assert "20:00 – 08:00" in page and "At most one reminder every 3 days" in page and "Running" in page
    assert "Email · English" in page and "Email · Français" in page and "reminder-friendly" in page
    content = response.content.decode()
    assert f'href="{policy_url(default_policy(supplier))}"' in content
    assert f'href="{template_url(template_of(supplier))}"' in content
    assert f'href="{SETTINGS}"' in content
    assert '<a href="/desk/reminders/" aria-current="page">Reminders</a>' in content


@pytest.mark.parametrize("role", ["collector", "manager"])
def test_collectors_and_managers_read_the_overview_without_edit_links(
    users: Users, supplier: Organization, role: str
) -> None:
    response = signed_in(getattr(users, role)).get(OVERVIEW)

    assert response.status_code == 200
    content = response.content.decode()
    assert "3 days after due · Email · Just past due · friendly" in text_of(content)
    assert ">Reminders</a>" in content  # the tab
    assert policy_url(default_policy(supplier)) not in content and SETTINGS not in content
    assert template_url(template_of(supplier)) in content  # they may read the messages


def test_the_overview_says_when_reminders_are_paused(users: Users, supplier: Organization) -> None:
    with scopes_disabled():
        ReminderSettings.objects.filter(organization=supplier).update(is_paused=True)
    assert "Reminders are paused." in text_of(signed_in(users.admin).get(OVERVIEW).content)


# --- templates: saving --------------------------------------------------------------------------


def test_an_admin_edits_a_template_saved_and_audited(users: Users, supplier: Organization) -> None:
    template = template_of(supplier)
    body = "Hello {{ contact_name }},\n\n{{ total_past_due }} is past due.\n\n{{ pay_link }}\n"

    response = signed_in(users.admin).post(
        template_url(template),
        template_post(template, "save", subject="Past due: {{ total_past_due }}", body=body),
    )

    assert response.status_code == 302 and response["Location"] == template_url(template)
    saved = fresh(template)
    assert (saved.subject, saved.body, saved.updated_by) == (
        "Past due: {{ total_past_due }}",
        body,
        users.admin,
    )
    [event] = events("openar.template.changed")
    assert event.actor == users.admin and event.object_id == str(template.pk)
    assert event.data == {
        "fields": ["subject", "body"],
        "key": "reminder-friendly",
        "channel": "email",
        "language": "en",
    }
    assert "past due" not in str(event.data)  # which fields, never the text


def test_saving_an_unchanged_template_writes_no_event(users: Users, supplier: Organization) -> None:
    template = template_of(supplier)
    response = signed_in(users.admin).post(template_url(template), template_post(template, "save"))
    assert response.status_code == 302
    assert fresh(template).body == template.body  # the browser's CRLF did not creep in
    assert events("openar.template.changed") == []


def test_an_invalid_template_lists_line_numbered_errors_and_saves_nothing(
    users: Users, supplier: Organization
) -> None:
    template = template_of(supplier)
    body = (
        "Hello {{ contact_name }},\n\nYou owe:\n{{ totl_past_due }}\n{% if statement_attachd %}x{% endif %}\n"
    )

    response = signed_in(users.admin).post(
        template_url(template), template_post(template, "save", subject="Due {{ custmer_name }}", body=body)
    )

    assert response.status_code == 400
    assert field_error(response.content, "id_body") == (
        "Body, line 4: Unknown variable “totl_past_due”. Did you mean “total_past_due”? "
        "Body, line 5: Unknown variable “statement_attachd”. Did you mean “statement_attached”?"
    )
    assert field_error(response.content, "id_subject") == (
        "Subject, line 1: Unknown variable “custmer_name”. Did you mean “customer_name”?"
    )
    content = response.content.decode()
    textarea = re.search(r"<textarea[^>]*>", content)
    assert textarea is not None
    assert 'aria-invalid="true"' in textarea.group(
        0
    ) and 'aria-describedby="id_body_error"' in textarea.group(0)
    assert '<label for="id_body">' in content
    assert html.escape("{{ totl_past_due }}") in content  # the text typed is kept in the box
    assert fresh(template).body == template.body
    assert events("openar.template.changed") == []


def test_the_service_refuses_an_invalid_template_with_every_problem(
    users: Users, supplier: Organization
) -> None:
    template = template_of(supplier)
    with scope(organization=supplier), pytest.raises(TemplateInvalid) as caught:
        template_update(template=template, subject="", body="{{ a }}\n{{ b }}", name="x", actor=users.admin)
    assert [str(p) for p in caught.value.problems] == [
        "Subject, line 1: An email needs a subject.",
        "Body, line 1: Unknown variable “a”.",
        "Body, line 2: Unknown variable “b”.",
    ]
    assert fresh(template).body == template.body


# --- templates: the live preview ----------------------------------------------------------------


def test_the_preview_renders_a_real_customers_data_and_saves_nothing(
    users: Users, supplier: Organization, late_customer: Customer, contact: Contact, customer_2: Customer
) -> None:
    template = template_of(supplier)
    subject = "Unsaved: {{ customer_name }} owes {{ total_past_due }}"
    body = (
        "Dear {{ contact_name }},\n\n"
        "{{ customer_name }} owes {{ total_past_due }} on {{ invoice_count }} invoices.\n"
    )

    response = signed_in(users.admin).post(
        template_url(template), template_post(template, "preview", subject=subject, body=body)
    )

    assert response.status_code == 200
    page = text_of(response.content)
    assert "Unsaved: Bolt Hardware owes $1,250.00" in page
    assert "Dear Dana Payables, Bolt Hardware owes $1,250.00 on 2 invoices." in page
    # exactly what the engine's own context gives for this customer today
    with scope(organization=supplier):
        context = reminder_context(late_customer, contact, supplier.today(), "en", 3, "", "", False)
    expected = render(subject, body, context)
    assert html.escape(expected.subject) in response.content.decode()
    # the customer with the most past-due invoices is chosen by default
    selected = re.search(r'<option value="(\d+)" selected>', response.content.decode())
    assert selected is not None and int(selected.group(1)) == late_customer.pk
    assert fresh(template).subject == template.subject and fresh(template).body == template.body
    assert events("openar.template.changed") == []


def test_the_preview_uses_the_chosen_customer(
    users: Users, supplier: Organization, late_customer: Customer, creditor: Creditor
) -> None:
    other = make_customer(creditor, "C-1003", name="Crane Depot")
    issue_invoice(other, "INV-CRANE", "75.00", due_date=days_ago(8))
    template = template_of(supplier)

    response = signed_in(users.admin).post(
        template_url(template),
        template_post(template, "preview", body="{{ customer_name }}: {{ total_past_due }}")
        | {"customer": str(other.pk)},
    )

    assert response.status_code == 200
    assert "Crane Depot: $75.00" in text_of(response.content)
    # and on a plain GET, the saved text for that customer
    response = signed_in(users.admin).get(f"{template_url(template)}?customer={other.pk}")
    assert "A friendly reminder: $75.00 is now past due" in text_of(response.content)


def test_the_preview_of_an_invalid_text_shows_its_problems_instead(
    users: Users, supplier: Organization, late_customer: Customer
) -> None:
    template = template_of(supplier)
    response = signed_in(users.admin).post(
        template_url(template), template_post(template, "preview", body="Hi\n{{ nope }}")
    )
    assert response.status_code == 400
    assert field_error(response.content, "id_body") == "Body, line 2: Unknown variable “nope”."
    assert "<iframe" not in response.content.decode()


def test_the_html_preview_is_in_a_sandboxed_iframe_with_escaped_srcdoc(
    users: Users, supplier: Organization, late_customer: Customer
) -> None:
    template = template_of(supplier)
    body = 'Hi {{ customer_name }} <script>alert("x")</script> & "quotes"\n\nPay: {{ pay_link }}\n'

    response = signed_in(users.admin).post(
        template_url(template), template_post(template, "preview", body=body)
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert "<script>" not in content  # the typed markup never reaches the page as markup
    iframes = re.findall(r"<iframe[^>]*>", content)
    assert len(iframes) == 1
    iframe = iframes[0]
    assert 'sandbox=""' in iframe
    srcdoc = re.search(r'srcdoc="([^"]*)"', iframe)
    assert srcdoc is not None
    document = html.unescape(srcdoc.group(1))
    assert document.startswith("<!DOCTYPE html>")
    assert (
        "Hi Bolt Hardware &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;"
        in document
    )
    assert '<a href="http' in document  # the link is live in the HTML version
    assert 'title="HTML version of the message for Bolt Hardware"' in iframe


# --- who may change templates -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["collector", "manager"])
def test_collectors_and_managers_read_and_preview_but_do_not_change(
    users: Users, supplier: Organization, late_customer: Customer, role: str
) -> None:
    client = signed_in(getattr(users, role))
    template = template_of(supplier)
    policy = default_policy(supplier)
    step = first_step(policy)
    settings_before = reminder_settings(supplier)

    page = client.get(template_url(template))
    assert page.status_code == 200
    content = page.content.decode()
    assert "readonly" in re.search(r"<textarea[^>]*>", content).group(0)  # type: ignore[union-attr]
    assert 'value="save"' not in content
    assert "A friendly reminder: $1,250.00 is now past due" in text_of(content)
    assert client.post(template_url(template), template_post(template, "preview")).status_code == 200

    refused = [
        client.post(template_url(template), template_post(template, "save", body="Changed")),
        client.get(SETTINGS),
        client.post(SETTINGS, {"quiet_start": "21:00", "quiet_end": "07:00", "min_days_between": "5"}),
        client.get(policy_url(policy)),
        client.post(policy_url(policy), {"name": "Mine", "segment": "", "is_active": "on"}),
        client.post(f"{policy_url(policy)}steps/", step_post()),
        client.get(step_url(step)),
        client.post(f"{step_url(step)}remove/"),
        client.get(NEW_POLICY),
        client.post(
            NEW_TEMPLATE, {"key": "x", "channel": "email", "language": "en", "name": "x", "body": "x"}
        ),
    ]

    assert [r.status_code for r in refused] == [403] * len(refused)
    assert fresh(template).body == template.body
    assert reminder_settings(supplier) == settings_before
    assert len(steps_of(policy)) == 6
    with scopes_disabled():
        assert not AuditEvent.objects.filter(action__startswith="openar.template").exists()
        assert not AuditEvent.objects.filter(action__startswith="openar.dunning").exists()


def test_another_organizations_ids_are_404(
    users: Users, supplier: Organization, other_supplier: Organization
) -> None:
    client = signed_in(users.admin)
    theirs = template_of(other_supplier)
    policy = default_policy(other_supplier)
    step = first_step(policy)

    responses = [
        client.get(template_url(theirs)),
        client.post(template_url(theirs), template_post(theirs, "save", body="Mine now")),
        client.post(template_url(theirs), template_post(theirs, "preview")),
        client.get(f"{NEW_TEMPLATE}?from={theirs.pk}"),
        client.get(policy_url(policy)),
        client.post(f"{policy_url(policy)}steps/", step_post()),
        client.get(step_url(step)),
        client.post(f"{step_url(step)}remove/"),
    ]

    assert [r.status_code for r in responses] == [404] * len(responses)
    assert fresh(theirs).body == theirs.body
    assert len(steps_of(policy)) == 6


def test_a_foreign_customer_is_not_previewed(
    users: Users, supplier: Organization, other_customer: Customer
) -> None:
    template = template_of(supplier)
    response = signed_in(users.admin).get(f"{template_url(template)}?customer={other_customer.pk}")
    assert response.status_code == 404
    assert other_customer.name not in response.content.decode()


# --- new templates ------------------------------------------------------------------------------


def test_an_admin_creates_a_template_with_a_new_key(users: Users, supplier: Organization) -> None:
    data = {
        "key": "reminder-gentle",
        "channel": "email",
        "language": "en",
        "name": "Gentle nudge",
        "subject": "About {{ total_past_due }}",
        "body": "Hello {{ contact_name }}",
    }
    response = signed_in(users.admin).post(NEW_TEMPLATE, data)

    created = template_of(supplier, "reminder-gentle")
    assert response.status_code == 302 and response["Location"] == template_url(created)
    assert (created.name, created.updated_by) == ("Gentle nudge", users.admin)
    [event] = events("openar.template.created")
    assert event.data == {"key": "reminder-gentle", "channel": "email", "language": "en"}

    again = signed_in(users.admin).post(NEW_TEMPLATE, data)
    assert again.status_code == 400
    assert "The email template “reminder-gentle” already exists in English" in field_error(
        again.content, "id_key"
    )


def test_a_translation_starts_from_a_copy_in_the_missing_language(
    users: Users, supplier: Organization
) -> None:
    with scope(organization=supplier):
        MessageTemplate.objects.filter(key="reminder-friendly", language="fr").delete()
    english = template_of(supplier)

    page = signed_in(users.admin).get(f"{NEW_TEMPLATE}?from={english.pk}")

    assert page.status_code == 200
    content = page.content.decode()
    assert '<option value="fr" selected>' in content and 'value="reminder-friendly"' in content


# --- policies and steps -------------------------------------------------------------------------


def test_an_admin_adds_a_step_audited(users: Users, supplier: Organization) -> None:
    policy = default_policy(supplier)
    response = signed_in(users.admin).post(f"{policy_url(policy)}steps/", step_post())

    assert response.status_code == 302 and response["Location"] == policy_url(policy)
    assert (20, "sms", "reminder-sms", "firm", False) in steps_of(policy)
    [event] = events("openar.dunning_step.added")
    assert event.data["offset_days"] == 20 and event.data["template_key"] == "reminder-sms"
    assert event.actor == users.admin


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (
            {"template_key": "reminder-nope"},
            "id_step_template_key",
            "There is no template “reminder-nope”. SMS templates: reminder-sms.",
        ),
        (
            {"template_key": "reminder-friendly"},
            "id_step_template_key",
            "The template “reminder-friendly” is written for Email, not SMS. SMS templates: reminder-sms.",
        ),
        ({"attach_statement": "on"}, "id_step_attach_statement", "Only an email can carry the statement"),
        ({"offset_days": "400"}, "id_step_offset_days", "Ensure this value is less than or equal to 365."),
        ({"offset_days": "10"}, "id_step_offset_days", "This policy already sends an SMS 10 days after due."),
    ],
    ids=["unknown key", "key of another channel", "statement on SMS", "too late", "same day and channel"],
)
def test_a_step_the_engine_could_not_send_is_refused(
    users: Users, supplier: Organization, values: dict[str, str], field: str, message: str
) -> None:
    policy = default_policy(supplier)
    before = steps_of(policy)

    response = signed_in(users.admin).post(f"{policy_url(policy)}steps/", step_post(**values))

    assert response.status_code == 400
    assert message in field_error(response.content, field)
    assert steps_of(policy) == before
    assert events("openar.dunning_step.added") == []


def test_an_admin_changes_a_step(users: Users, supplier: Organization) -> None:
    policy = default_policy(supplier)
    with scope(organization=supplier):
        step = policy.steps.get(offset_days=3)
    page = signed_in(users.admin).get(step_url(step))
    assert page.status_code == 200 and 'name="offset_days" value="3"' in page.content.decode()

    response = signed_in(users.admin).post(
        step_url(step), step_post(offset_days="4", channel="email", template_key="reminder-firm", tone="firm")
    )

    assert response.status_code == 302
    assert (4, "email", "reminder-firm", "firm", False) in steps_of(policy)
    [event] = events("openar.dunning_step.changed")
    assert event.data == {
        "policy": policy.pk,
        "offset_days": [3, 4],
        "template_key": ["reminder-friendly", "reminder-firm"],
        "tone": ["friendly", "firm"],
    }


def test_an_admin_removes_a_step_after_confirming(
    users: Users, supplier: Organization, customer: Customer
) -> None:
    policy = default_policy(supplier)
    client = signed_in(users.admin)
    with scope(organization=supplier):
        step = policy.steps.get(offset_days=10)
        sent = Message.objects.create(
            organization=supplier, customer=customer, channel=Channel.SMS, dunning_step=step, dunning_cycle=1
        )

    confirm = client.get(f"{step_url(step)}remove/")
    assert confirm.status_code == 200
    assert "10 days after due · SMS · Text reminder · friendly" in text_of(confirm.content)
    assert len(steps_of(policy)) == 6  # asking removes nothing

    response = client.post(f"{step_url(step)}remove/")

    assert response.status_code == 302 and response["Location"] == policy_url(policy)
    assert 10 not in [offset for offset, *_ in steps_of(policy)]
    [event] = events("openar.dunning_step.removed")
    assert event.data["summary"] == "10 days after due · SMS · reminder-sms · friendly"
    assert event.data["messages_detached"] == 1
    with scopes_disabled():
        kept = Message.objects.get(pk=sent.pk)  # the reminder stays in the timeline
    assert (kept.dunning_step_id, kept.dunning_cycle) == (None, None)


def test_the_step_services_refuse_what_the_engine_could_not_send(
    users: Users, supplier: Organization
) -> None:
    policy = default_policy(supplier)
    with scope(organization=supplier):
        for values in (
            {"offset_days": -61},
            {"offset_days": 366},
            {"template_key": "missing"},
            {"channel": "pigeon"},
            {"tone": "angry"},
        ):
            arguments = {
                "offset_days": 50,
                "channel": Channel.EMAIL,
                "template_key": "reminder-final",
                "tone": "final",
                "attach_statement": False,
            } | values
            with pytest.raises(ServiceError):
                step_add(policy=policy, actor=users.admin, **arguments)
        step = step_add(
            policy=policy,
            offset_days=-60,
            channel=Channel.EMAIL,
            template_key="reminder-upcoming",
            tone="friendly",
            attach_statement=True,
            actor=users.admin,
        )
        step_remove(step=step, actor=users.admin)
    assert len(steps_of(policy)) == 6


def test_an_admin_creates_a_policy_for_a_segment_from_the_default_steps(
    users: Users, supplier: Organization
) -> None:
    default = default_policy(supplier)
    client = signed_in(users.admin)
    data = {"name": "Key accounts", "segment": "key", "is_active": "on", "copy_steps_from": str(default.pk)}

    response = client.post(NEW_POLICY, data)

    with scope(organization=supplier):
        created = DunningPolicy.objects.get(segment="key")
    assert response.status_code == 302 and response["Location"] == policy_url(created)
    assert steps_of(created) == steps_of(default)
    [event] = events("openar.dunning_policy.created")
    assert event.data["segment"] == "key" and event.data["steps"] == 6
    overview = text_of(client.get(OVERVIEW).content)
    assert "Key accounts Segment: key 0 customers in this segment" in overview

    again = client.post(NEW_POLICY, data | {"name": "Key accounts 2"})
    assert again.status_code == 400
    assert "The active policy “Key accounts” already covers segment “key”" in field_error(
        again.content, "id_segment"
    )


def test_an_admin_renames_and_deactivates_a_policy(users: Users, supplier: Organization) -> None:
    policy = default_policy(supplier)
    response = signed_in(users.admin).post(policy_url(policy), {"name": "Everyone", "segment": ""})

    assert response.status_code == 302
    with scopes_disabled():
        saved = DunningPolicy.objects.get(pk=policy.pk)
    assert (saved.name, saved.is_active) == ("Everyone", False)
    [event] = events("openar.dunning_policy.changed")
    assert event.data == {"name": ["Standard reminders", "Everyone"], "is_active": [True, False]}
    assert "There is no active default policy" in text_of(signed_in(users.admin).get(OVERVIEW).content)


# --- settings -----------------------------------------------------------------------------------


def test_an_admin_saves_the_settings(users: Users, supplier: Organization) -> None:
    client = signed_in(users.admin)
    page = client.get(SETTINGS)
    assert page.status_code == 200 and 'name="quiet_start" value="20:00"' in page.content.decode()

    response = client.post(
        SETTINGS, {"quiet_start": "21:30", "quiet_end": "07:00", "min_days_between": "5", "is_paused": "on"}
    )

    assert response.status_code == 302 and response["Location"] == OVERVIEW
    saved = reminder_settings(supplier)
    assert (saved["quiet_start"], saved["quiet_end"], saved["min_days_between"], saved["is_paused"]) == (
        datetime.time(21, 30),
        datetime.time(7, 0),
        5,
        True,
    )
    [event] = events("openar.reminder_settings.changed")
    assert event.data == {
        "quiet_start": ["20:00", "21:30"],
        "quiet_end": ["08:00", "07:00"],
        "min_days_between": [3, 5],
        "is_paused": [False, True],
    }


@pytest.mark.parametrize("value", ["31", "-1", "two"])
def test_the_frequency_cap_is_refused_out_of_range(users: Users, supplier: Organization, value: str) -> None:
    response = signed_in(users.admin).post(
        SETTINGS, {"quiet_start": "20:00", "quiet_end": "08:00", "min_days_between": value}
    )
    assert response.status_code == 400
    assert field_error(response.content, "id_min_days_between")
    assert (
        'aria-describedby="id_min_days_between_helptext id_min_days_between_error"'
        in response.content.decode()
    )
    assert reminder_settings(supplier)["min_days_between"] == 3
    assert events("openar.reminder_settings.changed") == []


def test_the_pages_have_no_wide_tables_and_their_headings_in_order(
    users: Users, supplier: Organization, late_customer: Customer
) -> None:
    """No tables (they would scroll sideways on a 375 px phone); no heading level skipped."""
    client: Client = signed_in(users.admin)
    for url in (
        OVERVIEW,
        SETTINGS,
        NEW_POLICY,
        NEW_TEMPLATE,
        policy_url(default_policy(supplier)),
        template_url(template_of(supplier)),
    ):
        content = client.get(url).content.decode()
        assert "<table" not in content, url
        levels = [int(level) for level in re.findall(r"<h([1-6])", content)]
        assert levels[0] == 1 and all(b - a <= 1 for a, b in itertools.pairwise(levels)), url
