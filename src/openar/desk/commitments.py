"""Promises to pay and payment plans at the desk.

Reading (``desk.view``):

- the customer page's card "Promises and plans" (``customer_card``, added to the page by
  ``views.customer_detail``): the open and recent promises, the open plan with its health,
  progress and schedule, the plans before it;
- ``/desk/promises/``: the promises due today, kept and broken (and partly kept) in the
  last 30 days, and the promise-kept rate;
- ``/desk/plans/``: the plans waiting for approval, the active plans behind, and the open
  tasks of the worklist (the signed-in person's first, then everyone's).

Acting (``desk.collect``): record or cancel a promise; propose a plan (chosen, then quoted
and reviewed: the schedule and the exact terms, which the customer accepts, then created);
approve, change or cancel a plan; mark a task done. Each action is a form posted to a URL
of its own, which calls one service of ``openar.commitments.services`` (or
``customers.services.task_done``). A refusal shows the form again on a page of its own, with
the service's message next to the field it names (``ServiceError.field``) and everything
that was typed; a success goes back to the customer page with a message. The promise and
plan forms carry a one-time token (``form_token``): sent twice, they make one promise or
plan.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from openar.billing.models import Invoice
from openar.billing.presenters import short_date
from openar.commitments.models import CommitmentPolicy, Frequency, Installment, Plan, Promise
from openar.commitments.selectors import (
    DESK_WINDOW_DAYS,
    customer_plans,
    customer_promises,
    promises_for_desk,
)
from openar.commitments.services import (
    Quote,
    commitment_policy,
    plan_approve,
    plan_cancel,
    plan_change,
    plan_create,
    plan_health,
    plan_progress,
    plan_propose,
    plan_quote,
    promise_cancel,
    promise_create,
    promise_progress,
)
from openar.core.errors import ServiceError
from openar.core.http import client_ip
from openar.core.money import format_money, parse_amount
from openar.customers.models import Contact, Customer, Task
from openar.customers.services import task_done
from openar.tenants.access import actor_of, require, staff_required
from openar.tenants.models import Organization
from openar.tenants.permissions import Perm

collector_required = require(Perm.DESK_COLLECT)

T = TypeVar("T")

RECENT_PROMISES = 5  # resolved or cancelled promises shown under the open ones
PAST_PLANS = 3  # ended plans shown under the open one
LIST_LIMIT = 100  # rows per table of the promises and plans pages
TEXT_LIMIT = 20_000  # what is kept of a typed text (the services say how long it may be)

PROMISE_FIELDS = ("amount", "promised_date", "invoices", "note", "contact")
PLAN_FIELDS = ("invoices", "down_payment", "frequency", "installment_count", "first_date")
CHANGE_FIELDS = ("frequency", "installment_count", "first_date")
FREQUENCY_LABELS: dict[str, str] = {
    Frequency.WEEKLY: "Every week",
    Frequency.BIWEEKLY: "Every two weeks",
    Frequency.MONTHLY: "Every month",
}
FREQUENCY_WORDS: dict[str, str] = {Frequency.WEEKLY: "weekly", Frequency.MONTHLY: "monthly"}

PROMISE_BADGES: dict[str, str] = {
    Promise.State.OPEN: "badge--open",
    Promise.State.KEPT: "badge--paid",
    Promise.State.PARTLY_KEPT: "badge--partial",
    Promise.State.BROKEN: "badge--late",
    Promise.State.CANCELLED: "",
}
PLAN_BADGES: dict[str, str] = {
    "on track": "badge--paid",
    "behind": "badge--late",
    "pending approval": "badge--partial",
    "completed": "badge--paid",
    "broken": "badge--late",
    "cancelled": "",
}
INSTALLMENT_BADGES: dict[str, str] = {
    Installment.State.SCHEDULED: "",
    Installment.State.PAID: "badge--paid",
    Installment.State.LATE: "badge--late",
    Installment.State.MISSED: "badge--late",
}
# The promises the kept rate counts (``promise_kept_rate``): resolved, partly kept as not kept.
RESOLVED = (Promise.State.KEPT, Promise.State.PARTLY_KEPT, Promise.State.BROKEN)


def _organization(request: HttpRequest) -> Organization:
    organization: Organization = request.organization  # type: ignore[attr-defined]
    return organization


def _customer(customer_id: int) -> Customer:
    return get_object_or_404(Customer.objects.select_related("organization"), pk=customer_id)


def _plan(customer: Customer, plan_id: int) -> Plan:
    return get_object_or_404(
        Plan.objects.select_related(
            "customer__organization", "consent_contact", "created_by"
        ).prefetch_related("installments", "invoices"),
        pk=plan_id,
        customer=customer,
    )


def _back(request: HttpRequest, customer: Customer) -> HttpResponseRedirect:
    """Where an action returns: the plans page when it was sent from there, else the
    customer page, at its card."""
    if request.POST.get("back") == "plans":
        return HttpResponseRedirect(reverse("desk:plans"))
    return HttpResponseRedirect(reverse("desk:customer", args=[customer.pk]) + "#commitments")


def _token() -> str:
    return secrets.token_hex(16)


# --- what a form shows --------------------------------------------------------------------------


@dataclass
class Form:
    """A form as the page shows it: the values as typed, one message per field ("form":
    about the whole form), and the invoices ticked."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    chosen: set[int] = field(default_factory=set)

    def refuse(self, exc: ServiceError, fields: Iterable[str]) -> None:
        name = exc.field if exc.field in set(fields) else "form"
        self.errors.setdefault(name or "form", exc.message)

    def read(self, parse: Callable[[], T]) -> T | None:
        """``parse()``, or None with its message kept next to its field."""
        try:
            return parse()
        except ServiceError as exc:
            self.errors.setdefault(exc.field or "form", exc.message)
            return None


