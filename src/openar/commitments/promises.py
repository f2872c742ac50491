"""Promises to pay: an amount by a date, made by the customer (portal, pay page) or for
them by a collector (desk).

Life of a promise: ``open`` → ``kept`` as soon as what was paid toward it since it was made
reaches its amount; at the end of the promised date plus the grace days (in the
organization's time zone), ``partly_kept`` when something was paid, ``broken`` when nothing
was; or ``cancelled``. While it is open, dunning pauses on what it covers (its invoices, or
the whole account when it names none): see ``openar.reminders.context``. The periodic job
(``promises_run``) reminds the customer before the date, resolves promises, thanks them or
tells them and their collector.
"""

from __future__ import annotations

import datetime
import logging
from collections import Counter
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from openar.billing.models import Invoice
from openar.commitments.models import CommitmentPolicy, Plan, Promise, Source
from openar.commitments.notices import day_text, tell_customer
from openar.commitments.policy import (
    allocated_since,
    checked_amount,
    checked_contact,
    checked_date,
    checked_source,
    checked_token,
    chosen_invoices,
    commitment_policy,
    end_of_day,
    left_to_pay,
    local_date,
    money,
    user_or_none,
)
from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.core.money import quantize
from openar.customers.models import Activity, Contact, Customer, Task
from openar.customers.services import activity_record, task_create
from openar.identity.models import User
from openar.tenants.models import Organization

logger = logging.getLogger(__name__)

NOTE_MAX = 1000
SOURCE_TYPE = "commitments.promise"
RESOLVED = (Promise.State.KEPT, Promise.State.PARTLY_KEPT, Promise.State.BROKEN)


def _by_token(customer: Customer, form_token: str) -> Promise | None:
    if not form_token:
        return None
    return Promise.objects.filter(customer=customer, form_token=form_token).first()


def _what(numbers: list[str]) -> str:
    if not numbers:
        return "your account"
    return ("invoice " if len(numbers) == 1 else "invoices ") + ", ".join(numbers)


def promise_create(
    *,
    customer: Customer,
    amount: Decimal,
    promised_date: datetime.date,
    invoices: list[Invoice],
    note: str,
    contact: Contact | None,
    actor: User | None,
    source: str,
    form_token: str = "",
) -> Promise:
    """Record the customer's promise to pay ``amount`` by ``promised_date``.

    - ``invoices``: what it covers (the customer's own open invoices in its currency); empty
      means the whole account.
    - ``promised_date``: from today (the organization's date) to today + the policy's
      ``promise_max_days``.
    - ``amount``: above zero, with no more decimals than the currency has, and at most what
      is left to pay on the invoices chosen (or the account): open, less payments in flight.
    - ``note``: up to 1,000 characters. The customer's own note (portal, pay page) shows on
      the timeline; a collector's (desk) stays on the promise, for staff.
    - ``source``: "portal", "pay_page" or "desk"; ``actor``: the signed-in user (None on the
      pay page); ``contact``: the person promising, when known (they get the emails).
    - ``form_token``: the form's one-time token. The same token returns the promise it
      already made (a double click, a reload, twenty at once), never a second one or an
      error.

    One open promise per invoice: a promise on invoices (or an account) that an open promise
    already covers is refused, as is one on invoices in a payment plan.

    Raises ServiceError with ``field`` ("promised_date", "amount", "invoices", "note",
    "contact", "source", "form_token") and a message for the customer. In one transaction:
    the promise, a customer-visible timeline entry, the audit event
    (``openar.promise.created``) and a confirmation email, sent once it commits.
    """
    form_token = checked_token(form_token)
    existing = _by_token(customer, form_token)
    if existing is not None:
        return existing
    try:
        return _create(
            customer=customer,
            amount=amount,
            promised_date=promised_date,
            invoices=invoices,
            note=note,
            contact=contact,
            actor=actor,
            source=source,
            form_token=form_token,
        )
    except ServiceError:
        # The same form sent again while the first was being saved: its promise, not an error.
        again = _by_token(customer, form_token)
        if again is not None:
            return again
        raise


