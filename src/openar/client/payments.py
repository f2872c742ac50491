"""Payments a debtor made directly to the creditor, reported by the creditor client.

The creditor reports the payment (``direct_payment_report``): it waits in the desk's queue
as ``reported`` and changes nothing in the ledger. Staff then either confirm it
(``direct_payment_confirm``), which records a real Payment (method "Paid directly to the
creditor") through ``openar.payments.services.payment_record`` and applies it to the
debtor's invoices, oldest first or as staff choose; or reject it with a reason
(``direct_payment_reject``). Each step writes a timeline entry that staff and the creditor
see, an audit event, and an email after the commit: to AR (the assigned collector, else
the agency) when a payment is reported, to the creditor user who reported it when staff
decide.

The agency's commission on a direct payment is ``amount × creditor.commission_rate``,
rounded to the currency: the creditor kept the whole payment, so it owes the agency that
commission (``commission_of``). The rate and the commission are stored on the report when it
is confirmed and read from there after (``report_commission``): a later change of the
creditor's rate does not move them.

Confirming is safe to repeat: the report row is locked and its state re-checked, and the
move from ``reported`` is a conditional update whose row count decides, so two staff (or a
double click) confirming at once record one payment; the second is told it was done.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from openar.client.models import DirectPaymentReport
from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.core.money import format_money, quantize
from openar.customers.models import Activity, Customer
from openar.customers.services import activity_record
from openar.identity.models import User
from openar.notifications.notices import tell_ar
from openar.payments.models import Payment
from openar.payments.services import AllocationInput, payment_record
from openar.tenants.models import Creditor

REFERENCE_MAX = 100
NOTE_MAX = 1000
REASON_MAX = 500
# A payment older than this is most likely a typo in the year.
OLDEST_DAYS = 3 * 366


@dataclass(frozen=True)
class Commission:
    """What a collection of ``amount`` means between the agency and its client."""

    amount: Decimal
    rate: Decimal
    fee: Decimal  # the agency's commission
    net: Decimal  # what the creditor keeps: amount − fee
    currency: str

    @property
    def rate_percent(self) -> str:
        """ "25%", "12.5%"."""
        text = f"{(self.rate * 100).normalize():f}"
        return f"{text}%"


def commission_of(amount: Decimal, rate: Decimal | int, currency: str) -> Commission:
    rate = Decimal(rate)  # a creditor made in this process may still hold its default, 0
    fee = quantize(amount * rate, currency)
    return Commission(
        amount=quantize(amount, currency),
        rate=rate,
        fee=fee,
        net=quantize(amount, currency) - fee,
        currency=currency,
    )


def report_commission(report: DirectPaymentReport) -> Commission:
    """The commission on a report: as stored when it was confirmed; before that, at the
    creditor's current rate."""
    if report.commission_rate is not None and report.commission is not None:
        fee = quantize(report.commission, report.currency)
        amount = quantize(report.amount, report.currency)
        return Commission(
            amount=amount, rate=report.commission_rate, fee=fee, net=amount - fee, currency=report.currency
        )
    return commission_of(report.amount, report.creditor.commission_rate, report.currency)


def _user(actor: User | None) -> User | None:
    return actor if actor is not None and actor.is_authenticated else None


def _day(day: datetime.date) -> str:
    return f"{day.day} {day:%B %Y}"