def _posted(data: QueryDict, names: Iterable[str]) -> dict[str, str]:
    return {name: str(data.get(name, ""))[:TEXT_LIMIT] for name in names}


def _amount(text: str, currency: str, name: str, *, blank_is_zero: bool = False) -> Decimal:
    if blank_is_zero and not text.strip():
        return Decimal(0)
    try:
        return parse_amount(text, currency)
    except ValueError as exc:
        raise ServiceError(str(exc), field=name) from None


def _date(text: str, name: str) -> datetime.date:
    if not text.strip():
        raise ServiceError("Enter a date.", field=name)
    try:
        return datetime.date.fromisoformat(text.strip())
    except ValueError:
        raise ServiceError("Enter the date as a date, e.g. 2026-12-31.", field=name) from None


def _count(text: str) -> int:
    if not text.strip().isdigit():
        raise ServiceError("Enter how many installments, in digits.", field="installment_count")
    return int(text.strip())


def _contact(customer: Customer, text: str) -> Contact | None:
    if not text:
        return None
    found = Contact.objects.filter(customer=customer, pk=int(text)).first() if text.isdigit() else None
    if found is None:
        raise ServiceError("Choose one of the account's contacts.", field="contact")
    return found


def _open_invoices(customer: Customer) -> list[Invoice]:
    """The invoices a promise or a plan may cover: open, in the account's currency."""
    return list(
        Invoice.objects.filter(customer=customer, currency=customer.currency, open_amount__gt=0).order_by(
            "due_date", "pk"
        )
    )


def _chosen(data: QueryDict, invoices: list[Invoice]) -> list[Invoice]:
    """The invoices ticked, among those offered; one that is not offered any more (paid
    meanwhile, or never the account's) is refused rather than dropped: dropping it would
    change what the promise covers."""
    posted = [str(v) for v in data.getlist("invoices")]
    wanted = {int(v) for v in posted if v.isdigit()}
    if not all(v.isdigit() for v in posted) or wanted - {invoice.pk for invoice in invoices}:
        raise ServiceError(
            "One of the invoices chosen is no longer open on this account: choose again.", field="invoices"
        )
    return [invoice for invoice in invoices if invoice.pk in wanted]


