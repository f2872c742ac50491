"""Collecting a plan's installments: the periodic job (``installments_run``) and the handler
of the outcome of each charge to a saved method (``installment_outcome``).

For each active plan, every run:

1. **What was paid.** An installment is paid when everything paid toward the plan since it
   was made (``plan_progress``: by the saved method, in the portal, by cheque) covers it and
   every installment before it. When all are paid (or nothing is open any more on the
   plan's invoices) the plan is completed, and the customer thanked.
2. **Charging.** With a saved method, each installment whose date has come (or whose retry
   has) is charged for its unpaid part: one ``Payment`` with the checkout token
   ``installment-<id>-<attempt>`` (any number of workers, or a run repeated after a crash,
   make one payment; its idempotency key makes one charge at the provider), to the plan's
   invoices oldest due first, then ``autopay.charge_pending``. The provider's answer comes
   back through the event path to ``installment_outcome``.
3. **Late, reminded, broken.** An installment not paid after its date, or whose charge
   failed, is late: the customer gets one reminder. A failed charge is tried again every
   ``RETRY_EVERY_DAYS`` while the grace lasts. Still unpaid more than
   ``installment_grace_days`` after its date (and no payment for it in flight), the plan is
   broken: the customer is told, a task goes on the collector's worklist, and dunning resumes
   on what the invoices still have open.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections import Counter
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from openar.billing.models import Invoice
from openar.commitments.models import Installment, Plan
from openar.commitments.notices import day_text, tell_customer
from openar.commitments.plans import SOURCE_TYPE, in_flight_toward, plan_progress, sync, unpaid_part
from openar.commitments.policy import commitment_policy, left_to_pay, local_date, money
from openar.core.audit import log_event
from openar.customers.models import Activity, Task
from openar.customers.services import activity_record, task_create
from openar.payments import autopay, online
from openar.payments.models import Payment
from openar.tenants.models import Organization

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "installment-"  # noqa: S105  (a checkout token's prefix, not a secret)
TOKEN = re.compile(r"installment-(\d+)-(\d+)")
RETRY_EVERY_DAYS = 2


def installments_run(now: datetime.datetime | None = None) -> dict[str, int]:
    """The periodic job (hourly): collect, follow up and end every active plan (see the
    module's description). Returns counts of what happened ({"charged": 2, "reminded": 1,
    "broken": 1, "completed": 1, "on track": 7, ...}). Idempotent: a second run at the same
    moment changes nothing and charges nothing. Safe with several workers: a plan is taken
    with ``SELECT ... FOR UPDATE SKIP LOCKED``, a charge is one payment per token, and the
    provider is asked once per payment (``charge_pending``)."""
    now = now or timezone.now()
    with scopes_disabled():
        rows = list(
            Plan.objects.filter(state=Plan.State.ACTIVE).order_by("pk").values_list("pk", "organization_id")
        )
        organizations = Organization.objects.in_bulk({organization_id for _, organization_id in rows})
    counts: Counter[str] = Counter()
    for pk, organization_id in rows:
        with scope(organization=organizations[organization_id]):
            try:
                for outcome in _tick(pk, organizations[organization_id], now):
                    counts[outcome] += 1
            except Exception:  # one plan's trouble never stops the others'
                logger.exception("installment collection failed", extra={"plan": pk})
                counts["error"] += 1
    return dict(counts)


def _take(pk: int, organization: Organization) -> Plan | None:
    plan = (
        Plan.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("customer", "saved_method", "consent_contact")
        .filter(pk=pk, state=Plan.State.ACTIVE)
        .first()
    )
    if plan is not None:
        plan.customer.organization = organization
    return plan


def _tick(pk: int, organization: Organization, now: datetime.datetime) -> list[str]:
    today = local_date(now, organization)
    with transaction.atomic():
        plan = _take(pk, organization)
        if plan is None:
            return ["skipped"]
        items = sync(plan, now)
        if _finished(plan, items):
            _complete(plan, now)
            return ["completed"]
    outcomes = []
    for item in _to_charge(plan, items, today):
        try:
            outcomes.append(_charge(plan, item))
        except Exception:  # a charge that cannot be made still lets the plan be followed up
            logger.exception("installment charge failed", extra={"installment": item.pk})
            outcomes.append("charge error")
    with transaction.atomic():
        plan = _take(pk, organization)
        if plan is None:
            return [*outcomes, "skipped"]
        progress = plan_progress(plan)
        items = sync(plan, now, progress)
        if _finished(plan, items):
            _complete(plan, now)
            return [*outcomes, "completed"]
        policy = commitment_policy(organization)
        grace = datetime.timedelta(days=policy.installment_grace_days)
        unpaid = [item for item in items if item.state != Installment.State.PAID]
        overdue = [
            item for item in unpaid if item.state == Installment.State.LATE and today > item.due_date + grace
        ]
        if overdue:
            _break(plan, items, overdue[0], progress, now)
            return [*outcomes, "broken"]
        for item in unpaid:
            late_now = item.state == Installment.State.LATE and item.reminded_at is None
            if late_now and _remind(plan, items, item, progress, grace, now):
                outcomes.append("reminded")
        late = any(item.state == Installment.State.LATE for item in unpaid)
        outcomes.append("behind" if late else "on track")
    return outcomes


def _finished(plan: Plan, items: list[Installment]) -> bool:
    if all(item.state == Installment.State.PAID for item in items):
        return True
    # Nothing left open on its invoices (a credit note, a payment applied elsewhere first).
    return not Invoice.objects.filter(pk__in=plan.invoices.values("pk"), open_amount__gt=0).exists()


def _to_charge(plan: Plan, items: list[Installment], today: datetime.date) -> list[Installment]:
    method = plan.saved_method
    if method is None or method.removed_at is not None:
        return []
    due = []
    covered = plan_progress(plan) + in_flight_toward(plan)
    # A charge the provider could not be asked for (it was down): asked again, same key.
    unsent = set(
        Payment.objects.filter(
            pk__in=[item.last_payment_id for item in items if item.last_payment_id],
            state=Payment.State.PENDING,
            saved_method__isnull=False,
        ).values_list("pk", flat=True)
    )
    cumulative = Decimal(0)
    for item in items:
        cumulative += item.amount
        if item.last_payment_id in unsent:
            due.append(item)
            continue
        if item.state == Installment.State.PAID or item.due_date > today or covered >= cumulative:
            continue  # paid, not due yet, or a payment in flight covers it
        if item.attempts and (item.retry_on is None or item.retry_on > today):
            continue  # failed: wait for the retry day (none left: the customer pays it)
        due.append(item)
    return due


def _charge(plan: Plan, item: Installment) -> str:
    """Charge the unpaid part of ``item`` to the plan's saved method (one payment per
    attempt, however often this runs)."""
    method = plan.saved_method
    assert method is not None  # noqa: S101  (_to_charge checked)
    customer = plan.customer
    token = f"{TOKEN_PREFIX}{item.pk}-{item.attempts}"
    payment = Payment.objects.filter(customer=customer, checkout_token=token).first()
    if payment is None:
        items = list(plan.installments.order_by("number"))
        left = unpaid_part(items, item, plan_progress(plan) + in_flight_toward(plan))
        lines = _lines(plan, left)
        if not lines:
            return "nothing to charge"
        payment = online.payment_create(
            customer=customer,
            lines=lines,
            method=method.method,
            provider_name=method.provider,
            checkout_token=token,
            contact=plan.consent_contact,
            saved_method=method,
        )
        Installment.objects.filter(pk=item.pk).update(last_payment=payment)
        item.last_payment = payment
    if payment.state in (Payment.State.FAILED, Payment.State.RETURNED):
        # Ended without its outcome being counted (a checkout left pending and expired):
        # count it now, so that the next attempt has a token of its own.
        with transaction.atomic():
            installment_outcome(payment)
        return "charge failed"
    if payment.state != Payment.State.PENDING:
        return f"skipped: the payment is {payment.state}"
    result = autopay.charge_pending(payment)
    return "charged" if result in ("succeeded", "processing") else f"charge {result}"


def _lines(plan: Plan, amount: Decimal) -> list[online.PayLine]:
    """``amount`` over the plan's invoices, oldest due first, each capped by what it has
    left to pay (open, less payments in flight)."""
    invoices = list(plan.invoices.filter(open_amount__gt=0).order_by("due_date", "pk"))
    payable = left_to_pay(invoices)
    lines = []
    left = amount
    for invoice in invoices:
        if left <= 0:
            break
        part = min(left, payable[invoice.pk])
        if part > 0:
            lines.append(online.PayLine(invoice, part))
            left -= part
    return lines


def _remind(
    plan: Plan,
    items: list[Installment],
    item: Installment,
    progress: Decimal,
    grace: datetime.timedelta,
    now: datetime.datetime,
) -> bool:
    """The late installment's one reminder; False when it went out already."""
    if not Installment.objects.filter(pk=item.pk, reminded_at__isnull=True).update(reminded_at=now):
        return False
    item.reminded_at = now
    currency = plan.currency
    customer = plan.customer
    left = unpaid_part(items, item, progress)
    label = "The down payment" if item.number == 0 else f"Installment {item.number}"
    why = ""
    if item.attempts:
        failure = item.last_failure or "the payment did not go through"
        method = plan.saved_method.label if plan.saved_method else "saved method"
        why = f" We could not charge your {method}: {failure}"
        if item.retry_on:
            why += f" We will try again on {day_text(item.retry_on)}."
    remaining = money(plan.total - progress, currency)
    deadline = day_text(item.due_date + grace)
    tell_customer(
        customer,
        plan.consent_contact,
        f"Your payment of {money(left, currency)} due {day_text(item.due_date)} is late",
        f"{label} of your payment plan, {money(left, currency)} due on {day_text(item.due_date)}, has not "
        f"been paid.{why}\n\nPlease pay it by {deadline} in the portal. If it is not paid by then, the plan "
        f"ends and everything still open ({remaining}) is due at once.",
    )
    activity_record(
        customer=customer,
        kind=Activity.Kind.COMMITMENT,
        summary=f"{label} of the payment plan ({money(left, currency)}, due {day_text(item.due_date)}) "
        "is late",
        occurred_at=now,
    )
    log_event(
        "openar.installment.late",
        organization=customer.organization,
        obj=item,
        data={"plan": plan.pk, "number": item.number, "unpaid": str(left), "attempts": item.attempts},
    )
    return True