def direct_payment_report(
    *,
    customer: Customer,
    creditor: Creditor,
    amount: Decimal,
    received_on: datetime.date,
    method: str,
    reference: str = "",
    note: str = "",
    actor: User | None,
    form_token: str = "",
) -> DirectPaymentReport:
    """Record that the debtor of ``customer`` paid ``amount`` to ``creditor`` directly.

    ``customer`` must be an account ``creditor`` placed; ``amount`` above zero, with no
    more decimals than the account's currency has, and at most the account's open balance
    (more than is owed is a typo or a payment for something else); ``received_on`` not in
    the future and not more than three years back (the organization's date); ``method``
    one of cheque, wire, cash, card, other; ``reference`` up to 100 characters, ``note`` up
    to 1,000. ``form_token``: the same token returns the report it already made (a double
    click), never a second one.

    Raises ServiceError with ``field`` set. In one transaction: the report, a timeline
    entry for staff and the creditor, the audit event ``openar.client.payment_reported``;
    AR is emailed once it commits.
    """
    if customer.creditor_id != creditor.pk or customer.organization_id != creditor.organization_id:
        raise ServiceError("This account was not placed by you.")
    token = (form_token or "").strip()[:64]
    if token:
        existing = DirectPaymentReport.objects.filter(customer=customer, form_token=token).first()
        if existing is not None:
            return existing
    currency = customer.currency
    value = quantize(amount, currency)
    if value != amount:
        raise ServiceError(f"Enter the amount with at most the decimals {currency} has.", field="amount")
    if value <= 0:
        raise ServiceError("Enter an amount above zero.", field="amount")
    organization = customer.organization
    today = organization.today()
    if received_on > today:
        raise ServiceError("A payment cannot be received in the future.", field="received_on")
    if received_on < today - datetime.timedelta(days=OLDEST_DAYS):
        raise ServiceError("That date is more than three years ago: check the year.", field="received_on")
    if method not in DirectPaymentReport.Method.values:
        raise ServiceError("Choose how the payment was made.", field="method")
    reference = (reference or "").strip()
    if len(reference) > REFERENCE_MAX:
        raise ServiceError(f"Keep the reference under {REFERENCE_MAX} characters.", field="reference")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ServiceError(f"Keep the note under {NOTE_MAX} characters.", field="note")
    try:
        with transaction.atomic():
            # One report at a time per account: the balance check sees the reports before it.
            Customer.objects.select_for_update().filter(pk=customer.pk).first()
            owed = balance_left(customer)
            if value > owed:
                raise ServiceError(
                    f"That is more than the {format_money(owed, currency)} the account owes"
                    " (less payments already reported).",
                    field="amount",
                )
            report = DirectPaymentReport.objects.create(
                organization_id=customer.organization_id,
                creditor=creditor,
                customer=customer,
                amount=value,
                currency=currency,
                received_on=received_on,
                method=method,
                reference=reference,
                note=note,
                reported_by=_user(actor),
                reported_at=timezone.now(),
                form_token=token,
            )
            money = format_money(value, currency)
            how = report.get_method_display().lower()
            activity_record(
                customer=customer,
                kind=Activity.Kind.PAYMENT,
                visibility=Activity.Visibility.CREDITOR,
                summary=f"{creditor.name} reported a direct payment of {money} ({how}), to be confirmed",
                body="\n".join(
                    part
                    for part in (
                        f"Received on {_day(received_on)}.",
                        f"Reference: {reference}" if reference else "",
                        note,
                    )
                    if part
                ),
                actor=actor,
            )
            log_event(
                "openar.client.payment_reported",
                organization=organization,
                obj=report,
                actor=actor,
                data={
                    "customer": customer.number,
                    "amount": str(value),
                    "currency": currency,
                    "method": method,
                    "received_on": received_on.isoformat(),
                    "reference": reference,
                },
            )
            commission = report_commission(report)
            tell_ar(
                customer,
                f"Direct payment reported: {customer.name} ({customer.number}), {money}",
                f"{creditor.name} reports that {customer.name} paid {money} to them directly "
                f"({how}, received {_day(received_on)}"
                f"{', reference ' + reference if reference else ''}).\n"
                f"Agency commission at {commission.rate_percent}: "
                f"{format_money(commission.fee, currency)}.\n"
                f"Confirm and apply it, or reject it: {settings.SITE_URL}/desk/client-payments/{report.pk}/",
            )
    except IntegrityError:
        # The same form sent again while the first was being saved: its report.
        again = (
            DirectPaymentReport.objects.filter(customer=customer, form_token=token).first() if token else None
        )
        if again is None:
            raise
        return again
    return report