def _invoice_rows(invoices: list[Invoice], chosen: set[int], today: datetime.date) -> list[dict[str, Any]]:
    return [
        {
            "id": invoice.pk,
            "number": invoice.number,
            "due": short_date(invoice.due_date),
            "late": invoice.due_date < today,
            "open": format_money(invoice.open_amount, invoice.currency),
            "checked": invoice.pk in chosen,
        }
        for invoice in invoices
    ]


def _frequencies(policy: CommitmentPolicy) -> list[tuple[str, str]]:
    allowed = policy.plan_frequencies or []
    return [(value, FREQUENCY_LABELS[value]) for value in Frequency.values if value in allowed]


def _form_context(
    customer: Customer,
    form: Form,
    *,
    prefix: str,
    policy: CommitmentPolicy | None = None,
    invoices: list[Invoice] | None = None,
    contacts: list[Contact] | None = None,
) -> dict[str, Any]:
    """What the promise and plan form partials need (``policy``, ``invoices`` and
    ``contacts``: when the caller has them already)."""
    organization = customer.organization
    today = organization.today()
    policy = policy or commitment_policy(organization)
    invoices = _open_invoices(customer) if invoices is None else invoices
    if contacts is None:
        contacts = list(customer.contacts.order_by("-is_primary", "name", "pk"))
    return {
        "form": form,
        "prefix": prefix,
        "invoice_rows": _invoice_rows(invoices, form.chosen, today),
        "contacts": contacts,
        "frequencies": _frequencies(policy),
        "today": today.isoformat(),
        "promise_latest": (today + datetime.timedelta(days=policy.promise_max_days)).isoformat(),
        "promise_max_days": policy.promise_max_days,
        "max_installments": policy.plan_max_installments,
        "currency": customer.currency,
    }


def _blank_promise() -> Form:
    return Form(values={"amount": "", "promised_date": "", "note": "", "contact": "", "form_token": _token()})


def _blank_plan(customer: Customer, policy: CommitmentPolicy | None = None) -> Form:
    policy = policy or commitment_policy(customer.organization)
    allowed = [value for value, _ in _frequencies(policy)]
    frequency = Frequency.MONTHLY if Frequency.MONTHLY in allowed else (allowed[0] if allowed else "")
    first = customer.organization.today() + datetime.timedelta(days=7)
    return Form(
        values={
            "down_payment": "",
            "frequency": frequency,
            "installment_count": str(min(3, policy.plan_max_installments)),
            "first_date": first.isoformat(),
            "contact": "",
            "form_token": _token(),
        }
    )


# --- the customer page's card -------------------------------------------------------------------


def _promise_row(promise: Promise, *, progress: bool) -> dict[str, Any]:
    currency = promise.currency
    row: dict[str, Any] = {
        "promise": promise,
        "amount": format_money(promise.amount, currency),
        "date": short_date(promise.promised_date),
        "invoices": [invoice.number for invoice in _by_due_date(promise.invoices.all())],
        "badge": PROMISE_BADGES.get(promise.state, ""),
        "state": promise.get_state_display(),
        "paid": "",
    }
    if promise.state == Promise.State.OPEN:
        if progress:
            so_far = promise_progress(promise)
            row["paid"] = format_money(so_far, currency) if so_far > 0 else ""
    elif promise.state != Promise.State.CANCELLED:
        row["paid"] = format_money(promise.paid_amount, currency)
    return row


def _plan_row(plan: Plan) -> dict[str, Any]:
    """One plan with its health, what was paid toward it and its schedule."""
    currency = plan.currency
    health = plan_health(plan)
    progress = plan_progress(plan)
    count = plan.installment_count
    installments = [
        {
            "label": "Down payment" if item.number == 0 else f"Installment {item.number} of {count}",
            "due": short_date(item.due_date),
            "amount": format_money(item.amount, currency),
            "state": item.get_state_display(),
            "badge": INSTALLMENT_BADGES.get(item.state, ""),
        }
        for item in sorted(plan.installments.all(), key=lambda item: item.number)
    ]
    return {
        "plan": plan,
        "health": health,
        "health_badge": PLAN_BADGES.get(health, ""),
        "total": format_money(plan.total, currency),
        "paid": format_money(min(progress, plan.total), currency),
        "left": format_money(max(plan.total - progress, Decimal(0)), currency),
        "progress_value": str(min(progress, plan.total)),
        "progress_max": str(plan.total),
        "describe": _describe(plan),
        "invoices": [invoice.number for invoice in _by_due_date(plan.invoices.all())],
        "installments": installments,
        "first_date": short_date(plan.first_date),
    }