def _break(
    plan: Plan, items: list[Installment], item: Installment, progress: Decimal, now: datetime.datetime
) -> None:
    customer = plan.customer
    organization = customer.organization
    currency = plan.currency
    left = unpaid_part(items, item, progress)
    label = "the down payment" if item.number == 0 else f"installment {item.number}"
    reason = f"{label.capitalize()} ({money(left, currency)}, due {day_text(item.due_date)}) was not paid"
    if not Plan.objects.filter(pk=plan.pk, state=Plan.State.ACTIVE).update(
        state=Plan.State.BROKEN, ended_at=now, end_reason=reason
    ):
        return
    plan.state, plan.ended_at, plan.end_reason = Plan.State.BROKEN, now, reason
    Installment.objects.filter(plan=plan, state=Installment.State.LATE).update(state=Installment.State.MISSED)
    open_now = sum((i.open_amount for i in plan.invoices.filter(open_amount__gt=0)), Decimal(0))
    summary = f"Payment plan of {money(plan.total, currency)} broken: {reason}"
    activity_record(customer=customer, kind=Activity.Kind.COMMITMENT, summary=summary, occurred_at=now)
    log_event(
        "openar.plan.broken",
        organization=organization,
        obj=plan,
        data={"installment": item.number, "unpaid": str(left), "paid": str(progress), "open": str(open_now)},
    )
    tell_customer(
        customer,
        plan.consent_contact,
        f"Your payment plan for account {customer.number} has ended",
        f"Your payment plan has ended because {label} of {money(left, currency)}, due on "
        f"{day_text(item.due_date)}, was not paid. Everything still open on its invoices "
        f"({money(open_now, currency)}) is now due, and reminders start again.\n\n"
        "Please pay in the portal, or reply to this email to talk to us.",
    )
    task_create(
        customer=customer,
        kind=Task.Kind.MISSED_INSTALLMENT,
        summary=f"{summary} ({customer.name}, {customer.number})",
        body=f"Paid toward the plan: {money(progress, currency)}. Still open: {money(open_now, currency)}.",
        due_date=local_date(now, organization),
        source_type=SOURCE_TYPE,
        source_id=plan.pk,
    )


