"""The collector's worklist: which accounts to work now, in which order, and why.

``worklist(...)`` is one query: every customer of the active scope, annotated with what is
due on it (correlated subqueries, each served by an index), filtered to the accounts with
something to do, scored and ordered by the score. Pages slice it; ``worklist_rows`` turns
the slice into rows with their reasons, without another query per row.

The score is a sum of points, each shown as a reason on the row:

- past-due amount (in the account's currency): 5 points from the first cent, 10 from 100,
  15 from 500, 20 from 1,000, 25 from 5,000, 30 from 10,000;
- age of the oldest past-due invoice: 5 points from 1 day late, 10 from 31, 20 from 61,
  30 from 91;
- broken promises and missed installments (open tasks): 25 points each;
- new disputes (open and not yet in review, or opened in the last ``NEW_DISPUTE_DAYS``
  days): 15 points each;
- a callback due (an open callback task due today or earlier, or the latest call attempt's
  next action date reached with no callback task since): 20 points;
- unread creditor notes: 10 points each;
- a payment plan waiting for approval (open task due): 10 points.

An account under an active account-level hold (``Hold`` without an invoice, neither
released nor expired) is not on the worklist; ``on_hold_count`` counts those left off.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    DateField,
    Exists,
    F,
    IntegerField,
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

from openar.billing.models import Invoice
from openar.core.money import MoneyField, quantize
from openar.customers.models import Activity, Customer, Hold, Task
from openar.disputes.models import Dispute

NEW_DISPUTE_DAYS = 7

AMOUNT_POINTS = (
    (Decimal(10000), 30),
    (Decimal(5000), 25),
    (Decimal(1000), 20),
    (Decimal(500), 15),
    (Decimal(100), 10),
)
AGE_POINTS = ((91, 30), (61, 20), (31, 10), (1, 5))
BROKEN_PROMISE_POINTS = 25
NEW_DISPUTE_POINTS = 15
CALLBACK_POINTS = 20
CREDITOR_NOTE_POINTS = 10
PLAN_APPROVAL_POINTS = 10

BROKEN_KINDS = (Task.Kind.BROKEN_PROMISE, Task.Kind.MISSED_INSTALLMENT)

# The reasons a row can be on the worklist (the "reason" filter), in the order rows show them.
REASONS: tuple[tuple[str, str], ...] = (
    ("past_due", "Past due"),
    ("broken_promise", "Broken promise"),
    ("new_dispute", "New dispute"),
    ("callback", "Callback due"),
    ("creditor_note", "Creditor note unread"),
    ("plan_approval", "Plan to approve"),
)
REASON_KEYS = frozenset(key for key, _ in REASONS)


@dataclass(frozen=True)
class WorklistFilter:
    """Whose accounts (``collector``: a user id; None with ``unassigned`` False: everyone's),
    and optionally one creditor, one segment, one reason."""

    collector_id: int | None = None
    unassigned: bool = False
    creditor_id: int | None = None
    segment: str | None = None
    reason: str = ""


def _count(queryset: QuerySet[Any]) -> Subquery:
    return Subquery(
        queryset.order_by().values("customer_id").annotate(n=Count("pk")).values("n")[:1],
        output_field=IntegerField(),
    )


def active_account_holds(now: datetime.datetime) -> QuerySet[Hold]:
    """The account-level holds in force at ``now`` (not the ones on one invoice)."""
    return Hold.objects.filter(invoice__isnull=True, released_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def _annotated(
    customers: QuerySet[Customer], *, today: datetime.date, now: datetime.datetime
) -> QuerySet[Any]:
    past_due_invoices = Invoice.objects.filter(
        customer=OuterRef("pk"), currency=OuterRef("currency"), open_amount__gt=0, due_date__lt=today
    ).order_by()
    open_tasks = Task.objects.filter(customer=OuterRef("pk"), done_at__isnull=True, due_date__lte=today)
    latest_call = Activity.objects.filter(customer=OuterRef("pk"), kind=Activity.Kind.CALL).order_by(
        "-occurred_at", "-pk"
    )
    new_disputes = Dispute.objects.filter(customer=OuterRef("pk"), state__in=Dispute.OPEN_STATES).filter(
        Q(state=Dispute.State.OPEN) | Q(created_at__gte=now - datetime.timedelta(days=NEW_DISPUTE_DAYS))
    )
    return customers.annotate(
        past_due=Coalesce(
            Subquery(
                past_due_invoices.values("customer_id").annotate(s=Sum("open_amount")).values("s")[:1],
                output_field=MoneyField(),
            ),
            Value(Decimal(0)),
            output_field=MoneyField(),
        ),
        oldest_due=Subquery(
            past_due_invoices.values("customer_id").annotate(d=Min("due_date")).values("d")[:1],
            output_field=DateField(),
        ),
        broken_count=Coalesce(_count(open_tasks.filter(kind__in=BROKEN_KINDS)), 0),
        approval_count=Coalesce(_count(open_tasks.filter(kind=Task.Kind.PLAN_APPROVAL)), 0),
        other_task_count=Coalesce(
            _count(open_tasks.exclude(kind__in=[*BROKEN_KINDS, Task.Kind.PLAN_APPROVAL, Task.Kind.CALLBACK])),
            0,
        ),
        dispute_count=Coalesce(_count(new_disputes), 0),
        note_count=Coalesce(
            _count(Activity.objects.filter(customer=OuterRef("pk"), staff_unread=True)),
            0,
        ),
        callback_task_due=Exists(open_tasks.filter(kind=Task.Kind.CALLBACK)),
        call_next_date=Subquery(latest_call.values("next_action_date")[:1], output_field=DateField()),
        call_at=Subquery(latest_call.values("occurred_at")[:1]),
        on_hold=Exists(active_account_holds(now).filter(customer=OuterRef("pk"))),
    ).annotate(
        # A call attempt logged elsewhere (an import, the creditor's door) asks for a call back
        # without a task; once a callback task exists since that call, the task decides.
        callback_from_call=Case(
            When(
                Q(call_next_date__lte=today)
                & ~Exists(
                    Task.objects.filter(
                        customer=OuterRef("pk"), kind=Task.Kind.CALLBACK, created_at__gte=OuterRef("call_at")
                    )
                ),
                then=Value(1),
            ),
            default=Value(0),
            output_field=IntegerField(),
        ),
    )


def _amount_points() -> Case:
    return Case(
        *[When(past_due__gte=limit, then=Value(points)) for limit, points in AMOUNT_POINTS],
        When(past_due__gt=0, then=Value(5)),
        default=Value(0),
        output_field=IntegerField(),
    )


def worklist(
    *, today: datetime.date, now: datetime.datetime, filters: WorklistFilter = WorklistFilter()
) -> QuerySet[Customer]:
    """The accounts to work now (the active tenant scope), best first, each annotated with
    ``score`` and what makes it (see the module's docstring)."""
    customers = _selected(Customer.objects.all(), filters)
    ages = [(today - datetime.timedelta(days=days), points) for days, points in AGE_POINTS]
    queryset = (
        _annotated(customers, today=today, now=now)
        .filter(on_hold=False)
        .annotate(
            callback_due=Case(
                When(Q(callback_task_due=True) | Q(callback_from_call=1), then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            ),
            amount_points=_amount_points(),
            age_points=Case(
                *[When(oldest_due__lte=limit, then=Value(points)) for limit, points in ages],
                default=Value(0),
                output_field=IntegerField(),
            ),
        )
        .annotate(
            score=F("amount_points")
            + F("age_points")
            + F("broken_count") * BROKEN_PROMISE_POINTS
            + F("dispute_count") * NEW_DISPUTE_POINTS
            + F("callback_due") * CALLBACK_POINTS
            + F("note_count") * CREDITOR_NOTE_POINTS
            + F("approval_count") * PLAN_APPROVAL_POINTS
        )
        .filter(
            Q(past_due__gt=0)
            | Q(broken_count__gt=0)
            | Q(approval_count__gt=0)
            | Q(other_task_count__gt=0)
            | Q(dispute_count__gt=0)
            | Q(note_count__gt=0)
            | Q(callback_due=1)
        )
    )
    reason_filters = {
        "past_due": Q(past_due__gt=0),
        "broken_promise": Q(broken_count__gt=0),
        "new_dispute": Q(dispute_count__gt=0),
        "callback": Q(callback_due=1),
        "creditor_note": Q(note_count__gt=0),
        "plan_approval": Q(approval_count__gt=0),
    }
    if filters.reason in reason_filters:
        queryset = queryset.filter(reason_filters[filters.reason])
    return queryset.select_related("creditor", "assigned_collector").order_by(
        F("score").desc(), F("past_due").desc(), F("oldest_due").asc(nulls_last=True), "pk"
    )


def _selected(customers: QuerySet[Customer], filters: WorklistFilter) -> QuerySet[Customer]:
    if filters.unassigned:
        customers = customers.filter(assigned_collector__isnull=True)
    elif filters.collector_id is not None:
        customers = customers.filter(assigned_collector_id=filters.collector_id)
    if filters.creditor_id is not None:
        customers = customers.filter(creditor_id=filters.creditor_id)
    if filters.segment is not None:
        customers = customers.filter(segment=filters.segment)
    return customers


def on_hold_count(*, now: datetime.datetime, filters: WorklistFilter = WorklistFilter()) -> int:
    """How many accounts of the same selection are kept off the worklist by a hold."""
    held = Exists(active_account_holds(now).filter(customer=OuterRef("pk")))
    return _selected(Customer.objects.filter(held), filters).count()


HELD_SHOWN = 100


def on_hold_accounts(*, now: datetime.datetime, filters: WorklistFilter = WorklistFilter()) -> list[Hold]:
    """The account-level holds in force that keep accounts of the selection off the worklist
    (the first ``HELD_SHOWN``, the ones ending soonest first)."""
    customers = _selected(Customer.objects.all(), filters)
    return list(
        active_account_holds(now)
        .filter(customer__in=customers)
        .select_related("customer", "placed_by")
        .order_by(F("expires_at").asc(nulls_last=True), "pk")[:HELD_SHOWN]
    )


@dataclass(frozen=True)
class Reason:
    key: str
    label: str
    points: int


@dataclass
class WorklistRow:
    customer: Customer
    score: int
    past_due: Decimal
    oldest_due: datetime.date | None
    days_late: int
    reasons: list[Reason] = field(default_factory=list)

    @property
    def reason_keys(self) -> list[str]:
        return [reason.key for reason in self.reasons]


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def worklist_row(customer: Customer, today: datetime.date) -> WorklistRow:
    """The row of one customer of ``worklist(...)`` (its annotations), with its reasons."""
    c = customer
    past_due = quantize(c.past_due or 0, c.currency)  # type: ignore[attr-defined]
    oldest: datetime.date | None = c.oldest_due  # type: ignore[attr-defined]
    days_late = (today - oldest).days if oldest is not None else 0
    reasons: list[Reason] = []
    amount_points: int = c.amount_points  # type: ignore[attr-defined]
    age_points: int = c.age_points  # type: ignore[attr-defined]
    if past_due > 0:
        reasons.append(Reason("past_due", "Past due", amount_points))
        reasons.append(Reason("age", f"oldest {_plural(days_late, 'day', 'days')} late", age_points))
    broken: int = c.broken_count  # type: ignore[attr-defined]
    if broken:
        label = _plural(broken, "broken promise", "broken promises")
        reasons.append(Reason("broken_promise", label, broken * BROKEN_PROMISE_POINTS))
    disputes: int = c.dispute_count  # type: ignore[attr-defined]
    if disputes:
        label = _plural(disputes, "new dispute", "new disputes")
        reasons.append(Reason("new_dispute", label, disputes * NEW_DISPUTE_POINTS))
    if c.callback_due:  # type: ignore[attr-defined]
        reasons.append(Reason("callback", "Callback due", CALLBACK_POINTS))
    notes: int = c.note_count  # type: ignore[attr-defined]
    if notes:
        label = _plural(notes, "creditor note unread", "creditor notes unread")
        reasons.append(Reason("creditor_note", label, notes * CREDITOR_NOTE_POINTS))
    approvals: int = c.approval_count  # type: ignore[attr-defined]
    if approvals:
        label = _plural(approvals, "plan to approve", "plans to approve")
        reasons.append(Reason("plan_approval", label, approvals * PLAN_APPROVAL_POINTS))
    return WorklistRow(
        customer=c,
        score=c.score,  # type: ignore[attr-defined]
        past_due=past_due,
        oldest_due=oldest,
        days_late=days_late,
        reasons=reasons,
    )


# --- callbacks ----------------------------------------------------------------------------------


@dataclass
class Callbacks:
    overdue: list[Task]
    today: list[Task]
    upcoming: list[Task]

    @property
    def due_count(self) -> int:
        return len(self.overdue) + len(self.today)


CALLBACKS_SHOWN = 100


def callbacks(
    *, today: datetime.date, filters: WorklistFilter = WorklistFilter(), now: datetime.datetime
) -> Callbacks:
    """Open callback tasks (the active scope), for the same selection of collectors as the
    worklist (a callback's own assignee, else its account's collector): overdue, due today,
    upcoming (the next 30 days). Callbacks of accounts on hold are left out, like their
    accounts."""
    tasks = Task.objects.filter(kind=Task.Kind.CALLBACK, done_at__isnull=True).exclude(
        Exists(active_account_holds(now).filter(customer=OuterRef("customer_id")))
    )
    if filters.unassigned:
        tasks = tasks.filter(assigned_to__isnull=True, customer__assigned_collector__isnull=True)
    elif filters.collector_id is not None:
        tasks = tasks.filter(
            Q(assigned_to_id=filters.collector_id)
            | Q(assigned_to__isnull=True, customer__assigned_collector_id=filters.collector_id)
        )
    if filters.creditor_id is not None:
        tasks = tasks.filter(customer__creditor_id=filters.creditor_id)
    if filters.segment is not None:
        tasks = tasks.filter(customer__segment=filters.segment)
    horizon = today + datetime.timedelta(days=30)
    rows = list(
        tasks.filter(due_date__lte=horizon)
        .select_related("customer", "assigned_to")
        .order_by("due_date", "pk")[: CALLBACKS_SHOWN * 3]
    )
    return Callbacks(
        overdue=[t for t in rows if t.due_date < today][:CALLBACKS_SHOWN],
        today=[t for t in rows if t.due_date == today][:CALLBACKS_SHOWN],
        upcoming=[t for t in rows if t.due_date > today][:CALLBACKS_SHOWN],
    )