def _installments(count: int, frequency: str) -> str:
    """ "4 monthly installments", "2 installments every two weeks" """
    plural = "s" if count != 1 else ""
    if frequency == Frequency.BIWEEKLY:
        return f"{count} installment{plural} every two weeks"
    return f"{count} {FREQUENCY_WORDS.get(frequency, frequency)} installment{plural}"


def _describe(plan: Plan | Quote) -> str:
    """ "a down payment of $100.00, then 4 monthly installments" """
    text = _installments(plan.installment_count, plan.frequency)
    if plan.down_payment > 0:
        return f"a down payment of {format_money(plan.down_payment, plan.currency)}, then {text}"
    return text


def _change_form(plan: Plan) -> Form:
    """The plan's schedule as it stands, as the change form starts from it."""
    today = plan.customer.organization.today()
    unpaid = sorted(
        (item for item in plan.installments.all() if item.state != Installment.State.PAID),
        key=lambda item: item.number,
    )
    first = max(unpaid[0].due_date, today) if unpaid else today
    return Form(
        values={
            "frequency": plan.frequency,
            "installment_count": str(len(unpaid) or 1),
            "first_date": first.isoformat(),
        }
    )


def customer_card(customer: Customer) -> dict[str, Any]:
    """The context of the customer page's "Promises and plans" card
    (``desk/_commitments_card.html``)."""
    policy = commitment_policy(customer.organization)
    shared: dict[str, Any] = {
        "policy": policy,
        "invoices": _open_invoices(customer),
        "contacts": list(customer.contacts.order_by("-is_primary", "name", "pk")),
    }
    promises = customer_promises(customer).select_related("created_by", "contact")
    open_ = [_promise_row(p, progress=True) for p in promises.filter(state=Promise.State.OPEN)]
    recent = [
        _promise_row(p, progress=False) for p in promises.exclude(state=Promise.State.OPEN)[:RECENT_PROMISES]
    ]
    plans = customer_plans(customer).select_related("customer__organization", "created_by", "consent_contact")
    current = plans.filter(state__in=Plan.OPEN_STATES).first()
    past = [
        {
            "plan": plan,
            "total": format_money(plan.total, plan.currency),
            "describe": _describe(plan),
            "badge": PLAN_BADGES.get(str(plan.state), ""),
        }
        for plan in plans.exclude(state__in=Plan.OPEN_STATES)[:PAST_PLANS]
    ]
    return {
        "promises": open_ + recent,
        "plan": _plan_row(current) if current is not None else None,
        "past_plans": past,
        "change_form": _change_form(current) if current is not None else None,
        "promise_form": _form_context(customer, _blank_promise(), prefix="promise", **shared),
        "plan_form": _form_context(customer, _blank_plan(customer, policy), prefix="plan", **shared),
    }


# --- promises -----------------------------------------------------------------------------------


