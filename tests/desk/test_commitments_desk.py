"""The desk's side of promises to pay and payment plans, through the real URLs: recording a
promise from the customer page (each refusal next to its field, what was typed kept, one
promise per form), the promises page (due today, kept, broken, the kept rate), proposing a
plan with its review step, approving, changing and cancelling plans, the worklist's tasks;
a manager (no ``desk.collect``) is refused every action, and another organization's ids are
404. The clock stands at noon on TODAY in Toronto."""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import TODAY, TORONTO, Users, issue_invoice, record_payment, signed_in, text_of
from openar.billing.models import Invoice
from openar.commitments.models import CommitmentPolicy, Installment, Plan, Promise
from openar.commitments.services import (
    commitment_policy,
    plan_create,
    plan_quote,
    plan_terms,
    promise_create,
    promises_run,
)
from openar.core.models import AuditEvent
from openar.customers.models import Contact, Customer, Task
from openar.customers.services import task_create
from openar.desk.commitments import kept_rate_text
from openar.tenants.models import Organization

# --- helpers ------------------------------------------------------------------------------------


def day(n: int) -> datetime.date:
    return TODAY + datetime.timedelta(days=n)


def at(n: int, hour: int = 12) -> datetime.datetime:
    return datetime.datetime.combine(day(n), datetime.time(hour), tzinfo=TORONTO)


def customer_url(customer: Customer) -> str:
    return f"/desk/customers/{customer.pk}/"


def form_of(page: str, action: str) -> str:
    """The HTML of the page's form posting to ``action``."""
    start = page.index(f'action="{action}"')
    return page[start : page.index("</form>", start)]


