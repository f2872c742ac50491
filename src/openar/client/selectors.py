"""What a creditor client may read: the accounts its creditor placed with the agency, and of
each the entries of the timeline that are visible to it (never a staff-only one).

Every read starts from ``placed_accounts(creditor)``: another creditor's account of the same
agency is simply not in it, so its id answers 404 like an id of another organization (which
the request's tenant scope already hides).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Case,
    CharField,
    Exists,
    F,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from openar.billing.models import Document, Invoice
from openar.billing.selectors import clean_search
from openar.commitments.models import Plan, Promise
from openar.core.money import MoneyField
from openar.customers.models import Activity, Contact, Customer, Hold
from openar.customers.worklist import active_account_holds
from openar.disputes.models import Dispute
from openar.identity.models import User
from openar.notifications.models import Message, Thread
from openar.payments.models import Payment
from openar.tenants.models import Creditor, Membership, Role

# What a creditor client may read of a timeline: never ``INTERNAL``.
CLIENT_VISIBLE = (Activity.Visibility.CREDITOR, Activity.Visibility.CUSTOMER)

# An account's status, the first that applies, in this order.
STATUSES: dict[str, str] = {
    "on_hold": "On hold",
    "in_dispute": "In dispute",
    "plan": "Payment plan",
    "promise": "Promise to pay",
    "open": "Open",
    "paid": "Paid",
}

# Age: days since the oldest unpaid invoice fell due (``current``: nothing past due).
AGES: dict[str, str] = {
    "current": "Not past due",
    "d1_30": "1–30 days",
    "d31_60": "31–60 days",
    "d61_90": "61–90 days",
    "d90_plus": "Over 90 days",
}

SORTS: dict[str, tuple[str, str]] = {
    "-last_activity": ("Latest activity first", "-last_activity"),
    "-balance": ("Balance, largest first", "-balance"),
    "balance": ("Balance, smallest first", "balance"),
    "-age": ("Oldest past due first", "oldest_due"),
    "age": ("Newest past due first", "-oldest_due"),
    "-placed": ("Placed, newest first", "-placed_at"),
    "placed": ("Placed, oldest first", "placed_at"),
    "name": ("Name, A to Z", "name"),
    "-name": ("Name, Z to A", "-name"),
}
DEFAULT_SORT = "-last_activity"


def placed_accounts(creditor: Creditor) -> QuerySet[Customer]:
    """The accounts ``creditor`` placed (inside the request's organization scope)."""
    return Customer.objects.filter(creditor=creditor)


@dataclass(frozen=True)
class AccountFilters:
    """What the accounts list narrows to; empty values filter nothing."""

    search: str = ""
    status: str = ""
    age: str = ""
    collector: int | None = None
    balance_min: Decimal | None = None
    balance_max: Decimal | None = None
    sort: str = DEFAULT_SORT

    @property
    def active(self) -> bool:
        return bool(
            self.search
            or self.status
            or self.age
            or self.collector is not None
            or self.balance_min is not None
            or self.balance_max is not None
        )


def _amount(value: str | None, label: str, errors: list[str]) -> Decimal | None:
    text = (value or "").strip().replace(",", "").lstrip("$")
    if not text:
        return None
    try:
        amount = Decimal(text)
    except ArithmeticError:
        errors.append(f"{label}: enter an amount such as 250 or 1200.50.")
        return None
    if not amount.is_finite() or amount < 0 or amount > Decimal("1000000000000"):
        errors.append(f"{label}: enter an amount of zero or more.")
        return None
    return amount


def account_filters(data: dict[str, str]) -> tuple[AccountFilters, list[str]]:
    """The filters of the accounts list from the query string, and what was wrong with it
    (an unusable value filters nothing and is said, never guessed at)."""
    errors: list[str] = []
    status = data.get("status", "")
    if status and status not in STATUSES:
        errors.append("Choose a status from the list.")
        status = ""
    age = data.get("age", "")
    if age and age not in AGES:
        errors.append("Choose an age from the list.")
        age = ""
    collector: int | None = None
    raw_collector = data.get("collector", "")
    if raw_collector:
        if re.fullmatch(r"[0-9]{1,18}", raw_collector):
            collector = int(raw_collector)
        elif raw_collector == "none":
            collector = 0
        else:
            errors.append("Choose a collector from the list.")
    balance_min = _amount(data.get("min"), "Balance from", errors)
    balance_max = _amount(data.get("max"), "Balance up to", errors)
    if balance_min is not None and balance_max is not None and balance_min > balance_max:
        errors.append("The lowest balance is above the highest: nothing could match.")
        balance_min = balance_max = None
    sort = data.get("sort", DEFAULT_SORT)
    if sort not in SORTS:
        sort = DEFAULT_SORT
    return (
        AccountFilters(
            search=clean_search(data.get("q")),
            status=status,
            age=age,
            collector=collector,
            balance_min=balance_min,
            balance_max=balance_max,
            sort=sort,
        ),
        errors,
    )


def account_list(creditor: Creditor, *, today: datetime.date, filters: AccountFilters) -> QuerySet[Customer]:
    """The placed accounts with balance, past due, oldest past-due date, status and last
    visible activity, filtered and sorted in SQL: one query for a page of them (and one to
    count). Balance, past due and age count the invoices in the account's currency only (as
    the desk's lists do): amounts of different currencies are never added. The status "On
    hold" is an account-level hold in force; a hold on one invoice shows on the account's
    page, not here."""
    now = timezone.now()
    accounts = placed_accounts(creditor).select_related("assigned_collector")
    if filters.search:
        term = filters.search
        accounts = accounts.filter(
            Q(number__icontains=term)
            | Q(name__icontains=term)
            | Q(email__icontains=term)
            | Q(phone__icontains=term)
            | Exists(
                Contact.objects.filter(customer=OuterRef("pk")).filter(
                    Q(email__icontains=term) | Q(phone__icontains=term) | Q(name__icontains=term)
                )
            )
        )
    if filters.collector is not None:
        if filters.collector == 0:
            accounts = accounts.filter(assigned_collector__isnull=True)
        else:
            accounts = accounts.filter(assigned_collector_id=filters.collector)

    open_q = Q(invoices__open_amount__gt=0, invoices__currency=F("currency"))

    def open_sum(condition: Q) -> Coalesce:
        return Coalesce(
            Sum("invoices__open_amount", filter=condition), Value(Decimal(0)), output_field=MoneyField()
        )

    latest = (
        Activity.objects.filter(customer=OuterRef("pk"), visibility__in=CLIENT_VISIBLE)
        .order_by("-occurred_at", "-pk")
        .values("occurred_at")[:1]
    )
    accounts = accounts.annotate(
        balance=open_sum(open_q),
        past_due=open_sum(open_q & Q(invoices__due_date__lt=today)),
        oldest_due=Min("invoices__due_date", filter=open_q & Q(invoices__due_date__lt=today)),
        last_activity=Subquery(latest),
        on_hold=Exists(active_account_holds(now).filter(customer=OuterRef("pk"))),
        in_dispute=Exists(Dispute.objects.filter(customer=OuterRef("pk"), state__in=Dispute.OPEN_STATES)),
        on_plan=Exists(
            Plan.objects.filter(
                customer=OuterRef("pk"), state__in=(Plan.State.ACTIVE, Plan.State.PENDING_APPROVAL)
            )
        ),
        promised=Exists(Promise.objects.filter(customer=OuterRef("pk"), state=Promise.State.OPEN)),
    ).annotate(
        status=Case(
            When(on_hold=True, then=Value("on_hold")),
            When(in_dispute=True, then=Value("in_dispute")),
            When(on_plan=True, then=Value("plan")),
            When(promised=True, then=Value("promise")),
            When(balance__gt=0, then=Value("open")),
            default=Value("paid"),
            output_field=CharField(),
        ),
    )
    if filters.status:
        accounts = accounts.filter(status=filters.status)
    if filters.balance_min is not None:
        accounts = accounts.filter(balance__gte=filters.balance_min)
    if filters.balance_max is not None:
        accounts = accounts.filter(balance__lte=filters.balance_max)
    if filters.age:
        accounts = accounts.filter(_age_filter(filters.age, today))
    order = SORTS[filters.sort][1]
    descending = order.startswith("-")
    field = F(order.lstrip("-"))
    return accounts.order_by(field.desc(nulls_last=True) if descending else field.asc(nulls_last=True), "pk")


def _age_filter(age: str, today: datetime.date) -> Q:
    def days(n: int) -> datetime.date:
        return today - datetime.timedelta(days=n)

    return {
        "current": Q(oldest_due__isnull=True),
        "d1_30": Q(oldest_due__lte=days(1), oldest_due__gte=days(30)),
        "d31_60": Q(oldest_due__lte=days(31), oldest_due__gte=days(60)),
        "d61_90": Q(oldest_due__lte=days(61), oldest_due__gte=days(90)),
        "d90_plus": Q(oldest_due__lt=days(90)),
    }[age]


def collectors_of(creditor: Creditor) -> list[User]:
    """The collectors assigned to any of the creditor's accounts (the list's filter)."""
    ids = placed_accounts(creditor).exclude(assigned_collector=None).values("assigned_collector")
    return list(User.objects.filter(pk__in=Subquery(ids)).order_by("full_name", "email"))


# --- one account --------------------------------------------------------------------------------


def account_timeline(customer: Customer) -> QuerySet[Activity]:
    """Everything on the account's timeline that a creditor client may read, newest first."""
    return (
        Activity.objects.filter(customer=customer, visibility__in=CLIENT_VISIBLE)
        .select_related("actor")
        .order_by("-occurred_at", "-pk")
    )


def account_invoices(customer: Customer) -> QuerySet[Invoice]:
    return Invoice.objects.filter(customer=customer).order_by("-issue_date", "-pk")


def account_payments(customer: Customer) -> QuerySet[Payment]:
    return Payment.objects.filter(customer=customer).order_by("-received_at", "-pk")


def account_promises(customer: Customer) -> QuerySet[Promise]:
    return Promise.objects.filter(customer=customer).order_by("-created_at", "-pk")


def account_plans(customer: Customer) -> QuerySet[Plan]:
    return Plan.objects.filter(customer=customer).order_by("-created_at", "-pk")


def account_disputes(customer: Customer) -> QuerySet[Dispute]:
    return Dispute.objects.filter(customer=customer).select_related("invoice").order_by("-created_at", "-pk")


def account_holds(customer: Customer) -> QuerySet[Hold]:
    return (
        Hold.objects.filter(customer=customer)
        .select_related("invoice", "placed_by", "released_by")
        .order_by("-placed_at", "-pk")
    )


def account_documents(customer: Customer) -> QuerySet[Document]:
    """The documents the customer may see too: invoices, statements, delivery papers,
    contracts, letters. Staff-only files (a collector's memo) stay with staff."""
    return Document.objects.filter(customer=customer, visible_to_customer=True).select_related("invoice")


def creditor_documents(creditor: Creditor) -> QuerySet[Document]:
    """The customer-visible documents of every account the creditor placed."""
    return Document.objects.filter(customer__creditor=creditor, visible_to_customer=True)


def account_communications(customer: Customer) -> QuerySet[Message]:
    """Emails, texts, letters and portal messages exchanged with the customer that went out
    or came in (what was only planned, or skipped, is not a communication): channel,
    subject and date. The creditor's own conversation with the agency is listed apart."""
    done = (
        Message.State.SENT,
        Message.State.DELIVERED,
        Message.State.BOUNCED,
        Message.State.RECEIVED,
    )
    return (
        Message.objects.filter(customer=customer, state__in=done)
        .exclude(thread__audience=Thread.Audience.CREDITOR)
        .order_by(F("sent_at").desc(nulls_last=True), "-pk")
    )


def holds_releasable_by(creditor: Creditor) -> Q:
    """A creditor client may release the holds that its creditor's users placed; a hold
    placed by the agency's staff is theirs to release."""
    placers = Membership.objects.filter(role=Role.CREDITOR, creditor=creditor).values("user")
    return Q(placed_by__in=Subquery(placers))