def _promise_page(request: HttpRequest, customer: Customer, form: Form, *, status: int = 200) -> HttpResponse:
    return render(
        request,
        "desk/promise_new.html",
        {"customer": customer, "f": _form_context(customer, form, prefix="promise"), "nav": "customers"},
        status=status,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@collector_required
def promise_new(request: HttpRequest, customer_id: int) -> HttpResponse:
    """Record the customer's promise (made by phone, by email): amount, date, the invoices it
    covers (none: the whole account), who promised, a note for staff."""
    customer = _customer(customer_id)
    if request.method != "POST":
        return _promise_page(request, customer, _blank_promise())
    form = Form(values=_posted(request.POST, ("amount", "promised_date", "note", "contact", "form_token")))
    form.chosen = {int(v) for v in request.POST.getlist("invoices") if str(v).isdigit()}
    values = form.values
    chosen = form.read(lambda: _chosen(request.POST, _open_invoices(customer)))
    amount = form.read(lambda: _amount(values["amount"], customer.currency, "amount"))
    day = form.read(lambda: _date(values["promised_date"], "promised_date"))
    contact = form.read(lambda: _contact(customer, values["contact"]))
    if not form.errors and chosen is not None and amount is not None and day is not None:
        try:
            promise = promise_create(
                customer=customer,
                amount=amount,
                promised_date=day,
                invoices=chosen,
                note=values["note"],
                contact=contact,
                actor=actor_of(request),
                source="desk",
                form_token=values["form_token"],
            )
        except ServiceError as exc:
            form.refuse(exc, PROMISE_FIELDS)
        else:
            messages.success(
                request,
                f"Promise recorded: {format_money(promise.amount, promise.currency)} by "
                f"{short_date(promise.promised_date)}. Reminders about what it covers pause until then.",
            )
            return _back(request, customer)
    return _promise_page(request, customer, form, status=400)


@require_http_methods(["GET", "HEAD", "POST"])
@collector_required
def promise_cancel_view(request: HttpRequest, customer_id: int, promise_id: int) -> HttpResponse:
    customer = _customer(customer_id)
    promise = get_object_or_404(
        Promise.objects.select_related("customer__organization", "created_by").prefetch_related("invoices"),
        pk=promise_id,
        customer=customer,
    )
    form = Form(values={"reason": ""})
    if request.method == "POST":
        form.values = _posted(request.POST, ("reason",))
        try:
            promise_cancel(promise=promise, actor=actor_of(request), reason=form.values["reason"])
        except ServiceError as exc:
            form.refuse(exc, ("reason",))
        else:
            messages.success(
                request,
                f"The promise of {format_money(promise.amount, promise.currency)} is cancelled: reminders "
                "resume on what it covered, and the customer is told.",
            )
            return _back(request, customer)
    return render(
        request,
        "desk/commitment_cancel.html",
        {
            "customer": customer,
            "what": "promise",
            "row": _promise_row(promise, progress=promise.state == Promise.State.OPEN),
            "can_cancel": promise.state == Promise.State.OPEN,
            "form": form,
            "action": reverse("desk:promise_cancel", args=[customer.pk, promise.pk]),
            "nav": "customers",
        },
        status=400 if form.errors else 200,
    )


# --- plans --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PlanInput:
    invoices: list[Invoice]
    down_payment: Decimal
    frequency: str
    installment_count: int
    first_date: datetime.date

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "invoices": self.invoices,
            "down_payment": self.down_payment,
            "frequency": self.frequency,
            "installment_count": self.installment_count,
            "first_date": self.first_date,
        }


def _read_plan(request: HttpRequest, customer: Customer, form: Form) -> _PlanInput | None:
    values = form.values
    chosen = form.read(lambda: _chosen(request.POST, _open_invoices(customer)))
    down = form.read(
        lambda: _amount(values["down_payment"], customer.currency, "down_payment", blank_is_zero=True)
    )
    count = form.read(lambda: _count(values["installment_count"]))
    first = form.read(lambda: _date(values["first_date"], "first_date"))
    if form.errors or chosen is None or down is None or count is None or first is None:
        return None
    return _PlanInput(chosen, down, values["frequency"], count, first)


