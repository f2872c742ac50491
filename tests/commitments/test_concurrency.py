"""Many at once, on PostgreSQL (threads with their own connections): twenty submissions of
the same promise or plan form make one; two plan forms at once make one plan; several
workers running the jobs together resolve a promise once and charge an installment once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django_scopes import scope, scopes_disabled

from factories import in_threads
from openar.billing.models import Invoice
from openar.commitments.models import Installment, Plan, Promise
from openar.commitments.services import (
    installments_run,
    plan_create,
    plan_quote,
    plan_terms,
    promise_create,
    promises_run,
)
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Contact, Customer, Task
from openar.notifications.models import Message
from openar.payments.models import Payment

from .conftest import at, day, save_card

SUBMISSIONS = 20

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


def counts() -> dict[str, int]:
    with scopes_disabled():
        return {
            "promises": Promise.objects.count(),
            "plans": Plan.objects.count(),
            "installments": Installment.objects.count(),
            "messages": Message.objects.count(),
            "commitment activities": Activity.objects.filter(kind=Activity.Kind.COMMITMENT).count(),
            "audit": AuditEvent.objects.filter(
                action__in=["openar.promise.created", "openar.plan.created"]
            ).count(),
        }


def test_twenty_submissions_of_a_promise_form_make_one_promise(
    customer: Customer, contact: Contact, account: dict[str, Invoice]
) -> None:
    def submit(n: int) -> int:
        with scope(organization=customer.organization):
            return promise_create(
                customer=customer,
                amount=Decimal("150.00"),
                promised_date=day(10),
                invoices=[account["old"], account["late"]],
                note="",
                contact=contact,
                actor=None,
                source="pay_page",
                form_token="promise-form-1",
            ).pk

    results = in_threads(SUBMISSIONS, submit)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(set(results)) == 1
    assert counts() == {
        "promises": 1,
        "plans": 0,
        "installments": 0,
        "messages": 1,
        "commitment activities": 1,
        "audit": 1,
    }


def test_promise_forms_from_two_tabs_at_once_make_one_promise(
    customer: Customer, contact: Contact, account: dict[str, Invoice]
) -> None:
    def submit(n: int) -> int:
        with scope(organization=customer.organization):
            return promise_create(
                customer=customer,
                amount=Decimal("100.00"),
                promised_date=day(7),
                invoices=[account["old"]],
                note="",
                contact=contact,
                actor=None,
                source="portal",
                form_token=f"tab-{n}",
            ).pk

    results = in_threads(8, submit)
    made = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, ServiceError)]
    assert len(made) == 1 and len(refused) == 7, results
    assert {r.code for r in refused} == {"already_promised"}
    assert counts()["promises"] == 1


def _plan_form(customer: Customer, method_label: str | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "invoices": [],
        "down_payment": Decimal("0"),
        "frequency": "monthly",
        "installment_count": 3,
        "first_date": day(1),
    }
    with scope(organization=customer.organization):
        fields["agreed_text"] = plan_terms(customer, plan_quote(customer=customer, **fields), method_label)
    return fields


def test_twenty_submissions_of_a_plan_form_make_one_plan(
    customer: Customer, contact: Contact, account: dict[str, Invoice]
) -> None:
    form = _plan_form(customer)

    def submit(n: int) -> int:
        with scope(organization=customer.organization):
            return plan_create(
                customer=customer,
                **form,
                contact=contact,
                actor=None,
                ip="203.0.113.9",
                form_token="plan-form-1",
                source="portal",
            ).pk

    results = in_threads(SUBMISSIONS, submit)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(set(results)) == 1
    assert counts() == {
        "promises": 0,
        "plans": 1,
        "installments": 3,
        "messages": 1,
        "commitment activities": 1,
        "audit": 1,
    }


def test_plan_forms_from_two_tabs_at_once_make_one_plan(
    customer: Customer, contact: Contact, account: dict[str, Invoice]
) -> None:
    form = _plan_form(customer)

    def submit(n: int) -> int:
        with scope(organization=customer.organization):
            return plan_create(
                customer=customer,
                **form,
                contact=contact,
                actor=None,
                ip=None,
                form_token=f"tab-{n}",
                source="portal",
            ).pk

    results = in_threads(8, submit)
    made = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, ServiceError)]
    assert len(made) == 1 and len(refused) == 7, results
    assert {r.code for r in refused} == {"plan_exists"}
    assert counts()["plans"] == 1 and counts()["installments"] == 3


def test_workers_running_the_jobs_together_act_once(
    customer: Customer,
    contact: Contact,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
) -> None:
    with scope(organization=customer.organization):
        promise_create(
            customer=customer,
            amount=Decimal("50.00"),
            promised_date=day(2),
            invoices=[account["later"]],
            note="",
            contact=contact,
            actor=None,
            source="portal",
        )
    card = save_card(customer, contact)
    form = _plan_form(customer, card.label)
    with scope(organization=customer.organization):
        plan_create(
            customer=customer,
            **form,
            contact=contact,
            actor=None,
            ip=None,
            saved_method=card,
            source="portal",
        )
    clock.move_to(at(6, 9))  # the promise's grace is over; the first installment is due
    results = in_threads(6, lambda n: (promises_run(), installments_run()))
    assert not [r for r in results if isinstance(r, Exception)], results
    with scopes_disabled():
        assert Promise.objects.get().state == "broken"
        assert Task.objects.filter(kind=Task.Kind.BROKEN_PROMISE).count() == 1
        charged = list(Payment.objects.filter(saved_method=card))
        assert [(p.state, p.amount) for p in charged] == [("succeeded", Decimal("100.00"))]
        assert Installment.objects.get(number=1).state == "paid"