def _complete(plan: Plan, now: datetime.datetime) -> None:
    customer = plan.customer
    all_paid = all(i.state == Installment.State.PAID for i in plan.installments.all())
    reason = "Paid in full" if all_paid else "Nothing is left open on its invoices"
    if not Plan.objects.filter(pk=plan.pk, state=Plan.State.ACTIVE).update(
        state=Plan.State.COMPLETED, ended_at=now, end_reason=reason
    ):
        return
    plan.state, plan.ended_at, plan.end_reason = Plan.State.COMPLETED, now, reason
    total = money(plan.total, plan.currency)
    activity_record(
        customer=customer,
        kind=Activity.Kind.COMMITMENT,
        summary=f"Payment plan of {total} completed: {reason.lower()}",
        occurred_at=now,
    )
    log_event("openar.plan.completed", organization=customer.organization, obj=plan, data={"reason": reason})
    if all_paid:
        tell_customer(
            customer,
            plan.consent_contact,
            f"Thank you: your payment plan of {total} is paid",
            f"Your payment plan of {total} is paid in full. Thank you for keeping every payment.",
        )


# --- the outcome of a charge ------------------------------------------------------------------------


def installment_outcome(payment: Payment) -> None:
    """Called by the provider-event path, in the event's transaction and the payment's
    organization scope, when a payment charged for an installment (checkout token
    ``installment-<id>-<attempt>``) changes state (``autopay.OUTCOME_HANDLERS``). It must
    only update rows (no provider calls).

    - succeeded: the installments are brought in line with what was paid (``sync``);
    - failed or returned: the attempt is counted (once per attempt), the reason kept, a
      retry set ``RETRY_EVERY_DAYS`` later while the grace lasts, and the installment is
      late (the next run reminds the customer once, then breaks the plan after the grace).
    """
    found = TOKEN.fullmatch(payment.checkout_token)
    if found is None:
        return
    plan_id = Installment.objects.filter(pk=int(found.group(1))).values_list("plan_id", flat=True).first()
    if plan_id is None:
        return  # re-scheduled away by staff meanwhile: the payment counts as progress all the same
    # The plan first, then its installment: the order the job and staff take them in.
    plan = (
        Plan.objects.select_for_update(of=("self",))
        .select_related("customer__organization", "saved_method")
        .get(pk=plan_id)
    )
    item = Installment.objects.select_for_update().filter(pk=int(found.group(1))).first()
    if item is None:
        return
    now = timezone.now()
    if payment.state == Payment.State.SUCCEEDED:
        if plan.state == Plan.State.ACTIVE:
            sync(plan, now)
        return
    if payment.state not in (Payment.State.FAILED, Payment.State.RETURNED):
        return
    organization = plan.customer.organization
    stored = Payment.objects.filter(pk=payment.pk).values_list("failure_message", flat=True).first()
    message = stored or payment.failure_message or "The payment did not go through."
    updates: dict[str, object] = {"last_failure": message[:300]}
    if int(found.group(2)) == item.attempts:  # this attempt, counted once
        today = local_date(now, organization)
        grace = datetime.timedelta(days=commitment_policy(organization).installment_grace_days)
        retry = today + datetime.timedelta(days=RETRY_EVERY_DAYS)
        updates["attempts"] = item.attempts + 1
        updates["retry_on"] = retry if retry <= item.due_date + grace else None
    Installment.objects.filter(pk=item.pk).update(**updates)
    log_event(
        "openar.installment.charge_failed",
        organization=organization,
        obj=item,
        data={
            "payment": payment.pk,
            "state": payment.state,
            "message": message,
            **{k: str(v) for k, v in updates.items() if k != "last_failure"},
        },
    )
    if plan.state == Plan.State.ACTIVE:
        sync(plan, now)