def _plan_page(
    request: HttpRequest, customer: Customer, form: Form, *, quote: Quote | None = None, status: int = 200
) -> HttpResponse:
    context: dict[str, Any] = {
        "customer": customer,
        "f": _form_context(customer, form, prefix="plan"),
        "existing": customer_plans(customer).filter(state__in=Plan.OPEN_STATES).first(),
        "nav": "customers",
    }
    if quote is not None:
        currency = quote.currency
        policy = commitment_policy(customer.organization)
        context["quote"] = {
            "total": format_money(quote.total, currency),
            "describe": _describe(quote),
            "needs_approval": quote.needs_approval,
            "threshold": format_money(policy.plan_approval_above, policy.currency)
            if policy.plan_approval_above is not None
            else "",
            "invoices": list(quote.invoice_numbers),
            "invoice_ids": list(quote.invoice_ids),
            "terms": quote.terms,
            "schedule": [
                {
                    "label": "Down payment"
                    if item.number == 0
                    else f"Installment {item.number} of {quote.installment_count}",
                    "due": short_date(item.due_date),
                    "amount": format_money(item.amount, currency),
                }
                for item in quote.installments
            ],
        }
    return render(request, "desk/plan_new.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@collector_required
def plan_new(request: HttpRequest, customer_id: int) -> HttpResponse:
    """Propose a payment plan in two steps: the arrangement (invoices, down payment, how
    often, how many, from when) is quoted (``step=review``): the page shows the schedule and
    the terms; once the customer has accepted them (on the phone), ``step=confirm`` creates
    the plan with the terms shown. ``step=edit`` goes back to the arrangement."""
    customer = _customer(customer_id)
    if request.method != "POST":
        return _plan_page(request, customer, _blank_plan(customer))
    step = request.POST.get("step", "review")
    form = Form(values=_posted(request.POST, (*PLAN_FIELDS[1:], "contact", "propose_contact", "form_token")))
    form.chosen = {int(v) for v in request.POST.getlist("invoices") if str(v).isdigit()}
    if step == "edit":
        return _plan_page(request, customer, form)
    arrangement = _read_plan(request, customer, form)
    if arrangement is None:
        return _plan_page(request, customer, form, status=400)
    if step == "propose":
        # The customer accepts it themselves: emailed, with a pay-page link to the terms.
        try:
            to = _contact(customer, form.values["propose_contact"])
            plan_propose(customer=customer, **arrangement.as_kwargs(), contact=to, actor=actor_of(request))
        except ServiceError as exc:
            if exc.field in PLAN_FIELDS:
                form.refuse(exc, PLAN_FIELDS)
                return _plan_page(request, customer, form, status=400)
            form.errors["propose_contact"] = exc.message
        else:
            assert to is not None  # noqa: S101  (plan_propose refuses no contact)
            messages.success(
                request,
                f"The plan is emailed to {to.name} to accept: nothing is set up until they do.",
            )
            return _back(request, customer)
    if step == "confirm":
        form.values["accepted"] = "yes" if request.POST.get("accepted") == "yes" else ""
        contact = form.read(lambda: _contact(customer, form.values["contact"]))
        if not form.values["accepted"]:
            form.errors["accepted"] = "Tick the box once the customer has accepted these terms."
        if not form.errors:
            try:
                plan = plan_create(
                    customer=customer,
                    **arrangement.as_kwargs(),
                    agreed_text=str(request.POST.get("agreed_text", "")),
                    contact=contact,
                    actor=actor_of(request),
                    ip=client_ip(request),
                    form_token=form.values["form_token"],
                    source="desk",
                )
            except ServiceError as exc:
                if exc.field in PLAN_FIELDS:
                    form.refuse(exc, PLAN_FIELDS)
                    return _plan_page(request, customer, form, status=400)
                form.refuse(exc, ("consent", "contact"))
                if exc.field == "consent":
                    form.values["accepted"] = ""  # new terms: to be accepted again
            else:
                messages.success(request, _created(plan))
                return _back(request, customer)
    try:
        quote = plan_quote(customer=customer, **arrangement.as_kwargs())
    except ServiceError as exc:
        form.refuse(exc, PLAN_FIELDS)
        return _plan_page(request, customer, form, status=400)
    return _plan_page(request, customer, form, quote=quote, status=400 if form.errors else 200)


def _created(plan: Plan) -> str:
    total = format_money(plan.total, plan.currency)
    if plan.state == Plan.State.PENDING_APPROVAL:
        return (
            f"Payment plan of {total} proposed: it is above the approval limit, so it waits for approval "
            "(a task is on the worklist). The customer is told."
        )
    return f"Payment plan of {total} set up: the first payment is due {short_date(plan.first_date)}."


@require_POST
@collector_required
def plan_approve_view(request: HttpRequest, customer_id: int, plan_id: int) -> HttpResponse:
    customer = _customer(customer_id)
    plan = _plan(customer, plan_id)
    try:
        approved = plan_approve(plan=plan, actor=actor_of(request))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"Payment plan of {format_money(approved.total, approved.currency)} for {customer.name} "
            f"approved: the first payment is due {short_date(approved.first_date)}. The customer is told.",
        )
    return _back(request, customer)