def balance_left(customer: Customer) -> Decimal:
    """The account's open balance in its currency, less direct payments reported and not
    yet decided: what a new report may still cover."""
    from django.db.models import Sum

    from openar.billing.models import Invoice

    open_total = Invoice.objects.filter(
        customer=customer, currency=customer.currency, open_amount__gt=0
    ).aggregate(total=Sum("open_amount"))["total"] or Decimal(0)
    waiting = DirectPaymentReport.objects.filter(
        customer=customer, currency=customer.currency, state=DirectPaymentReport.State.REPORTED
    ).aggregate(total=Sum("amount"))["total"] or Decimal(0)
    return max(quantize(Decimal(str(open_total)) - Decimal(str(waiting)), customer.currency), Decimal(0))


def _received_at(report: DirectPaymentReport) -> datetime.datetime:
    """The day received as a moment: noon where the organization is."""
    organization = report.customer.organization
    return datetime.datetime.combine(report.received_on, datetime.time(12), tzinfo=organization.tz)


def _decided_text(report: DirectPaymentReport) -> str:
    who = report.decided_by.get_full_name() or report.decided_by.email if report.decided_by else "staff"
    when = timezone.localtime(report.decided_at, report.organization.tz) if report.decided_at else None
    on = f" on {_day(when.date())}" if when else ""
    return f"already {report.get_state_display().lower()} by {who}{on}"


def _tell_creditor(report: DirectPaymentReport, subject: str, body: str) -> None:
    """An email to the creditor user who reported the payment, once the transaction commits."""
    user = report.reported_by
    if user is None or not user.is_active or not user.email:
        return
    text = (
        f"{body}\n\n{settings.SITE_URL}/client/accounts/{report.customer_id}/payments/report/\n\n"
        f"{report.organization.name}\n"
    )
    to = user.email
    transaction.on_commit(lambda: send_mail(subject, text, None, [to], fail_silently=True))


def direct_payment_confirm(
    *,
    report: DirectPaymentReport,
    allocations: list[AllocationInput] | None,
    actor: User | None,
) -> DirectPaymentReport:
    """Confirm a reported payment: record it as a Payment ("Paid directly to the creditor",
    received at noon of the day reported, in the organization's time zone) and apply it to
    the debtor's invoices: ``allocations`` None applies it oldest due first, else the
    amounts given (more than an invoice has open, or than the payment, is refused). What is
    not applied stays on the payment as unapplied credit.

    Raises ServiceError when the report was already confirmed or rejected (``code``
    "decided"), and whatever ``payment_record`` refuses (then nothing is written). In one
    transaction: the payment and its allocations, the report confirmed and linked to it,
    a timeline entry for staff and the creditor, the audit event
    ``openar.client.payment_confirmed`` with the commission; the creditor is emailed once
    it commits.
    """
    with transaction.atomic():
        locked = (
            DirectPaymentReport.objects.select_for_update(of=("self",))
            .select_related("customer__organization", "creditor", "decided_by")
            .get(pk=report.pk)
        )
        if locked.state != DirectPaymentReport.State.REPORTED or locked.decided_at is not None:
            raise ServiceError(f"This payment was {_decided_text(locked)}.", code="decided")
        now = timezone.now()
        # Without row locks (SQLite) the conditional update decides who confirms.
        # The state moves once the payment exists (a confirmed report always names one).
        claimed = DirectPaymentReport.objects.filter(
            pk=locked.pk, state=DirectPaymentReport.State.REPORTED, decided_at__isnull=True
        ).update(decided_at=now, decided_by=_user(actor))
        if claimed != 1:
            locked.refresh_from_db()
            raise ServiceError(f"This payment was {_decided_text(locked)}.", code="decided")
        customer = locked.customer
        payment = payment_record(
            customer=customer,
            amount=locked.amount,
            method=Payment.Method.DIRECT,
            received_at=_received_at(locked),
            currency=locked.currency,
            reference=locked.reference,
            allocations=allocations,
            actor=actor,
        )
        kept = commission_of(locked.amount, locked.creditor.commission_rate, locked.currency)
        DirectPaymentReport.objects.filter(pk=locked.pk).update(
            state=DirectPaymentReport.State.CONFIRMED,
            payment=payment,
            commission_rate=kept.rate,
            commission=kept.fee,
        )
        locked.refresh_from_db()
        commission = report_commission(locked)
        currency = locked.currency
        money = format_money(locked.amount, currency)
        applied = list(payment.allocations.select_related("invoice").order_by("pk"))
        where = ", ".join(f"{a.invoice.number} ({format_money(a.amount, currency)})" for a in applied)
        activity_record(
            customer=customer,
            kind=Activity.Kind.PAYMENT,
            visibility=Activity.Visibility.CREDITOR,
            summary=f"Direct payment of {money} reported by {locked.creditor.name} confirmed",
            body=(f"Applied to {where}. " if where else "Kept as unapplied credit. ")
            + f"Agency commission {format_money(commission.fee, currency)} ({commission.rate_percent}).",
            actor=actor,
        )
        log_event(
            "openar.client.payment_confirmed",
            organization=customer.organization,
            obj=locked,
            actor=actor,
            data={
                "payment": payment.pk,
                "amount": str(locked.amount),
                "currency": currency,
                "commission_rate": str(commission.rate),
                "commission": str(commission.fee),
                "allocations": [[a.invoice.number, str(a.amount)] for a in applied],
            },
        )
        _tell_creditor(
            locked,
            f"Direct payment confirmed: {customer.name} ({customer.number}), {money}",
            f"The payment of {money} that {customer.name} made to you directly on "
            f"{_day(locked.received_on)} is confirmed and applied to the account"
            f"{': ' + where if where else ''}.\n"
            f"Our commission on it ({commission.rate_percent}) is {format_money(commission.fee, currency)}.",
        )
    return locked


