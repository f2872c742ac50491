"""Payment plans (arrangements): what a customer who cannot pay in full today may set up
within the organization's policy, or staff propose for them.

The flow a front door follows: ``plan_quote`` (the schedule and the terms, shown before the
customer accepts) → ``plan_terms`` with the saved method they chose, shown as the words they
agree to → ``plan_create`` with the text the page showed (refused if the terms changed
meanwhile). A plan above the policy's ``plan_approval_above`` waits for staff
(``plan_approve``); staff may also ``plan_change`` or ``plan_cancel`` it.

While a plan is pending or active, dunning pauses on its invoices (see
``openar.reminders.context``); the invoices stay payable. Installments are collected by the
periodic job (``openar.commitments.installments``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from decimal import ROUND_UP, Decimal
from typing import NamedTuple

from django.db import IntegrityError, transaction
from django.utils import timezone

from openar.billing.models import Invoice
from openar.commitments import schedule
from openar.commitments.models import CommitmentPolicy, Frequency, Installment, Plan, Promise
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
    left_to_pay,
    money,
    user_or_none,
)
from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.core.money import exponent, quantize
from openar.customers.models import Activity, Contact, Customer, Task
from openar.customers.services import activity_record, task_create, tasks_done_for
from openar.identity.models import User
from openar.payments.models import Payment, PaymentTarget, SavedMethod

FIRST_DATE_MAX_DAYS = 30  # a plan starts within a month
SOURCE_TYPE = "commitments.plan"
FREQUENCY_WORDS = {"weekly": "weekly", "biweekly": "every two weeks", "monthly": "monthly"}


class Scheduled(NamedTuple):
    """One payment of a quote: (number, date, amount); number 0 is the down payment."""

    number: int
    due_date: datetime.date
    amount: Decimal


@dataclass(frozen=True)
class Quote:
    """What a plan would be, before anyone agrees to it. ``terms`` is the consent text for
    paying each installment by hand (``plan_terms`` gives it with a saved method)."""

    total: Decimal
    down_payment: Decimal
    installments: tuple[Scheduled, ...]
    needs_approval: bool
    currency: str
    frequency: str
    installment_count: int
    first_date: datetime.date
    invoice_ids: tuple[int, ...]
    invoice_numbers: tuple[str, ...]
    terms: str = ""

    @property
    def last_date(self) -> datetime.date:
        return self.installments[-1].due_date

    @property
    def installment_amount(self) -> Decimal:
        """The amount of each regular installment (the last may be a little more)."""
        return next(item.amount for item in self.installments if item.number > 0)


# --- checks ----------------------------------------------------------------------------------------


def _check_frequency(policy: CommitmentPolicy, frequency: str) -> str:
    allowed = [f for f in Frequency.values if f in (policy.plan_frequencies or [])]
    if frequency not in allowed:
        if not allowed:
            raise ServiceError("Payment plans are not available here.", field="frequency")
        words = " or ".join(FREQUENCY_WORDS[f] for f in allowed)
        raise ServiceError(f"Choose how often to pay: {words}.", field="frequency")
    return frequency


def _check_count(policy: CommitmentPolicy, count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ServiceError("Choose how many installments.", field="installment_count")
    if count > policy.plan_max_installments:
        raise ServiceError(
            f"Choose at most {policy.plan_max_installments} installments.", field="installment_count"
        )
    return count


def _check_first_date(first_date: object, today: datetime.date) -> datetime.date:
    day = checked_date(first_date, "first_date")
    if day < today:
        raise ServiceError("Choose a first payment date from today on.", field="first_date")
    latest = today + datetime.timedelta(days=FIRST_DATE_MAX_DAYS)
    if day > latest:
        raise ServiceError(
            f"Choose a first payment date no later than {day_text(latest)}.", field="first_date"
        )
    return day


def _check_parts(policy: CommitmentPolicy, parts: list[Decimal], currency: str, *, down: Decimal) -> None:
    """Each installment at least the policy's minimum (in the policy's currency)."""
    if currency != policy.currency:
        return
    smallest = min(parts)
    if smallest < policy.plan_min_installment:
        minimum = money(policy.plan_min_installment, currency)
        fix = "choose fewer installments" if len(parts) > 1 else "pay it in full instead"
        if len(parts) == 1 and down > 0:
            fix = "choose a smaller down payment"
        raise ServiceError(
            f"Each installment would be {money(smallest, currency)}, less than the {minimum} minimum: {fix}.",
            field="installment_count",
        )


def _check_length(policy: CommitmentPolicy, first: datetime.date, last: datetime.date) -> None:
    if last > first + datetime.timedelta(days=policy.plan_max_days):
        raise ServiceError(
            f"The plan would end on {day_text(last)}, more than {policy.plan_max_days} days after its "
            "first payment: choose fewer installments or pay more often.",
            field="installment_count",
        )


def _needs_approval(policy: CommitmentPolicy, total: Decimal, currency: str) -> bool:
    threshold = policy.plan_approval_above
    if threshold is None:
        return False
    return currency != policy.currency or total > threshold


def _open_plan(customer: Customer) -> Plan | None:
    return Plan.objects.filter(customer=customer, state__in=Plan.OPEN_STATES).first()


def _refuse_second_plan(customer: Customer) -> None:
    if _open_plan(customer) is not None:
        raise ServiceError(
            "Your account already has a payment plan: one plan at a time.",
            field="invoices",
            code="plan_exists",
        )


# --- quote and terms -------------------------------------------------------------------------------


def plan_quote(
    *,
    customer: Customer,
    invoices: list[Invoice],
    down_payment: Decimal,
    frequency: str,
    installment_count: int,
    first_date: datetime.date,
) -> Quote:
    """The plan the customer would get, checked against the organization's policy. Reads
    only.

    - ``invoices``: the customer's own open invoices; none chosen: every open past-due one.
      The total is what they have open less payments in flight.
    - ``down_payment``: 0 for none; at least ``plan_min_down_percent`` of the total (rounded
      up to the minor unit) and less than the total. It is due on ``first_date``
      (number 0), the installments one period apart after it; without one, installment 1
      is due on ``first_date``.
    - ``frequency``: one the policy allows ("weekly" +7 days, "biweekly" +14, "monthly" the
      same day of the month, or its last day).
    - ``installment_count``: 1 to ``plan_max_installments`` (not counting the down
      payment), each at least ``plan_min_installment``; equal, in the currency's minor
      unit, the rounding remainder on the last.
    - ``first_date``: from today to today + 30 days; the last payment no later than
      ``first_date`` + ``plan_max_days``.

    ``needs_approval``: the total is above ``plan_approval_above``. Raises ServiceError with
    ``field`` ("invoices", "down_payment", "frequency", "installment_count", "first_date");
    also when the customer already has a pending or active plan (field "invoices",
    code "plan_exists").
    """
    organization = customer.organization
    policy = commitment_policy(organization)
    today = organization.today()
    _check_frequency(policy, frequency)
    count = _check_count(policy, installment_count)
    first = _check_first_date(first_date, today)
    _refuse_second_plan(customer)
    currency = customer.currency
    chosen = chosen_invoices(customer, invoices)
    if not chosen:
        chosen = list(
            Invoice.objects.filter(
                customer=customer, currency=currency, open_amount__gt=0, due_date__lt=today
            ).order_by("due_date", "pk")
        )
        if not chosen:
            raise ServiceError(
                "Nothing on your account is past due: there is nothing to arrange.", field="invoices"
            )
    payable = left_to_pay(chosen)
    chosen = [invoice for invoice in chosen if payable[invoice.pk] > 0]
    total = quantize(sum(payable.values(), Decimal(0)), currency)
    if total <= 0:
        raise ServiceError("A payment in progress already covers these invoices.", field="invoices")
    down = checked_amount(down_payment, currency, "down_payment")
    if down < 0:
        raise ServiceError("The down payment cannot be negative.", field="down_payment")
    if down >= total:
        raise ServiceError(
            f"The down payment must be less than the {money(total, currency)} the plan is for: "
            "to pay it all, pay in full.",
            field="down_payment",
        )
    percent = policy.plan_min_down_percent
    if percent > 0:
        unit = Decimal(1).scaleb(-exponent(currency))
        least = (total * percent / 100).quantize(unit, rounding=ROUND_UP)
        if down < least:
            raise ServiceError(
                f"The down payment must be at least {money(least, currency)} ({percent.normalize():f}% of "
                f"{money(total, currency)}).",
                field="down_payment",
            )
    parts = schedule.split(total - down, count, currency)
    _check_parts(policy, parts, currency, down=down)
    dates = schedule.payment_dates(first, frequency, count, down_payment=down > 0)
    amounts = ([down] if down > 0 else []) + parts
    items = tuple(
        Scheduled(number, day, amount) for (number, day), amount in zip(dates, amounts, strict=True)
    )
    _check_length(policy, first, items[-1].due_date)
    quote = Quote(
        total=total,
        down_payment=down,
        installments=items,
        needs_approval=_needs_approval(policy, total, currency),
        currency=currency,
        frequency=frequency,
        installment_count=count,
        first_date=first,
        invoice_ids=tuple(invoice.pk for invoice in chosen),
        invoice_numbers=tuple(invoice.number for invoice in chosen),
    )
    return replace(quote, terms=plan_terms(customer, quote, None))


def plan_terms(customer: Customer, quote: Quote, saved_method_label: str | None) -> str:
    """The exact words the customer agrees to: who is paid, what for, every payment's date
    and amount, how it is paid (``saved_method_label``: charged to that card or account on
    each date; None: they pay each one themselves), and what happens when a payment is
    missed. ``plan_create`` keeps it as the consent text. Lines are separated by "\\n"; a
    front door may send them back with "\\r\\n" (forms do): ``plan_create`` compares them
    line by line, ignoring line endings and trailing spaces."""
    organization = customer.organization
    policy = commitment_policy(organization)
    currency = quote.currency
    numbers = ", ".join(quote.invoice_numbers)
    lines = [
        f"I agree to pay {organization.name} {money(quote.total, currency)} for account {customer.number} "
        f"({customer.name}), invoice{'s' if len(quote.invoice_numbers) != 1 else ''} {numbers}, "
        "in these payments:",
    ]
    for item in quote.installments:
        label = (
            "down payment" if item.number == 0 else f"installment {item.number} of {quote.installment_count}"
        )
        lines.append(f"- {day_text(item.due_date)}: {money(item.amount, currency)} ({label})")
    if saved_method_label:
        lines.append(
            f"I authorize {organization.name} to charge my {saved_method_label} for each payment on its date."
        )
    else:
        lines.append("I will make each payment by its date.")
    lines.append(
        "Payments toward these invoices count toward the plan in order, and I may pay more or earlier at "
        f"any time. If a payment is not made within {policy.installment_grace_days} days of its date, the "
        "plan ends and everything still open on these invoices is due at once."
    )
    lines.append(f"While the plan is kept, {organization.name} does not send reminders about these invoices.")
    if quote.needs_approval:
        lines.append(f"The plan starts once {organization.name} approves it.")
    return "\n".join(lines)


def _normalized(text: str) -> str:
    return "\n".join(line.rstrip() for line in (text or "").strip().splitlines())


# --- creating, approving, changing, cancelling -----------------------------------------------------


def _by_token(customer: Customer, form_token: str) -> Plan | None:
    if not form_token:
        return None
    return Plan.objects.filter(customer=customer, form_token=form_token).first()


def plan_create(
    *,
    customer: Customer,
    invoices: list[Invoice],
    down_payment: Decimal,
    frequency: str,
    installment_count: int,
    first_date: datetime.date,
    agreed_text: str,
    contact: Contact | None,
    actor: User | None,
    ip: str | None,
    saved_method: SavedMethod | None = None,
    form_token: str = "",
    source: str,
) -> Plan:
    """Set up a plan the customer agreed to (or staff proposed and the customer accepted).

    The plan is quoted again (``plan_quote``, with its checks and fields) and
    ``agreed_text`` must be the terms the page showed, ``plan_terms(customer, quote,
    saved_method.label or None)``, as they read today: a payment or a policy change
    meanwhile changes them, and the customer is asked to read them again (field "consent").
    ``saved_method``: one of the customer's saved methods (field "saved_method"), charged on
    each date; None: the customer pays each installment.

    The plan is ``pending_approval`` when the total is above the policy's threshold (a task
    "plan_approval" goes on the worklist), else ``active``. One plan per ``form_token``: the
    same token returns the plan it made. One pending or active plan per customer (field
    "invoices", code "plan_exists"). Open promises on its invoices (or on the whole account)
    are cancelled: the plan replaces them.

    Kept with the plan: the consent text, when, the address (``ip``), the contact and the
    user who agreed. In one transaction with the audit event (``openar.plan.created``), a
    customer-visible timeline entry and a confirmation email (sent once it commits).
    """
    form_token = checked_token(form_token)
    existing = _by_token(customer, form_token)
    if existing is not None:
        return existing
    try:
        return _create(
            customer=customer,
            invoices=invoices,
            down_payment=down_payment,
            frequency=frequency,
            installment_count=installment_count,
            first_date=first_date,
            agreed_text=agreed_text,
            contact=contact,
            actor=actor,
            ip=ip,
            saved_method=saved_method,
            form_token=form_token,
            source=source,
        )
    except ServiceError:
        again = _by_token(customer, form_token)
        if again is not None:
            return again
        raise


def _create(
    *,
    customer: Customer,
    invoices: list[Invoice],
    down_payment: Decimal,
    frequency: str,
    installment_count: int,
    first_date: datetime.date,
    agreed_text: str,
    contact: Contact | None,
    actor: User | None,
    ip: str | None,
    saved_method: SavedMethod | None,
    form_token: str,
    source: str,
) -> Plan:
    organization = customer.organization
    checked_source(source)
    checked_contact(customer, contact)
    if saved_method is not None and (
        saved_method.customer_id != customer.pk or saved_method.removed_at is not None
    ):
        raise ServiceError("Choose one of your saved cards or bank accounts.", field="saved_method")
    quote = plan_quote(
        customer=customer,
        invoices=invoices,
        down_payment=down_payment,
        frequency=frequency,
        installment_count=installment_count,
        first_date=first_date,
    )
    expected = plan_terms(customer, quote, saved_method.label if saved_method is not None else None)
    if _normalized(agreed_text) != _normalized(expected):
        raise ServiceError("The terms changed while you were reading them: read them again.", field="consent")
    now = timezone.now()
    state = Plan.State.PENDING_APPROVAL if quote.needs_approval else Plan.State.ACTIVE
    currency = quote.currency
    try:
        with transaction.atomic():
            plan = Plan.objects.create(
                organization_id=organization.pk,
                customer=customer,
                contact=contact,
                currency=currency,
                total=quote.total,
                down_payment=quote.down_payment,
                frequency=quote.frequency,
                installment_count=quote.installment_count,
                first_date=quote.first_date,
                state=state,
                source=source,
                consent_text=expected,
                consent_at=now,
                consent_ip=ip,
                consent_contact=contact,
                consent_user=user_or_none(actor),
                saved_method=saved_method,
                created_by=user_or_none(actor),
                form_token=form_token,
            )
            plan.invoices.set(quote.invoice_ids)
            Installment.objects.bulk_create(
                Installment(
                    organization_id=organization.pk,
                    plan=plan,
                    number=item.number,
                    due_date=item.due_date,
                    amount=item.amount,
                )
                for item in quote.installments
            )
            replaced = _replace_promises(customer, plan, set(quote.invoice_ids), actor)
            summary = f"Payment plan of {money(quote.total, currency)}: {describe(quote)}"
            if state == Plan.State.PENDING_APPROVAL:
                summary += ", waiting for approval"
                task_create(
                    customer=customer,
                    kind=Task.Kind.PLAN_APPROVAL,
                    summary=f"Approve the payment plan of {money(quote.total, currency)} for {customer.name} "
                    f"({customer.number})",
                    body=expected,
                    due_date=organization.today(),
                    source_type=SOURCE_TYPE,
                    source_id=plan.pk,
                    actor=actor,
                )
            activity_record(
                customer=customer, kind=Activity.Kind.COMMITMENT, summary=summary, body=expected, actor=actor
            )
            log_event(
                "openar.plan.created",
                organization=organization,
                obj=plan,
                actor=actor,
                ip=ip,
                data={
                    "customer": customer.pk,
                    "state": state,
                    "total": str(quote.total),
                    "down_payment": str(quote.down_payment),
                    "frequency": quote.frequency,
                    "installment_count": quote.installment_count,
                    "first_date": quote.first_date.isoformat(),
                    "invoices": list(quote.invoice_numbers),
                    "consent_text": expected,
                    "contact": contact.pk if contact is not None else None,
                    "saved_method": saved_method.label if saved_method is not None else "",
                    "source": source,
                    "replaced_promises": replaced,
                },
            )
            waiting = (
                f"\n\n{organization.name} will review the plan and let you know; it starts once approved."
                if state == Plan.State.PENDING_APPROVAL
                else ""
            )
            tell_customer(
                customer,
                contact,
                f"Your payment plan for account {customer.number}"
                + (" is waiting for approval" if waiting else ""),
                f"Thank you for setting up a payment plan of {money(quote.total, currency)}.{waiting}\n\n"
                f"What you agreed to:\n{expected}",
            )
    except IntegrityError:
        found = _by_token(customer, form_token)
        if found is not None:
            return found
        if _open_plan(customer) is not None:
            raise ServiceError(
                "Your account already has a payment plan: one plan at a time.",
                field="invoices",
                code="plan_exists",
            ) from None
        raise
    return plan


def plan_propose(
    *,
    customer: Customer,
    invoices: list[Invoice],
    down_payment: Decimal,
    frequency: str,
    installment_count: int,
    first_date: datetime.date,
    contact: Contact | None,
    actor: User | None,
) -> str:
    """Staff propose a plan for the customer to accept themselves: the contact gets an email
    with the schedule and a link that opens the plan page on this arrangement, with its
    terms, to accept there: the pay page's (``/pay/<token>/``) when every invoice is past
    due, else the portal's (a link to the account, which shows invoices not yet due).
    Nothing is set up until they do (then through ``plan_create``, with their own consent);
    a proposal that no longer fits (paid meanwhile, another plan) is quoted again when they
    open it. Returns the link.

    Checked like a plan (``plan_quote``'s fields), plus ``contact``: one of the customer's,
    with an email address. Audited (``openar.plan.proposed``) with a staff-only timeline
    entry, in one transaction with the email."""
    from urllib.parse import urlencode

    from openar.identity.magic import magic_link_create
    from openar.identity.models import MagicLink

    if contact is None or not contact.email or not contact.consent_email:
        raise ServiceError("Choose a contact who takes email, to send the proposal to.", field="contact")
    checked_contact(customer, contact)
    _refuse_second_plan(customer)
    quote = plan_quote(
        customer=customer,
        invoices=invoices,
        down_payment=down_payment,
        frequency=frequency,
        installment_count=installment_count,
        first_date=first_date,
    )
    query = urlencode(
        {
            "proposal": "1",
            "invoices": ",".join(str(pk) for pk in quote.invoice_ids),
            "down_payment": str(quote.down_payment),
            "frequency": quote.frequency,
            "installment_count": str(quote.installment_count),
            "first_date": quote.first_date.isoformat(),
        }
    )
    # The pay page shows what is past due: a proposal with an invoice not yet due opens the
    # portal's plan page instead (a link to the account), where the customer sees it all.
    today = customer.organization.today()
    chosen = Invoice.objects.filter(pk__in=quote.invoice_ids)
    all_late = all(invoice.due_date < today for invoice in chosen)
    scope_ = MagicLink.Scope.PAY if all_late else MagicLink.Scope.ACCOUNT
    target = f"/pay/plan/?{query}" if all_late else f"/portal/plan/?{query}"
    if len(target) > 300:
        raise ServiceError("Too many invoices for one proposal: choose fewer.", field="invoices")
    currency = quote.currency
    lines = "\n".join(
        f"- {day_text(item.due_date)}: {money(item.amount, currency)}"
        + (" (down payment)" if item.number == 0 else "")
        for item in quote.installments
    )
    organization = customer.organization
    with transaction.atomic():
        issued = magic_link_create(contact=contact, scope_=scope_, target=target, created_by=actor)
        activity_record(
            customer=customer,
            kind=Activity.Kind.COMMITMENT,
            summary=f"Payment plan proposed to {contact.name}: "
            f"{money(quote.total, currency)}, {describe(quote)}"[:300],
            body=lines,
            actor=actor,
            visibility=Activity.Visibility.INTERNAL,
        )
        log_event(
            "openar.plan.proposed",
            organization=organization,
            obj=customer,
            actor=actor,
            data={
                "contact": contact.pk,
                "total": str(quote.total),
                "down_payment": str(quote.down_payment),
                "frequency": quote.frequency,
                "installment_count": quote.installment_count,
                "first_date": quote.first_date.isoformat(),
                "invoices": list(quote.invoice_numbers),
            },
        )
        tell_customer(
            customer,
            contact,
            f"A payment plan for account {customer.number}",
            f"As we discussed, {organization.name} proposes that you pay {money(quote.total, currency)} "
            f"for {', '.join(quote.invoice_numbers)} in these payments:\n{lines}\n\n"
            f"To read the terms and accept the plan (or change it), open:\n{issued.url}\n\n"
            "Nothing is set up until you accept.",
            invoices=Invoice.objects.filter(pk__in=quote.invoice_ids),
        )
    return issued.url


def describe(quote: Quote | Plan) -> str:
    """ "a down payment of $100.00, then 4 monthly installments" ("4 installments every two
    weeks": that one has no adjective)"""
    currency = quote.currency
    count = quote.installment_count
    plural = "s" if count != 1 else ""
    if quote.frequency == "biweekly":
        text = f"{count} installment{plural} every two weeks"
    else:
        text = f"{count} {FREQUENCY_WORDS[quote.frequency]} installment{plural}"
    if quote.down_payment > 0:
        return f"a down payment of {money(quote.down_payment, currency)}, then {text}"
    return text


def _replace_promises(customer: Customer, plan: Plan, invoice_ids: set[int], actor: User | None) -> list[int]:
    """Cancel the open promises on the plan's invoices (or on the whole account)."""
    from openar.commitments.promises import _AlreadyDone, _end

    replaced = []
    for promise in Promise.objects.filter(customer=customer, state=Promise.State.OPEN).prefetch_related(
        "invoices"
    ):
        theirs = {invoice.pk for invoice in promise.invoices.all()}
        if theirs and not theirs & invoice_ids:
            continue
        try:
            _end(promise, Promise.State.CANCELLED, reason=f"Replaced by payment plan {plan.pk}")
        except _AlreadyDone:
            continue
        replaced.append(promise.pk)
        log_event(
            "openar.promise.cancelled",
            organization=customer.organization,
            obj=promise,
            actor=actor,
            data={"reason": promise.end_reason, "plan": plan.pk},
        )
    return replaced


def _locked(plan: Plan) -> Plan:
    locked = (
        Plan.objects.select_for_update(of=("self",))
        .select_related("customer__organization", "contact", "consent_contact")
        .get(pk=plan.pk)
    )
    return locked


def schedule_text(plan: Plan) -> str:
    lines = []
    for item in plan.installments.order_by("number"):
        label = "down payment" if item.number == 0 else f"installment {item.number}"
        state = " (paid)" if item.state == Installment.State.PAID else ""
        lines.append(f"- {day_text(item.due_date)}: {money(item.amount, plan.currency)} ({label}){state}")
    return "\n".join(lines)


def plan_approve(*, plan: Plan, actor: User | None) -> Plan:
    """Staff approve a plan waiting for approval: it becomes active. When its first payment
    date has passed meanwhile, the schedule is dated again from today (same frequency and
    amounts). Refused (ServiceError) for a plan in any other state. Audited
    (``openar.plan.approved``), on the timeline, the approval task done, the customer told."""
    with transaction.atomic():
        locked = _locked(plan)
        if locked.state != Plan.State.PENDING_APPROVAL:
            raise ServiceError("This plan is not waiting for approval.")
        customer = locked.customer
        organization = customer.organization
        today = organization.today()
        now = timezone.now()
        redated = False
        items = list(locked.installments.order_by("number"))
        if items and items[0].due_date < today:
            has_down = items[0].number == 0
            dates = dict(
                schedule.payment_dates(
                    today, locked.frequency, locked.installment_count, down_payment=has_down
                )
            )
            for item in items:
                if item.number in dates:
                    Installment.objects.filter(pk=item.pk).update(due_date=dates[item.number])
            Plan.objects.filter(pk=locked.pk).update(first_date=today)
            redated = True
        Plan.objects.filter(pk=locked.pk).update(
            state=Plan.State.ACTIVE, approved_by=user_or_none(actor), approved_at=now
        )
        locked.refresh_from_db()
        tasks_done_for(
            source_type=SOURCE_TYPE, source_id=locked.pk, kinds=[Task.Kind.PLAN_APPROVAL], actor=actor
        )
        activity_record(
            customer=customer,
            kind=Activity.Kind.COMMITMENT,
            summary=f"Payment plan of {money(locked.total, locked.currency)} approved",
            actor=actor,
        )
        log_event(
            "openar.plan.approved",
            organization=organization,
            obj=locked,
            actor=actor,
            data={"redated_from": today.isoformat() if redated else ""},
        )
        tell_customer(
            customer,
            locked.consent_contact,
            f"Your payment plan of {money(locked.total, locked.currency)} is approved",
            f"{organization.name} approved your payment plan. Your payments:\n{schedule_text(locked)}",
        )
    return locked


def plan_change(
    *,
    plan: Plan,
    actor: User | None,
    frequency: str,
    installment_count: int,
    first_date: datetime.date,
) -> Plan:
    """Staff re-schedule what remains unpaid of a pending or active plan: the installments
    not yet paid are replaced by ``installment_count`` equal ones (numbered on from the
    last paid one), ``frequency`` apart from ``first_date``, within the policy (fields
    "frequency", "installment_count", "first_date", as ``plan_quote``). What was paid, the
    total and the consent text stay. Audited (``openar.plan.changed``, with the schedule
    before and after), on the timeline, and the customer gets the new schedule."""
    organization = plan.customer.organization
    policy = commitment_policy(organization)
    today = organization.today()
    _check_frequency(policy, frequency)
    count = _check_count(policy, installment_count)
    first = _check_first_date(first_date, today)
    with transaction.atomic():
        locked = _locked(plan)
        if locked.state not in Plan.OPEN_STATES:
            raise ServiceError(f"This plan is {locked.get_state_display().lower()}: it cannot be changed.")
        customer = locked.customer
        before = schedule_text(locked)
        items = sync(locked, timezone.now())
        paid = [item for item in items if item.state == Installment.State.PAID]
        remaining = locked.total - sum((item.amount for item in paid), Decimal(0))
        if remaining <= 0:
            raise ServiceError("Everything in this plan is paid: there is nothing to change.")
        parts = schedule.split(remaining, count, locked.currency)
        _check_parts(policy, parts, locked.currency, down=Decimal(0))
        dates = schedule.payment_dates(first, frequency, count, down_payment=False)
        _check_length(policy, first, dates[-1][1])
        start = max((item.number for item in paid), default=0)
        Installment.objects.filter(plan=locked).exclude(state=Installment.State.PAID).delete()
        Installment.objects.bulk_create(
            Installment(
                organization_id=locked.organization_id,
                plan=locked,
                number=start + n,
                due_date=day,
                amount=amount,
            )
            for (n, day), amount in zip(dates, parts, strict=True)
        )
        regular = Installment.objects.filter(plan=locked, number__gt=0).count()
        Plan.objects.filter(pk=locked.pk).update(frequency=frequency, installment_count=regular)
        locked.refresh_from_db()
        after = schedule_text(locked)
        activity_record(
            customer=customer,
            kind=Activity.Kind.COMMITMENT,
            summary=f"Payment plan changed: {money(remaining, locked.currency)} left in {count} "
            f"{FREQUENCY_WORDS[frequency]} installment{'s' if count != 1 else ''} from {day_text(first)}",
            body=after,
            actor=actor,
        )
        log_event(
            "openar.plan.changed",
            organization=organization,
            obj=locked,
            actor=actor,
            data={"before": before, "after": after, "frequency": frequency, "installment_count": count},
        )
        tell_customer(
            customer,
            locked.consent_contact,
            f"Your payment plan for account {customer.number} has changed",
            f"Your payment plan now has these payments:\n{after}",
        )
    return locked


def plan_cancel(*, plan: Plan, actor: User | None, reason: str) -> Plan:
    """End a pending or active plan (``reason`` required, field "reason"): dunning resumes
    on what its invoices still have open. Refused (ServiceError) in any other state.
    Audited (``openar.plan.cancelled``), on the timeline, the customer told."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Say why the plan is cancelled.", field="reason")
    with transaction.atomic():
        locked = _locked(plan)
        if locked.state not in Plan.OPEN_STATES:
            raise ServiceError(f"This plan is {locked.get_state_display().lower()}: it cannot be cancelled.")
        customer = locked.customer
        Plan.objects.filter(pk=locked.pk).update(
            state=Plan.State.CANCELLED, ended_at=timezone.now(), end_reason=reason[:300]
        )
        locked.refresh_from_db()
        tasks_done_for(
            source_type=SOURCE_TYPE, source_id=locked.pk, kinds=[Task.Kind.PLAN_APPROVAL], actor=actor
        )
        activity_record(
            customer=customer,
            kind=Activity.Kind.COMMITMENT,
            summary=f"Payment plan of {money(locked.total, locked.currency)} cancelled: {reason}"[:300],
            actor=actor,
        )
        log_event(
            "openar.plan.cancelled",
            organization=customer.organization,
            obj=locked,
            actor=actor,
            data={"reason": reason},
        )
        tell_customer(
            customer,
            locked.consent_contact,
            f"Your payment plan for account {customer.number} is cancelled",
            f"Your payment plan of {money(locked.total, locked.currency)} is cancelled: {reason}\n\n"
            "What is still open on its invoices can be paid in the portal.",
        )
    return locked


# --- progress and health ---------------------------------------------------------------------------


def plan_progress(plan: Plan) -> Decimal:
    """What has been paid toward the plan: payments (not credit notes) applied to its
    invoices since it was made, still in force (a returned payment's are reversed), by any
    means (its saved method, the portal, a cheque)."""
    ids = list(plan.invoices.values_list("pk", flat=True))
    return allocated_since({"pk__in": ids}, plan.currency, plan.created_at)


def in_flight_toward(plan: Plan) -> Decimal:
    """What payments still in flight (a card being charged, a bank debit settling) will pay
    toward the plan: made since it was made, for its invoices. Not paid yet, but an
    installment it covers is not late, and is not charged again."""
    rows = PaymentTarget.objects.filter(
        invoice__in=plan.invoices.all(),
        payment__state__in=(Payment.State.PENDING, Payment.State.PROCESSING),
        payment__created_at__gte=plan.created_at,
    ).values_list("amount", flat=True)
    return quantize(sum(rows.order_by(), Decimal(0)), plan.currency)


def sync(
    plan: Plan, now: datetime.datetime, progress: Decimal | None = None, pending: Decimal | None = None
) -> list[Installment]:
    """Bring the installments' states in line with what was paid (callers hold the plan's
    lock): an installment is paid when the progress covers it and every one before it;
    one not paid is late once its date has passed or a charge for it failed, unless a
    payment in flight covers it. Returns the installments, in order."""
    if progress is None:
        progress = plan_progress(plan)
    if pending is None:
        pending = in_flight_toward(plan)
    today = now.astimezone(plan.customer.organization.tz).date()
    items = list(plan.installments.order_by("number"))
    cumulative = Decimal(0)
    for item in items:
        cumulative += item.amount
        if item.state == Installment.State.MISSED:
            continue
        if progress >= cumulative:
            state, paid_at = Installment.State.PAID, item.paid_at or now
        elif progress + pending >= cumulative or not (item.due_date < today or item.attempts):
            state, paid_at = Installment.State.SCHEDULED, None
        else:
            state, paid_at = Installment.State.LATE, None
        if (state, paid_at) != (item.state, item.paid_at):
            Installment.objects.filter(pk=item.pk).update(state=state, paid_at=paid_at)
            item.state, item.paid_at = state, paid_at
    return items


def unpaid_part(items: list[Installment], item: Installment, progress: Decimal) -> Decimal:
    """What is still to pay of ``item``: its amount, less what the progress covers of it
    after the installments before it."""
    before = sum((other.amount for other in items if other.number < item.number), Decimal(0))
    covered = max(Decimal(0), min(item.amount, progress - before))
    return item.amount - covered


def plan_health(plan: Plan) -> str:
    """For the desk: "pending approval", "cancelled", "broken", "completed", or for an
    active plan "behind" (what was due before today is not all paid) or "on track"."""
    if plan.state == Plan.State.PENDING_APPROVAL:
        return "pending approval"
    if plan.state != Plan.State.ACTIVE:
        return str(plan.state)
    today = plan.customer.organization.today()
    due = sum((item.amount for item in plan.installments.all() if item.due_date < today), Decimal(0))
    return "behind" if plan_progress(plan) < due else "on track"