def _create(
    *,
    customer: Customer,
    amount: Decimal,
    promised_date: datetime.date,
    invoices: list[Invoice],
    note: str,
    contact: Contact | None,
    actor: User | None,
    source: str,
    form_token: str,
) -> Promise:
    organization = customer.organization
    checked_source(source)
    checked_contact(customer, contact)
    policy = commitment_policy(organization)
    today = organization.today()
    day = checked_date(promised_date, "promised_date")
    if day < today:
        raise ServiceError("Choose a date from today on: this one is in the past.", field="promised_date")
    latest = today + datetime.timedelta(days=policy.promise_max_days)
    if day > latest:
        raise ServiceError(
            f"Choose a date no later than {day_text(latest)}: promises can be made up to "
            f"{policy.promise_max_days} days ahead.",
            field="promised_date",
        )
    currency = customer.currency
    chosen = chosen_invoices(customer, invoices)
    pool = chosen or list(Invoice.objects.filter(customer=customer, currency=currency, open_amount__gt=0))
    balance = quantize(sum(left_to_pay(pool).values(), Decimal(0)), currency)
    value = checked_amount(amount, currency, "amount")
    if value <= 0:
        raise ServiceError("Enter an amount above zero.", field="amount")
    where = "the invoices chosen" if chosen else "your account"
    if balance <= 0:
        raise ServiceError(
            f"Nothing is left to pay on {where}: a payment in progress covers it.", field="amount"
        )
    if value > balance:
        raise ServiceError(
            f"That is more than the {money(balance, currency)} left to pay on {where}.", field="amount"
        )
    text = (note or "").strip()
    if len(text) > NOTE_MAX:
        raise ServiceError(f"Keep the note under {NOTE_MAX} characters.", field="note")
    numbers = [invoice.number for invoice in chosen]
    try:
        with transaction.atomic():
            # One promise at a time per account: two forms sent at once (two tabs, a customer
            # and a collector) are checked one after the other, never both against nothing.
            Customer.objects.select_for_update().filter(pk=customer.pk).first()
            _refuse_overlap(customer, {invoice.pk for invoice in chosen})
            promise = Promise.objects.create(
                organization_id=organization.pk,
                customer=customer,
                contact=contact,
                amount=value,
                currency=currency,
                promised_date=day,
                covers_until=end_of_day(
                    day + datetime.timedelta(days=policy.promise_grace_days), organization
                ),
                note=text,
                source=source,
                created_by=user_or_none(actor),
                form_token=form_token,
            )
            if chosen:
                promise.invoices.set(chosen)
            what = _what(numbers)
            amount_text = money(value, currency)
            activity_record(
                customer=customer,
                kind=Activity.Kind.COMMITMENT,
                summary=f"Promise to pay {amount_text} by {day_text(day)} toward {what}"
                + (f", made by {contact.name}" if contact is not None and source != Source.DESK else ""),
                body=text if source != Source.DESK else "",
                actor=actor,
                invoice_id=chosen[0].pk if len(chosen) == 1 else None,
            )
            log_event(
                "openar.promise.created",
                organization=organization,
                obj=promise,
                actor=actor,
                data={
                    "customer": customer.pk,
                    "amount": str(value),
                    "currency": currency,
                    "promised_date": day.isoformat(),
                    "invoices": numbers,
                    "source": source,
                    "contact": contact.pk if contact is not None else None,
                    "note": text,
                },
            )
            remind = ""
            if policy.promise_reminder_days:
                remind_on = day - datetime.timedelta(days=policy.promise_reminder_days)
                if remind_on > today:
                    remind = f" We will remind you on {day_text(remind_on)}."
            tell_customer(
                customer,
                contact,
                f"Your promise to pay {amount_text} by {day_text(day)}",
                f"Thank you. We have noted your promise to pay {amount_text} by {day_text(day)} toward "
                f"{what}.{remind}\n\nWe will not send reminders about {'it' if chosen else 'your account'} "
                f"until then. You can pay at any time in the portal.",
                invoices=chosen,
            )
    except IntegrityError:
        found = _by_token(customer, form_token)
        if found is None:
            raise
        return found
    return promise