def direct_payment_reject(
    *, report: DirectPaymentReport, reason: str, actor: User | None
) -> DirectPaymentReport:
    """Reject a reported payment, saying why (up to 500 characters; the creditor reads it).
    Nothing is recorded in the ledger. Raises ServiceError for a missing reason or a report
    already decided. In one transaction: the report rejected, a timeline entry for staff and
    the creditor, the audit event ``openar.client.payment_rejected``; the creditor is
    emailed once it commits."""
    text = (reason or "").strip()
    if not text:
        raise ServiceError("Say why the payment is rejected: the creditor reads it.", field="reason")
    if len(text) > REASON_MAX:
        raise ServiceError(f"Keep the reason under {REASON_MAX} characters.", field="reason")
    with transaction.atomic():
        locked = (
            DirectPaymentReport.objects.select_for_update(of=("self",))
            .select_related("customer__organization", "creditor", "decided_by")
            .get(pk=report.pk)
        )
        if locked.state != DirectPaymentReport.State.REPORTED or locked.decided_at is not None:
            raise ServiceError(f"This payment was {_decided_text(locked)}.", code="decided")
        claimed = DirectPaymentReport.objects.filter(
            pk=locked.pk, state=DirectPaymentReport.State.REPORTED, decided_at__isnull=True
        ).update(
            state=DirectPaymentReport.State.REJECTED,
            decided_at=timezone.now(),
            decided_by=_user(actor),
            rejection_reason=text,
        )
        if claimed != 1:
            locked.refresh_from_db()
            raise ServiceError(f"This payment was {_decided_text(locked)}.", code="decided")
        locked.refresh_from_db()
        customer = locked.customer
        money = format_money(locked.amount, locked.currency)
        activity_record(
            customer=customer,
            kind=Activity.Kind.PAYMENT,
            visibility=Activity.Visibility.CREDITOR,
            summary=f"Direct payment of {money} reported by {locked.creditor.name} rejected",
            body=f"Reason: {text}",
            actor=actor,
        )
        log_event(
            "openar.client.payment_rejected",
            organization=customer.organization,
            obj=locked,
            actor=actor,
            data={"amount": str(locked.amount), "currency": locked.currency, "reason": text},
        )
        _tell_creditor(
            locked,
            f"Direct payment not confirmed: {customer.name} ({customer.number}), {money}",
            f"The payment of {money} you reported for {customer.name} (received "
            f"{_day(locked.received_on)}) was not confirmed.\nReason: {text}\n\n"
            "If the payment was made, report it again with its details, or reply to your collector.",
        )
    return locked