@require_http_methods(["GET", "HEAD", "POST"])
@collector_required
def plan_change_view(request: HttpRequest, customer_id: int, plan_id: int) -> HttpResponse:
    """Re-schedule what is left to pay of an open plan: how often, how many, from when."""
    customer = _customer(customer_id)
    plan = _plan(customer, plan_id)
    form = _change_form(plan)
    if request.method == "POST":
        form = Form(values=_posted(request.POST, CHANGE_FIELDS))
        count = form.read(lambda: _count(form.values["installment_count"]))
        first = form.read(lambda: _date(form.values["first_date"], "first_date"))
        if not form.errors and count is not None and first is not None:
            try:
                changed = plan_change(
                    plan=plan,
                    actor=actor_of(request),
                    frequency=form.values["frequency"],
                    installment_count=count,
                    first_date=first,
                )
            except ServiceError as exc:
                form.refuse(exc, CHANGE_FIELDS)
            else:
                messages.success(
                    request,
                    f"Payment plan changed: what is left is due in "
                    f"{_installments(count, changed.frequency)} from {short_date(first)}. The customer "
                    "gets the new schedule.",
                )
                return _back(request, customer)
    return render(
        request,
        "desk/plan_change.html",
        {
            "customer": customer,
            "row": _plan_row(plan),
            "can_change": plan.state in Plan.OPEN_STATES,
            "form": form,
            "frequencies": _frequencies(commitment_policy(customer.organization)),
            "max_installments": commitment_policy(customer.organization).plan_max_installments,
            "today": customer.organization.today().isoformat(),
            "nav": "customers",
        },
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@collector_required
def plan_cancel_view(request: HttpRequest, customer_id: int, plan_id: int) -> HttpResponse:
    customer = _customer(customer_id)
    plan = _plan(customer, plan_id)
    form = Form(values={"reason": ""})
    if request.method == "POST":
        form.values = _posted(request.POST, ("reason",))
        try:
            plan_cancel(plan=plan, actor=actor_of(request), reason=form.values["reason"])
        except ServiceError as exc:
            form.refuse(exc, ("reason",))
        else:
            messages.success(
                request,
                f"The payment plan of {format_money(plan.total, plan.currency)} is cancelled: reminders "
                "resume on what its invoices still have open, and the customer is told.",
            )
            return _back(request, customer)
    return render(
        request,
        "desk/commitment_cancel.html",
        {
            "customer": customer,
            "what": "plan",
            "row": _plan_row(plan),
            "can_cancel": plan.state in Plan.OPEN_STATES,
            "form": form,
            "action": reverse("desk:plan_cancel", args=[customer.pk, plan.pk]),
            "nav": "customers",
        },
        status=400 if form.errors else 200,
    )


# --- the promises page --------------------------------------------------------------------------


def kept_rate_text(rate: Decimal | None, kept: int, resolved: int) -> str:
    """ "72% (18 of 25)"; "no promise resolved yet" when none was. Decimal all the way."""
    if rate is None or not resolved:
        return "no promise resolved yet"
    percent = (rate * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return f"{percent}% ({kept} of {resolved})"


def _kept_counts(organization: Organization, since: datetime.date, until: datetime.date) -> tuple[int, int]:
    """How many promises ``promise_kept_rate`` counts, and how many of them were kept."""
    counts = Promise.objects.filter(
        organization=organization, promised_date__gte=since, promised_date__lte=until, state__in=RESOLVED
    ).aggregate(resolved=Count("pk"), kept=Count("pk", filter=Q(state=Promise.State.KEPT)))
    return counts["kept"], counts["resolved"]


def _listed(rows: Any, *, progress: bool = False) -> dict[str, Any]:
    found = list(rows.prefetch_related("invoices")[: LIST_LIMIT + 1])
    return {
        "rows": [_promise_row(p, progress=progress) for p in found[:LIST_LIMIT]],
        "more": len(found) > LIST_LIMIT,
    }


@require_safe
@staff_required
def promises(request: HttpRequest) -> HttpResponse:
    organization = _organization(request)
    today = organization.today()
    desk = promises_for_desk(organization, today)
    kept, resolved = _kept_counts(organization, today - datetime.timedelta(days=DESK_WINDOW_DAYS), today)
    return render(
        request,
        "desk/promises.html",
        {
            "due_today": _listed(desk.due_today, progress=True),
            "kept": _listed(desk.kept),
            "broken": _listed(desk.broken),
            "rate": kept_rate_text(desk.kept_rate, kept, resolved),
            "days": DESK_WINDOW_DAYS,
            "today": short_date(today),
            "nav": "promises",
            "sub": "promises",
        },
    )


# --- the plans and tasks page -------------------------------------------------------------------


def _plans_behind(organization: Organization, today: datetime.date) -> list[Plan]:
    """The active plans whose health is "behind". Only plans with an installment due before
    today and not marked paid can be (``plan_health``), so only those are weighed."""
    candidates = (
        Plan.objects.filter(
            pk__in=Plan.objects.filter(
                organization=organization,
                state=Plan.State.ACTIVE,
                installments__due_date__lt=today,
                installments__state__in=[Installment.State.SCHEDULED, Installment.State.LATE],
            ).values("pk")
        )
        .select_related("customer__organization")
        .prefetch_related("installments", "invoices")
        .order_by("first_date", "pk")
    )
    return [plan for plan in candidates if plan_health(plan) == "behind"]


def _task_row(task: Task, today: datetime.date) -> dict[str, Any]:
    return {
        "task": task,
        "due": short_date(task.due_date),
        "late": task.due_date < today,
        "badge": "badge--partial" if task.kind == Task.Kind.PLAN_APPROVAL else "badge--late",
    }


@require_safe
@staff_required
def plans(request: HttpRequest) -> HttpResponse:
    organization = _organization(request)
    today = organization.today()
    pending = list(
        Plan.objects.filter(organization=organization, state=Plan.State.PENDING_APPROVAL)
        .select_related("customer__organization", "created_by")
        .prefetch_related("installments", "invoices")
        .order_by("created_at", "pk")[:LIST_LIMIT]
    )
    open_tasks = Task.objects.filter(organization=organization, done_at__isnull=True).select_related(
        "customer"
    )
    user = actor_of(request)
    mine = list(open_tasks.filter(assigned_to=user)[:LIST_LIMIT]) if user is not None else []
    anyone = list(open_tasks.filter(assigned_to__isnull=True)[:LIST_LIMIT])
    others = open_tasks.filter(assigned_to__isnull=False).exclude(assigned_to=user).count()
    return render(
        request,
        "desk/plans.html",
        {
            "pending": [_plan_row(plan) for plan in pending],
            "behind": [_plan_row(plan) for plan in _plans_behind(organization, today)[:LIST_LIMIT]],
            "mine": [_task_row(task, today) for task in mine],
            "anyone": [_task_row(task, today) for task in anyone],
            "others": others,
            "nav": "promises",
            "sub": "plans",
        },
    )


@require_POST
@collector_required
def task_done_view(request: HttpRequest, task_id: int) -> HttpResponse:
    task = get_object_or_404(Task.objects.select_related("customer__organization"), pk=task_id)
    if task_done(task=task, actor=actor_of(request)):
        messages.success(request, f"Done: {task.summary}")
    else:
        messages.info(request, "That task was already done.")
    return HttpResponseRedirect(reverse("desk:plans") + "#tasks")


def _by_due_date(invoices: Iterable[Invoice]) -> list[Invoice]:
    """Invoices in the order people read them (a prefetch has none of its own)."""
    return sorted(invoices, key=lambda invoice: (invoice.due_date, invoice.number, invoice.pk))