def _refuse_overlap(customer: Customer, invoice_ids: set[int]) -> None:
    """A promise on what an open promise or a payment plan already covers is refused."""
    currency = customer.currency
    for other in Promise.objects.filter(customer=customer, state=Promise.State.OPEN).prefetch_related(
        "invoices"
    ):
        theirs = {invoice.pk for invoice in other.invoices.all()}
        if not invoice_ids or not theirs or invoice_ids & theirs:
            raise ServiceError(
                f"There is already a promise to pay {money(other.amount, currency)} by "
                f"{day_text(other.promised_date)} on {'these invoices' if theirs else 'this account'}.",
                field="invoices",
                code="already_promised",
            )
    planned = Plan.objects.filter(customer=customer, state__in=Plan.OPEN_STATES)
    if invoice_ids:
        planned = planned.filter(invoices__in=invoice_ids)
    if planned.exists():
        raise ServiceError(
            "These invoices are in your payment plan: pay its installments instead."
            if invoice_ids
            else "Your account has a payment plan: choose invoices outside it to promise.",
            field="invoices",
            code="in_plan",
        )


def promise_cancel(*, promise: Promise, actor: User | None, reason: str) -> Promise:
    """Cancel an open promise (``reason`` is required, field "reason"): dunning resumes on
    what it covered. Refused (ServiceError) once it is kept, broken or cancelled. Audited
    (``openar.promise.cancelled``), on the timeline, and the customer is told."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Say why the promise is cancelled.", field="reason")
    with transaction.atomic():
        locked = (
            Promise.objects.select_for_update(of=("self",))
            .select_related("customer__organization", "contact")
            .get(pk=promise.pk)
        )
        if locked.state != Promise.State.OPEN:
            raise ServiceError(
                f"This promise is {locked.get_state_display().lower()}: it cannot be cancelled."
            )
        try:
            _end(locked, Promise.State.CANCELLED, reason=reason)
        except _AlreadyDone:
            raise ServiceError("This promise has just ended: it cannot be cancelled.") from None
        numbers = list(locked.invoices.values_list("number", flat=True))
        customer = locked.customer
        text = f"Promise to pay {money(locked.amount, locked.currency)} by {day_text(locked.promised_date)}"
        activity_record(
            customer=customer,
            kind=Activity.Kind.COMMITMENT,
            summary=f"{text} cancelled: {reason}",
            actor=actor,
        )
        log_event(
            "openar.promise.cancelled",
            organization=customer.organization,
            obj=locked,
            actor=actor,
            data={"reason": reason},
        )
        tell_customer(
            customer,
            locked.contact,
            f"Your promise to pay {money(locked.amount, locked.currency)} is cancelled",
            f"Your promise to pay {money(locked.amount, locked.currency)} by "
            f"{day_text(locked.promised_date)} toward {_what(numbers)} is cancelled: {reason}\n\n"
            "What is still open can be paid in the portal.",
        )
    promise.state, promise.resolved_at, promise.end_reason = (
        locked.state,
        locked.resolved_at,
        locked.end_reason,
    )
    return locked


def _end(promise: Promise, state: str, *, paid: Decimal | None = None, reason: str = "") -> None:
    """Move an open promise to ``state``; refused (RuntimeError) when another worker did
    first: the UPDATE is conditional on it still being open (SQLite has no row locks)."""
    now = timezone.now()
    fields: dict[str, object] = {"state": state, "resolved_at": now}
    if paid is not None:
        fields["paid_amount"] = paid
    if reason:
        fields["end_reason"] = reason[:300]
    if not Promise.objects.filter(pk=promise.pk, state=Promise.State.OPEN).update(**fields):
        raise _AlreadyDone
    for name, value in fields.items():
        setattr(promise, name, value)


class _AlreadyDone(Exception):
    pass


def promise_progress(promise: Promise) -> Decimal:
    """What has been paid toward the promise: payments (not credit notes) applied since it
    was made, and still in force (a returned payment's allocations are reversed), on its
    invoices (any of the customer's invoices when it names none), up to the end of the
    promised date plus the grace days. Allocations are dated when the money is applied
    (a card at once, a bank debit when it settles, a cheque when staff record it)."""
    ids = list(promise.invoices.values_list("pk", flat=True))
    where: dict[str, object] = {"customer_id": promise.customer_id}
    if ids:
        where["pk__in"] = ids
    return allocated_since(where, promise.currency, promise.created_at, promise.covers_until)


# --- the periodic job ----------------------------------------------------------------------------


def promises_run(now: datetime.datetime | None = None) -> dict[str, int]:
    """The periodic job (hourly): for every open promise, in every organization,

    - kept as soon as ``promise_progress`` reaches the amount (a thank-you email);
    - at the end of the promised date plus the grace days: ``partly_kept`` when something
      was paid, else ``broken``; both tell the customer, put a task on the collector's
      worklist (kind "broken_promise"), write the timeline and the audit;
    - otherwise, ``promise_reminder_days`` before the date, a reminder (once; not when the
      promise was made on or after that day).

    Returns how many promises ended each way ({"kept": 1, "reminded": 2, "open": 5, ...}).
    Idempotent: a second run at the same moment changes nothing. Safe with several workers:
    each promise is taken with ``SELECT ... FOR UPDATE SKIP LOCKED`` (another worker's is
    skipped) and every change is conditional on its state.
    """
    now = now or timezone.now()
    with scopes_disabled():
        rows = list(
            Promise.objects.filter(state=Promise.State.OPEN)
            .order_by("pk")
            .values_list("pk", "organization_id")
        )
        organizations = Organization.objects.in_bulk({organization_id for _, organization_id in rows})
    counts: Counter[str] = Counter()
    for pk, organization_id in rows:
        organization = organizations[organization_id]
        with scope(organization=organization):
            try:
                counts[_tick(pk, organization, now)] += 1
            except Exception:  # one promise's trouble never stops the others'
                logger.exception("promise follow-up failed", extra={"promise": pk})
                counts["error"] += 1
    return dict(counts)


def _tick(pk: int, organization: Organization, now: datetime.datetime) -> str:
    policy = commitment_policy(organization)
    try:
        with transaction.atomic():
            promise = (
                Promise.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("customer", "contact")
                .filter(pk=pk, state=Promise.State.OPEN)
                .first()
            )
            if promise is None:
                return "skipped"
            promise.customer.organization = organization
            progress = promise_progress(promise)
            if progress >= promise.amount:
                _resolve(promise, Promise.State.KEPT, progress, now)
                return "kept"
            if now >= promise.covers_until:
                state = Promise.State.PARTLY_KEPT if progress > 0 else Promise.State.BROKEN
                _resolve(promise, state, progress, now)
                return str(state)
            if _remind(promise, policy, progress, now):
                return "reminded"
            return "open"
    except _AlreadyDone:
        return "skipped"


def _remind(promise: Promise, policy: CommitmentPolicy, progress: Decimal, now: datetime.datetime) -> bool:
    days = policy.promise_reminder_days
    if not days or promise.reminded_at is not None:
        return False
    organization = promise.customer.organization
    today = local_date(now, organization)
    remind_on = promise.promised_date - datetime.timedelta(days=days)
    if not remind_on <= today <= promise.promised_date:
        return False
    if local_date(promise.created_at, organization) >= remind_on:
        return False  # made within the reminder's days: the confirmation said it all
    if not Promise.objects.filter(pk=promise.pk, reminded_at__isnull=True).update(reminded_at=now):
        return False
    currency = promise.currency
    numbers = list(promise.invoices.values_list("number", flat=True))
    so_far = f" So far we have received {money(progress, currency)} toward it." if progress > 0 else ""
    tell_customer(
        promise.customer,
        promise.contact,
        f"Reminder: your promise to pay {money(promise.amount, currency)} by "
        f"{day_text(promise.promised_date)}",
        f"This is a reminder of your promise to pay {money(promise.amount, currency)} by "
        f"{day_text(promise.promised_date)} toward {_what(numbers)}.{so_far}\n\n"
        "You can pay in the portal.",
    )
    log_event(
        "openar.promise.reminded", organization=organization, obj=promise, data={"progress": str(progress)}
    )
    return True


def _resolve(promise: Promise, state: str, progress: Decimal, now: datetime.datetime) -> None:
    _end(promise, state, paid=progress)
    customer = promise.customer
    organization = customer.organization
    currency = promise.currency
    promised = money(promise.amount, currency)
    paid = money(progress, currency)
    by = day_text(promise.promised_date)
    numbers = list(promise.invoices.values_list("number", flat=True))
    what = _what(numbers)
    if state == Promise.State.KEPT:
        summary = f"Promise to pay {promised} by {by} kept"
        subject = f"Thank you: your promise to pay {promised} is kept"
        body = f"We received {paid} toward your promise to pay {promised} by {by}. Thank you."
    elif state == Promise.State.PARTLY_KEPT:
        left = money(promise.amount - progress, currency)
        summary = f"Promise to pay {promised} by {by} partly kept: {paid} received"
        subject = f"Your promise to pay {promised} by {by} was partly kept"
        body = (
            f"We received {paid} of the {promised} you promised to pay by {by} toward {what}. "
            f"The other {left} has not arrived, so reminders about {what} start again.\n\n"
            "Please pay what is left in the portal, or reply to this email to talk to us."
        )
    else:
        summary = f"Promise to pay {promised} by {by} broken: nothing received"
        subject = f"We have not received the {promised} you promised by {by}"
        body = (
            f"You promised to pay {promised} by {by} toward {what}, and we have not received it, so "
            f"reminders about {what} start again.\n\n"
            "Please pay in the portal, or reply to this email to talk to us."
        )
    activity_record(customer=customer, kind=Activity.Kind.COMMITMENT, summary=summary, occurred_at=now)
    log_event(
        f"openar.promise.{state}",
        organization=organization,
        obj=promise,
        data={"amount": str(promise.amount), "paid": str(progress), "promised_date": by},
    )
    tell_customer(customer, promise.contact, subject, body)
    if state != Promise.State.KEPT:
        task_create(
            customer=customer,
            kind=Task.Kind.BROKEN_PROMISE,
            summary=f"{summary} ({customer.name}, {customer.number})",
            body=f"Promised {promised} by {by} toward {what}; received {paid}."
            + (f"\nNote: {promise.note}" if promise.note else ""),
            due_date=local_date(now, organization),
            source_type=SOURCE_TYPE,
            source_id=promise.pk,
        )


def promise_kept_rate(
    organization: Organization, since: datetime.date, until: datetime.date
) -> Decimal | None:
    """The share of promises kept among those resolved, for promised dates from ``since``
    to ``until`` (both included), as a fraction to 4 places (Decimal("0.6667")); None when
    none was resolved. A partly kept promise counts as resolved and not kept; open and
    cancelled promises do not count."""
    counts = Promise.objects.filter(
        organization=organization, promised_date__gte=since, promised_date__lte=until, state__in=RESOLVED
    ).aggregate(resolved=Count("pk"), kept=Count("pk", filter=Q(state=Promise.State.KEPT)))
    if not counts["resolved"]:
        return None
    return (Decimal(counts["kept"]) / Decimal(counts["resolved"])).quantize(Decimal("0.0001"))