def token_in(fragment: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', fragment)
    assert found, "the form has no one-time token"
    return found.group(1)


def error_of(page: str, element_id: str) -> str:
    """The message shown next to a field (``<p class="field__error" id="...">``), which the
    field points at with aria-describedby."""
    found = re.search(rf'<p class="field__error[^"]*" id="{element_id}">(.*?)</p>', page, re.S)
    assert found, f"no message #{element_id} on the page"
    assert re.search(rf'aria-describedby="[^"]*\b{element_id}\b', page), f"nothing points at #{element_id}"
    return html.unescape(found.group(1)).strip()


def section(page: str, heading_id: str) -> str:
    """The text of the page's ``<section aria-labelledby="heading_id">``."""
    start = page.index(f'aria-labelledby="{heading_id}"')
    return text_of(page[start : page.index("</section>", start)])


def promises_of(customer: Customer) -> list[Promise]:
    with scopes_disabled():
        return list(Promise.objects.filter(customer=customer).order_by("pk"))


def plans_of(customer: Customer) -> list[Plan]:
    with scopes_disabled():
        return list(Plan.objects.filter(customer=customer).order_by("pk"))


def fresh_plan(plan: Plan) -> Plan:
    with scopes_disabled():
        return Plan.objects.get(pk=plan.pk)


def audit(action: str) -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def make_promise(customer: Customer, amount: str, by: int, invoices: list[Invoice], **extra: Any) -> Promise:
    fields: dict[str, Any] = {
        "customer": customer,
        "amount": Decimal(amount),
        "promised_date": day(by),
        "invoices": invoices,
        "note": "",
        "contact": None,
        "actor": None,
        "source": "portal",
    }
    fields.update(extra)
    with scope(organization=customer.organization):
        return promise_create(**fields)


def make_plan(customer: Customer, invoices: list[Invoice], count: int = 3, first: int = 7) -> Plan:
    arrangement: dict[str, Any] = {
        "invoices": invoices,
        "down_payment": Decimal(0),
        "frequency": "monthly",
        "installment_count": count,
        "first_date": day(first),
    }
    with scope(organization=customer.organization):
        terms = plan_terms(customer, plan_quote(customer=customer, **arrangement), None)
        return plan_create(
            customer=customer,
            **arrangement,
            agreed_text=terms,
            contact=None,
            actor=None,
            ip=None,
            source="portal",
        )


# --- data ---------------------------------------------------------------------------------------


@pytest.fixture
def invoices(customer: Customer, contact: Contact, clock: time_machine.Traveller) -> dict[str, Invoice]:
    """Bolt Hardware owes 350.00: INV-1 (100.00, 20 days late), INV-2 (200.00, 5 days late)
    and INV-3 (50.00, due in 20 days). Dana Payables is its contact."""
    return {
        "old": issue_invoice(customer, "INV-1", "100.00", due_date=day(-20)),
        "late": issue_invoice(customer, "INV-2", "200.00", due_date=day(-5)),
        "later": issue_invoice(customer, "INV-3", "50.00", due_date=day(20)),
    }


@pytest.fixture
def policy(supplier: Organization) -> Callable[..., CommitmentPolicy]:
    def change(**fields: Any) -> CommitmentPolicy:
        with scope(organization=supplier):
            found = commitment_policy(supplier)
            for name, value in fields.items():
                setattr(found, name, value)
            found.save()
            return found

    return change


@pytest.fixture
def collector(users: Users) -> Client:
    return signed_in(users.collector)


# --- the customer page and recording a promise --------------------------------------------------


def test_the_customer_page_has_the_card_and_only_collectors_get_its_forms(
    users: Users, customer: Customer, invoices: dict[str, Invoice]
) -> None:
    make_promise(customer, "40.00", 3, [invoices["later"]], note="Will pay from the July float")
    as_collector = signed_in(users.collector).get(customer_url(customer)).content.decode()
    as_manager = signed_in(users.manager).get(customer_url(customer)).content.decode()

    for page in (as_collector, as_manager):
        card = section(page, "commit-h")
        assert "Promises and plans" in card
        assert "Open $40.00 by 3 Jul 2025 · INV-3" in card
        assert "Note: Will pay from the July float" in card  # staff read the note
        assert "No payment plan in progress." in card
    assert f'action="/desk/customers/{customer.pk}/promises/new/"' in as_collector
    assert f'action="/desk/customers/{customer.pk}/plans/new/"' in as_collector
    assert "Record a promise" not in as_manager and "/promises/new/" not in as_manager
    assert "/plans/new/" not in as_manager and "/cancel/" not in as_manager


def test_a_collector_records_a_promise_from_the_customer_page_once_however_often_it_is_sent(
    users: Users, collector: Client, customer: Customer, contact: Contact, invoices: dict[str, Invoice]
) -> None:
    action = f"/desk/customers/{customer.pk}/promises/new/"
    form = form_of(collector.get(customer_url(customer)).content.decode(), action)
    assert 'name="invoices"' in form and "INV-1" in form and "INV-3" in form
    posted = {
        "form_token": token_in(form),
        "amount": "150.00",
        "promised_date": day(10).isoformat(),
        "invoices": [invoices["old"].pk, invoices["late"].pk],
        "contact": contact.pk,
        "note": "Cheque in the post, said Dana",
    }

    first = collector.post(action, posted)
    again = collector.post(action, posted)  # a double click, a reload

    assert first.status_code == again.status_code == 302
    assert first["Location"] == f"{customer_url(customer)}#commitments"
    [promise] = promises_of(customer)
    assert (promise.amount, promise.promised_date, promise.source) == (Decimal("150.00"), day(10), "desk")
    assert promise.created_by == users.collector and promise.contact == contact
    assert promise.note == "Cheque in the post, said Dana" and promise.form_token == posted["form_token"]
    with scopes_disabled():
        assert sorted(promise.invoices.values_list("number", flat=True)) == ["INV-1", "INV-2"]
    page = text_of(collector.get(customer_url(customer)).content)
    assert "Promise recorded: $150.00 by 10 Jul 2025." in page
    assert "Open $150.00 by 10 Jul 2025 · INV-1, INV-2" in page
    assert "Note: Cheque in the post, said Dana" in page
    assert len(audit("openar.promise.created")) == 1


@pytest.mark.parametrize(
    ("amount", "by", "field_id", "message"),
    [
        ("150.00", -1, "promise-date-error", "Choose a date from today on: this one is in the past."),
        ("0", 10, "promise-amount-error", "Enter an amount above zero."),
        (
            "300.01",
            10,
            "promise-amount-error",
            "That is more than the $300.00 left to pay on the invoices chosen.",
        ),
        ("12,50", 10, "promise-amount-error", "Use a point before the decimals"),
        ("150.00", 31, "promise-date-error", "Choose a date no later than 30 July 2025"),
    ],
    ids=["past date", "zero", "above the balance", "unreadable amount", "beyond the horizon"],
)
def test_a_refused_promise_shows_the_message_next_to_its_field_and_keeps_what_was_typed(
    collector: Client,
    customer: Customer,
    invoices: dict[str, Invoice],
    amount: str,
    by: int,
    field_id: str,
    message: str,
) -> None:
    action = f"/desk/customers/{customer.pk}/promises/new/"
    token = token_in(form_of(collector.get(customer_url(customer)).content.decode(), action))

    response = collector.post(
        action,
        {
            "form_token": token,
            "amount": amount,
            "promised_date": day(by).isoformat(),
            "invoices": [invoices["old"].pk, invoices["late"].pk],
            "note": "Dana's note <kept>",
        },
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert error_of(page, field_id).startswith(message)
    assert "Nothing was recorded" in text_of(page)
    # everything typed is still there, with the same one-time token
    assert f'value="{html.escape(amount)}"' in page
    assert f'value="{day(by).isoformat()}"' in page
    assert "Dana&#x27;s note &lt;kept&gt;</textarea>" in page
    assert f'value="{invoices["old"].pk}" id="promise-inv-{invoices["old"].pk}" checked' in page
    assert f'value="{invoices["later"].pk}" id="promise-inv-{invoices["later"].pk}">' in page
    assert f'value="{token}"' in page
    assert promises_of(customer) == []


def test_a_promise_on_an_invoice_no_longer_open_is_refused_not_widened(
    collector: Client, customer: Customer, customer_2: Customer, invoices: dict[str, Invoice]
) -> None:
    foreign = issue_invoice(customer_2, "INV-9", "80.00", due_date=day(-3))
    response = collector.post(
        f"/desk/customers/{customer.pk}/promises/new/",
        {"amount": "50.00", "promised_date": day(5).isoformat(), "invoices": [foreign.pk]},
    )
    assert response.status_code == 400
    assert "no longer open on this account" in error_of(response.content.decode(), "promise-invoices-error")
    assert promises_of(customer) == promises_of(customer_2) == []


def test_cancelling_a_promise_needs_a_reason(
    collector: Client, customer: Customer, invoices: dict[str, Invoice]
) -> None:
    promise = make_promise(customer, "50.00", 5, [invoices["old"]], note="Promised on the phone")
    url = f"/desk/customers/{customer.pk}/promises/{promise.pk}/cancel/"
    assert "Promised on the phone" in text_of(collector.get(url).content)

    refused = collector.post(url, {"reason": "  "})
    done = collector.post(url, {"reason": "The customer disputes INV-1"})

    assert refused.status_code == 400
    assert error_of(refused.content.decode(), "cancel-reason-error") == "Say why the promise is cancelled."
    assert done.status_code == 302
    [cancelled] = promises_of(customer)
    assert (cancelled.state, cancelled.end_reason) == ("cancelled", "The customer disputes INV-1")
    again = collector.post(url, {"reason": "twice"})
    assert again.status_code == 400
    assert "This promise is cancelled: it cannot be cancelled." in text_of(again.content)


# --- the promises page --------------------------------------------------------------------------


def test_the_promises_page_lists_due_today_kept_and_broken_with_the_kept_rate(
    users: Users,
    customer: Customer,
    customer_2: Customer,
    invoices: dict[str, Invoice],
    clock: time_machine.Traveller,
) -> None:
    anvil = issue_invoice(customer_2, "INV-20", "500.00", due_date=day(-10))
    due_today = make_promise(customer, "60.00", 0, [invoices["old"]], note="Calling back at 3")
    kept = make_promise(customer, "200.00", 0, [invoices["late"]])
    broken = make_promise(customer, "50.00", 1, [invoices["later"]])
    partly = make_promise(customer_2, "300.00", 2, [anvil])
    record_payment(customer, "200.00", allocations=[(invoices["late"], "200.00")])
    with scopes_disabled():
        assert promises_run() == {"kept": 1, "open": 3}
        # resolved earlier in the window (their grace days are over): set as the job would
        Promise.objects.filter(pk=broken.pk).update(
            state="broken", promised_date=day(-6), resolved_at=at(-2), paid_amount=0
        )
        Promise.objects.filter(pk=partly.pk).update(
            state="partly_kept", promised_date=day(-5), resolved_at=at(-1), paid_amount=Decimal("120.00")
        )

    response = signed_in(users.manager).get("/desk/promises/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Promise-kept rate, last 30 days: 33% (1 of 3)" in text_of(page)
    assert 'aria-current="page">Promises</a>' in page  # the desk's navigation
    due = section(page, "due-h")
    assert "Bolt Hardware" in due and "$60.00" in due and "INV-1" in due and "Note: Calling back at 3" in due
    assert "Anvil" not in due and "$200.00" not in due
    kept_text = section(page, "kept-h")
    assert "Bolt Hardware" in kept_text and "$200.00 30 Jun 2025 INV-2 $200.00" in kept_text
    broken_text = section(page, "broken-h")
    assert "Bolt Hardware" in broken_text and "$50.00 24 Jun 2025 INV-3 $0.00 Broken" in broken_text
    assert "Anvil Works" in broken_text and "$300.00 25 Jun 2025 INV-20 $120.00 Partly kept" in broken_text
    assert f'href="/desk/customers/{customer_2.pk}/#commitments"' in page
    assert due_today.pk and kept.pk


def test_the_promises_page_before_any_promise_was_resolved(users: Users, customer: Customer) -> None:
    page = text_of(signed_in(users.collector).get("/desk/promises/").content)
    assert "Promise-kept rate, last 30 days: no promise resolved yet" in page
    assert "No promise is due today." in page


def test_the_kept_rate_is_written_from_decimals() -> None:
    assert kept_rate_text(Decimal("0.7200"), 18, 25) == "72% (18 of 25)"
    assert kept_rate_text(Decimal("0.6667"), 2, 3) == "67% (2 of 3)"
    assert kept_rate_text(Decimal("0.0050"), 1, 200) == "1% (1 of 200)"
    assert kept_rate_text(Decimal("1.0000"), 4, 4) == "100% (4 of 4)"
    assert kept_rate_text(None, 0, 0) == "no promise resolved yet"


# --- proposing a plan ---------------------------------------------------------------------------


def review(client: Client, customer: Customer, invoices: list[Invoice], **fields: Any) -> Any:
    posted = {
        "step": "review",
        "form_token": "f" * 32,
        "invoices": [invoice.pk for invoice in invoices],
        "down_payment": "",
        "frequency": "monthly",
        "installment_count": "3",
        "first_date": day(7).isoformat(),
    }
    posted.update(fields)
    return client.post(f"/desk/customers/{customer.pk}/plans/new/", posted)


def hidden_fields(page: str) -> dict[str, Any]:
    """What the review page sends back: its hidden fields (invoices as a list)."""
    found: dict[str, Any] = {"invoices": []}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page):
        if name == "invoices":
            found["invoices"].append(html.unescape(value))
        elif name != "csrfmiddlewaretoken":
            found[name] = html.unescape(value)
    return found


def test_proposing_a_plan_shows_the_schedule_for_review_then_sets_it_up_once(
    users: Users, collector: Client, customer: Customer, contact: Contact, invoices: dict[str, Invoice]
) -> None:
    action = f"/desk/customers/{customer.pk}/plans/new/"
    token = token_in(form_of(collector.get(customer_url(customer)).content.decode(), action))

    quoted = review(collector, customer, [invoices["old"], invoices["late"]], form_token=token)

    assert quoted.status_code == 200
    page = quoted.content.decode()
    text = text_of(page)
    assert "$300.00: 3 monthly installments" in text
    assert "7 Jul 2025 Installment 1 of 3 $100.00" in text
    assert "7 Sep 2025 Installment 3 of 3 $100.00" in text
    assert "I agree to pay Acme Supplies $300.00 for account C-1001" in text
    assert plans_of(customer) == []  # nothing is set up by the review
    sent = hidden_fields(page)
    assert sent["form_token"] == token and sent["invoices"] == [
        str(invoices["old"].pk),
        str(invoices["late"].pk),
    ]
    assert "- 7 July 2025: $100.00 (installment 1 of 3)" in sent["agreed_text"]

    not_accepted = collector.post(action, {**sent, "step": "confirm", "contact": contact.pk})
    assert not_accepted.status_code == 400
    assert error_of(not_accepted.content.decode(), "plan-accepted-error") == (
        "Tick the box once the customer has accepted these terms."
    )
    assert f'<option value="{contact.pk}" selected>' in not_accepted.content.decode()  # kept
    assert plans_of(customer) == []

    confirmed = {**sent, "step": "confirm", "contact": contact.pk, "accepted": "yes"}
    first = collector.post(action, confirmed)
    again = collector.post(action, confirmed)

    assert first.status_code == again.status_code == 302
    [plan] = plans_of(customer)
    assert (plan.state, plan.source, plan.total, plan.installment_count) == (
        "active",
        "desk",
        Decimal("300.00"),
        3,
    )
    assert plan.created_by == users.collector and plan.consent_user == users.collector
    assert plan.consent_contact == contact and plan.consent_text == sent["agreed_text"]
    card = section(collector.get(customer_url(customer)).content.decode(), "commit-h")
    assert "On track $300.00 3 monthly installments from 7 Jul 2025" in card
    assert "Paid toward it: $0.00 of $300.00 · $300.00 left" in card
    assert "7 Aug 2025 Installment 2 of 3 $100.00 Scheduled" in card
    assert "accepted by Dana Payables" in card


def test_a_plan_that_cannot_be_quoted_keeps_what_was_typed(
    collector: Client, customer: Customer, invoices: dict[str, Invoice]
) -> None:
    response = review(
        collector,
        customer,
        [invoices["old"]],
        installment_count="9",
        down_payment="10.00",
        frequency="weekly",
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert error_of(page, "plan-count-error") == "Choose at most 6 installments."
    assert 'name="installment_count" id="plan-count" value="9"' in page
    assert 'id="plan-down" value="10.00"' in page
    assert '<option value="weekly" selected>' in page
    assert f'id="plan-inv-{invoices["old"].pk}" checked' in page

    down = review(collector, customer, [invoices["old"]], down_payment="100.00")
    assert down.status_code == 400
    assert error_of(down.content.decode(), "plan-down-error").startswith(
        "The down payment must be less than the $100.00 the plan is for"
    )
    assert plans_of(customer) == []


def test_terms_that_changed_since_the_review_are_shown_again(
    collector: Client, customer: Customer, invoices: dict[str, Invoice]
) -> None:
    sent = hidden_fields(review(collector, customer, [invoices["old"], invoices["late"]]).content.decode())
    record_payment(customer, "30.00", allocations=[(invoices["old"], "30.00")])  # meanwhile

    response = collector.post(
        f"/desk/customers/{customer.pk}/plans/new/", {**sent, "step": "confirm", "accepted": "yes"}
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "The terms changed while you were reading them: read them again." in text_of(page)
    assert "$270.00: 3 monthly installments" in text_of(page)
    assert re.search(r'id="plan-accepted"[^>]*\bchecked\b', page) is None  # to be accepted again
    assert plans_of(customer) == []


def test_a_plan_above_the_threshold_waits_for_approval_and_is_approved_from_the_plans_page(
    users: Users,
    collector: Client,
    customer: Customer,
    invoices: dict[str, Invoice],
    policy: Callable[..., CommitmentPolicy],
) -> None:
    policy(plan_approval_above=Decimal("250.00"))
    quoted = review(collector, customer, [invoices["old"], invoices["late"]])
    assert "The plan is above the $250.00 limit" in text_of(quoted.content)
    sent = hidden_fields(quoted.content.decode())
    created = collector.post(
        f"/desk/customers/{customer.pk}/plans/new/", {**sent, "step": "confirm", "accepted": "yes"}
    )
    assert created.status_code == 302
    [plan] = plans_of(customer)
    assert plan.state == "pending_approval"
    assert "it waits for approval" in text_of(collector.get(customer_url(customer)).content)

    listing = collector.get("/desk/plans/").content.decode()
    waiting = section(listing, "pending-h")
    assert "Bolt Hardware" in waiting and "Pending approval $300.00" in waiting
    assert f'action="/desk/customers/{customer.pk}/plans/{plan.pk}/approve/"' in listing
    assert "Payment plan to approve" in section(listing, "tasks-h")

    approved = collector.post(f"/desk/customers/{customer.pk}/plans/{plan.pk}/approve/", {"back": "plans"})

    assert approved.status_code == 302 and approved["Location"] == "/desk/plans/"
    plan = fresh_plan(plan)
    assert plan.state == "active" and plan.approved_by == users.collector
    after = collector.get("/desk/plans/").content.decode()
    assert "No plan is waiting for approval." in text_of(after)
    assert "Payment plan to approve" not in section(after, "tasks-h")  # its task is done
    again = collector.post(f"/desk/customers/{customer.pk}/plans/{plan.pk}/approve/", follow=True)
    assert "This plan is not waiting for approval." in text_of(again.content)


# --- changing and cancelling a plan -------------------------------------------------------------


def test_changing_a_plan(collector: Client, customer: Customer, invoices: dict[str, Invoice]) -> None:
    plan = make_plan(customer, [invoices["old"], invoices["late"]])
    url = f"/desk/customers/{customer.pk}/plans/{plan.pk}/change/"
    form = collector.get(url).content.decode()
    assert '<option value="monthly" selected>' in form and 'id="change-count" value="3"' in form

    refused = collector.post(
        url, {"frequency": "weekly", "installment_count": "0", "first_date": day(3).isoformat()}
    )
    assert refused.status_code == 400
    assert error_of(refused.content.decode(), "change-count-error") == "Choose how many installments."
    assert '<option value="weekly" selected>' in refused.content.decode()

    changed = collector.post(
        url, {"frequency": "weekly", "installment_count": "4", "first_date": day(3).isoformat()}
    )

    assert changed.status_code == 302
    plan = fresh_plan(plan)
    assert (plan.frequency, plan.installment_count) == ("weekly", 4)
    with scopes_disabled():
        dates = list(
            Installment.objects.filter(plan=plan).order_by("number").values_list("due_date", "amount")
        )
    assert dates == [(day(3 + 7 * n), Decimal("75.00")) for n in range(4)]
    assert "Payment plan changed: what is left is due in 4 weekly installments from 3 Jul 2025." in text_of(
        collector.get(customer_url(customer)).content
    )


def test_cancelling_a_plan_needs_a_reason(
    collector: Client, customer: Customer, invoices: dict[str, Invoice]
) -> None:
    plan = make_plan(customer, [invoices["old"]], count=2)
    url = f"/desk/customers/{customer.pk}/plans/{plan.pk}/cancel/"

    refused = collector.post(url, {"reason": ""})
    done = collector.post(url, {"reason": "Customer went into administration"})

    assert refused.status_code == 400
    assert error_of(refused.content.decode(), "cancel-reason-error") == "Say why the plan is cancelled."
    assert done.status_code == 302
    plan = fresh_plan(plan)
    assert (plan.state, plan.end_reason) == ("cancelled", "Customer went into administration")
    card = section(collector.get(customer_url(customer)).content.decode(), "commit-h")
    assert "No payment plan in progress." in card
    assert "Cancelled $100.00: 2 monthly installments" in card


def test_the_plans_page_lists_plans_behind_and_tasks_mine_first_with_done(
    users: Users,
    customer: Customer,
    customer_2: Customer,
    invoices: dict[str, Invoice],
    clock: time_machine.Traveller,
) -> None:
    behind = make_plan(customer, [invoices["old"]], count=2, first=0)
    with scope(organization=customer.organization):
        mine = task_create(
            customer=customer,
            kind=Task.Kind.CALLBACK,
            summary="Call Dana back",
            due_date=day(1),
            assigned_to=users.collector,
        )
        anyone = task_create(
            customer=customer_2, kind=Task.Kind.CALLBACK, summary="Call Anvil", due_date=day(0)
        )
        task_create(
            customer=customer_2,
            kind=Task.Kind.CALLBACK,
            summary="Admin's own call",
            due_date=day(0),
            assigned_to=users.admin,
        )
    clock.move_to(at(3))  # the first installment, due on TODAY, is not paid
    collector = signed_in(users.collector)

    page = collector.get("/desk/plans/").content.decode()

    assert "Bolt Hardware" in section(page, "behind-h") and "Behind $100.00" in section(page, "behind-h")
    tasks = section(page, "tasks-h")
    assert tasks.index("Call Dana back") < tasks.index("For anyone on the desk") < tasks.index("Call Anvil")
    assert "Admin's own call" not in tasks and "1 more open task assigned to other people." in tasks

    done = collector.post(f"/desk/tasks/{mine.pk}/done/")

    assert done.status_code == 302 and done["Location"] == "/desk/plans/#tasks"
    with scopes_disabled():
        assert Task.objects.get(pk=mine.pk).done_by == users.collector
        assert Task.objects.get(pk=anyone.pk).done_at is None
    assert [event.object_id for event in audit("openar.task.done")] == [str(mine.pk)]
    assert "Call Dana back" not in section(collector.get("/desk/plans/").content.decode(), "tasks-h")
    assert fresh_plan(behind).state == "active"


# --- who may act, and on what -------------------------------------------------------------------


def object_actions(customer: Customer, promise: Promise, plan: Plan) -> dict[str, dict[str, Any]]:
    base = f"/desk/customers/{customer.pk}"
    return {
        f"{base}/promises/{promise.pk}/cancel/": {"reason": "because"},
        f"{base}/plans/{plan.pk}/approve/": {},
        f"{base}/plans/{plan.pk}/change/": {
            "frequency": "weekly",
            "installment_count": "2",
            "first_date": day(2),
        },
        f"{base}/plans/{plan.pk}/cancel/": {"reason": "because"},
    }


def action_posts(customer: Customer, promise: Promise, plan: Plan, task: Task) -> dict[str, dict[str, Any]]:
    base = f"/desk/customers/{customer.pk}"
    return {
        f"{base}/promises/new/": {"amount": "10.00", "promised_date": day(3).isoformat()},
        f"{base}/plans/new/": {"step": "review", "installment_count": "2", "frequency": "monthly"},
        **object_actions(customer, promise, plan),
        f"/desk/tasks/{task.pk}/done/": {},
    }


def test_a_manager_may_read_but_every_action_is_403(
    users: Users, customer: Customer, invoices: dict[str, Invoice]
) -> None:
    promise = make_promise(customer, "50.00", 5, [invoices["later"]])
    plan = make_plan(customer, [invoices["old"]], count=2)
    with scope(organization=customer.organization):
        task = task_create(customer=customer, kind=Task.Kind.CALLBACK, summary="Call", due_date=day(0))
    manager = signed_in(users.manager)

    for url, data in action_posts(customer, promise, plan, task).items():
        assert manager.post(url, data).status_code == 403, url
        if not url.endswith(("/approve/", "/done/")):
            assert manager.get(url).status_code == 403, url

    assert [p.state for p in promises_of(customer)] == ["open"]
    assert fresh_plan(plan).state == "active" and fresh_plan(plan).frequency == "monthly"
    with scopes_disabled():
        assert Task.objects.get(pk=task.pk).done_at is None
    assert manager.get("/desk/promises/").status_code == manager.get("/desk/plans/").status_code == 200


def test_another_organizations_customer_promise_plan_and_task_are_404(
    users: Users,
    collector: Client,
    customer: Customer,
    customer_2: Customer,
    other_customer: Customer,
    invoices: dict[str, Invoice],
) -> None:
    theirs = issue_invoice(other_customer, "ZINV-1", "400.00", due_date=day(-9))
    their_other = issue_invoice(other_customer, "ZINV-2", "90.00", due_date=day(9))
    their_plan = make_plan(other_customer, [theirs], count=2)
    their_promise = make_promise(other_customer, "50.00", 4, [their_other], note="Zeta's secret note")
    with scope(organization=other_customer.organization):
        their_task = task_create(
            customer=other_customer, kind=Task.Kind.CALLBACK, summary="Zeta", due_date=day(0)
        )
    # and, in Acme, another customer's promise and plan under Bolt's id
    anvil = issue_invoice(customer_2, "INV-20", "300.00", due_date=day(-9))
    anvil_promise = make_promise(customer_2, "50.00", 4, [anvil])
    anvil_plan = make_plan(customer_2, [anvil], count=2)

    for target in (
        action_posts(other_customer, their_promise, their_plan, their_task),
        object_actions(customer, their_promise, their_plan),
        object_actions(customer, anvil_promise, anvil_plan),
    ):
        for url, data in target.items():
            response = collector.post(url, data)
            assert response.status_code == 404, url
            assert "Zeta" not in response.content.decode()
            if not url.endswith(("/approve/", "/done/")):
                assert collector.get(url).status_code == 404, url

    assert [p.state for p in promises_of(other_customer)] == ["open"]
    assert [p.state for p in promises_of(customer_2)] == ["cancelled"]  # replaced by its plan
    assert fresh_plan(their_plan).state == fresh_plan(anvil_plan).state == "active"
    listing = (
        collector.get("/desk/promises/").content.decode() + collector.get("/desk/plans/").content.decode()
    )
    assert "Zeta" not in listing and "ZINV-1" not in listing
