"""Promise to pay and payment plans, for the customer: in the portal (``/portal/promise/``,
``/portal/plan/``) and on the login-free pay page (``/pay/promise/``, ``/pay/plan/``). The
same views serve both doors (``portal.pay.door_of``); the door's permission is checked where
they are mounted.

No JavaScript. A promise is one form. A plan is chosen (how often, how many payments, from
when, a down payment), then quoted: the page shows the schedule and the exact terms, and how
each payment is made (by hand, a saved card or bank account, or one saved now at the
provider's page, after a step-up for a sign-in link); accepting posts the terms shown with a
one-time token, so a double click makes one plan. What the customer chose is kept in the
session while they save a card, and offered again when they come back.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from openar.billing import selectors as billing_selectors
from openar.billing.models import Invoice
from openar.billing.presenters import short_date
from openar.commitments.models import Frequency, Plan, Promise
from openar.commitments.selectors import customer_plans, customer_promises, open_plan
from openar.commitments.services import (
    Quote,
    commitment_policy,
    plan_create,
    plan_health,
    plan_progress,
    plan_quote,
    plan_terms,
    promise_create,
)
from openar.core.errors import ServiceError
from openar.core.http import client_ip
from openar.core.money import format_money, parse_amount
from openar.customers.models import Contact, Customer
from openar.identity.stepup import step_up_fresh
from openar.payments.autopay import saved_methods, setup_complete, setup_start
from openar.payments.methods import methods_for
from openar.payments.models import MethodSetup, SavedMethod
from openar.payments.providers.base import ProviderError
from openar.portal.pay import door_of
from openar.tenants.access import Access, actor_of, customer_required

DRAFT_KEY = "openar_plan_draft"  # what the customer chose, while they save a card
FREQUENCY_LABELS = {"weekly": "Every week", "biweekly": "Every two weeks", "monthly": "Every month"}


def _access(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


def _customer(access: Access) -> Customer:
    assert access.customer is not None  # noqa: S101  (the doors are only granted with a customer)
    return access.customer


def _contact(request: HttpRequest, access: Access) -> Contact | None:
    if access.contact is not None:
        return access.contact
    if access.is_view_as or not request.user.is_authenticated:
        return None
    return Contact.objects.filter(customer=access.customer, user=request.user).first()


def _source(access: Access) -> str:
    return "pay_page" if access.link_scope == "pay" else "portal"


def _invoices(access: Access, customer: Customer) -> list[Invoice]:
    """The open invoices this session may commit to: what its link shows, or the account."""
    today = customer.organization.today()
    return list(
        billing_selectors.invoices_visible(
            customer, today=today, link_scope=access.link_scope, invoice_id=access.invoice_id
        )
        .filter(open_amount__gt=0, currency=customer.currency)
        .order_by("due_date", "pk")
    )


def _chosen(data: QueryDict, invoices: list[Invoice], *, default_past_due: bool) -> list[Invoice]:
    """The invoices ticked (only among those offered); none ticked: the past-due ones when
    the session sees only those (a sign-in link), else none (the whole account)."""
    wanted = {int(v) for v in data.getlist("invoice") if _is_id(v)}
    if len(wanted) != len(data.getlist("invoice")) or not wanted <= {invoice.pk for invoice in invoices}:
        # Never "none ticked" (the whole account) from an invoice that is not offered here.
        raise ServiceError("One of the invoices chosen is not open any more.", field="invoices")
    if wanted:
        return [invoice for invoice in invoices if invoice.pk in wanted]
    return list(invoices) if default_past_due else []


def _is_id(value: object) -> bool:
    text = str(value)
    return text.isascii() and text.isdecimal() and len(text) < 19


def _rows(invoices: list[Invoice], chosen: list[Invoice], today: datetime.date) -> list[dict[str, Any]]:
    ids = {invoice.pk for invoice in chosen}
    return [
        {
            "id": invoice.pk,
            "number": invoice.number,
            "due": short_date(invoice.due_date),
            "late": invoice.due_date < today,
            "open": format_money(invoice.open_amount, invoice.currency),
            "checked": invoice.pk in ids,
        }
        for invoice in invoices
    ]


def _date(text: str, field_: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text.strip())
    except ValueError:
        raise ServiceError("Enter a date, such as 2026-12-31.", field=field_) from None


def _common(request: HttpRequest, access: Access, customer: Customer, nav: str) -> dict[str, Any]:
    return {
        "customer": customer,
        "access": access,
        "door": door_of(access),
        "full": "portal.full" in access.perm_names,
        "nav": nav,
        "narrow_scope": access.is_narrow,  # a sign-in link: "none ticked" is not the account
        "promise_url": reverse(_url(access, "promise")),
        "plan_url": reverse(_url(access, "plan")),
    }


# --- promises ---------------------------------------------------------------------------------


def promise_page(request: HttpRequest) -> HttpResponse:
    """The promise form, and the customer's promises."""
    access = _access(request)
    customer = _customer(access)
    today = customer.organization.today()
    invoices = _invoices(access, customer)
    narrow = access.is_narrow
    errors: dict[str, str] = {}
    values = {
        "amount": request.GET.get("amount", "")[:40],
        "date": "",
        "note": "",
        "token": secrets.token_urlsafe(24),
    }
    try:
        chosen = _chosen(request.GET, invoices, default_past_due=narrow)
    except ServiceError:
        chosen = _chosen(QueryDict(), invoices, default_past_due=narrow)
    if request.method == "POST":
        values = {name: request.POST.get(name, "")[:1000] for name in ("amount", "date", "note", "token")}
        if access.read_only:
            errors["form"] = "Viewing as the customer: nothing can be promised from here."
        else:
            try:
                chosen = _chosen(request.POST, invoices, default_past_due=narrow)
                promise = promise_create(
                    customer=customer,
                    amount=_amount(values["amount"], customer.currency),
                    promised_date=_date(values["date"], "promised_date"),
                    invoices=chosen,
                    note=values["note"],
                    contact=_contact(request, access),
                    actor=actor_of(request),
                    source=_source(access),
                    form_token=values["token"],
                )
            except ServiceError as exc:
                errors[_promise_field(exc.field)] = exc.message
            else:
                messages.success(
                    request,
                    f"Thank you: you promised {format_money(promise.amount, promise.currency)} "
                    f"by {promise.promised_date:%d %B %Y}. We will remind you two days before.",
                )
                return HttpResponseRedirect(reverse(_url(access, "promise")))
    policy = commitment_policy(customer.organization)
    promises = _own(customer_promises(customer), access)
    context = {
        **_common(request, access, customer, "promise"),
        "rows": _rows(invoices, chosen, today),
        "values": values,
        "errors": errors,
        "latest": today + datetime.timedelta(days=policy.promise_max_days),
        "today": today,
        "promises": [_promise_row(p) for p in promises[:20]],
        "open_total": format_money(sum((i.open_amount for i in invoices), Decimal(0)), customer.currency),
    }
    return render(request, "portal/promise.html", context, status=400 if errors else 200)


def _amount(text: str, currency: str) -> Decimal:
    try:
        return parse_amount(text, currency)
    except ValueError as exc:
        raise ServiceError(str(exc), field="amount") from None


def _promise_field(name: str | None) -> str:
    return {"promised_date": "date", "invoices": "invoices", "amount": "amount", "note": "note"}.get(
        name or "", "form"
    )


def _promise_row(promise: Promise) -> dict[str, Any]:
    return {
        "amount": format_money(promise.amount, promise.currency),
        "date": promise.promised_date,
        "state": promise.state,
        "state_label": promise.get_state_display(),
        "invoices": ", ".join(invoice.number for invoice in promise.invoices.all()) or "Your account",
    }


# --- plans ------------------------------------------------------------------------------------


@dataclass
class PlanChoice:
    """What the customer chose, as typed (shown back on a refusal)."""

    invoice_ids: list[int]
    down: str = "0"
    frequency: str = "monthly"
    count: str = "3"
    first: str = ""
    method: str = "manual"  # "manual", or a saved method's id

    @classmethod
    def from_data(cls, data: QueryDict | dict[str, Any], today: datetime.date) -> PlanChoice:
        get = data.get
        ids = data.getlist("invoice") if isinstance(data, QueryDict) else list(data.get("invoice", []))
        return cls(
            invoice_ids=[int(v) for v in ids if _is_id(v)],
            down=str(get("down_payment") or "0")[:40],
            frequency=str(get("frequency") or "monthly")[:20],
            count=str(get("installment_count") or "3")[:4],
            first=str(get("first_date") or today.isoformat())[:20],
            method=str(get("method") or "manual")[:20],
        )

    def as_data(self) -> dict[str, Any]:
        return {
            "invoice": [str(pk) for pk in self.invoice_ids],
            "down_payment": self.down,
            "frequency": self.frequency,
            "installment_count": self.count,
            "first_date": self.first,
            "method": self.method,
        }


def plan_page(request: HttpRequest, draft: dict[str, Any] | None = None) -> HttpResponse:
    """Choose a plan, see its schedule and terms, accept; or see the plan in place.
    ``draft``: what the customer had chosen before saving a card (reviewed again)."""
    access = _access(request)
    customer = _customer(access)
    today = customer.organization.today()
    current = open_plan(customer)
    if current is not None:
        token = request.POST.get("token", "") if request.method == "POST" else ""
        if token and current.form_token == token:  # the same agreement sent twice
            return HttpResponseRedirect(reverse(_url(access, "plan")))
        if access.is_narrow and current.contact_id != (access.contact.pk if access.contact else None):
            # Someone else on the account agreed to it: a sign-in link is told, not shown.
            return render(request, "portal/plan_other.html", _common(request, access, customer, "plan"))
        return _plan_in_place(request, access, customer, current)
    invoices = _invoices(access, customer)
    if not invoices:  # nothing left to arrange: the latest plan, if any (completed, say)
        latest = _own(customer_plans(customer), access).first()
        if latest is not None:
            return _plan_in_place(request, access, customer, latest)
    step = request.POST.get("step", "") if request.method == "POST" else ""
    if draft is None and request.method == "GET" and request.GET.get("proposal"):
        # A plan staff proposed (``plan_propose``: the link in their email): its review.
        get = request.GET
        draft = {
            "invoice": [v for v in get.get("invoices", "").split(",") if _is_id(v)],
            "down_payment": get.get("down_payment", "0"),
            "frequency": get.get("frequency", ""),
            "installment_count": get.get("installment_count", ""),
            "first_date": get.get("first_date", ""),
        }
    if draft is None and request.method == "GET" and request.GET.get("draft"):
        found = request.session.get(DRAFT_KEY)
        draft = found if isinstance(found, dict) else None
    if draft is not None:
        choice = PlanChoice.from_data(draft, today)
        step = "quote"
    elif request.method == "POST":
        choice = PlanChoice.from_data(request.POST, today)
    else:
        choice = PlanChoice(
            invoice_ids=[i.pk for i in invoices if i.due_date < today] if access.is_narrow else []
        )
        choice.first = today.isoformat()
    if request.method == "POST" and access.read_only and step in ("accept", "save_method"):
        return _plan_form(
            request,
            access,
            customer,
            invoices,
            choice,
            {"form": "Viewing as the customer: nothing can be agreed from here."},
            403,
        )
    if not step:
        return _plan_form(request, access, customer, invoices, choice)
    try:
        quote = _quote(customer, invoices, choice)
    except ServiceError as exc:
        return _plan_form(
            request, access, customer, invoices, choice, {_plan_field(exc.field): exc.message}, 400
        )
    if step == "save_method":
        return _save_method(request, access, customer, choice)
    if step == "accept":
        return _accept(request, access, customer, invoices, choice, quote)
    return _plan_review(request, access, customer, choice, quote)


def _quote(customer: Customer, invoices: list[Invoice], choice: PlanChoice) -> Quote:
    chosen = [invoice for invoice in invoices if invoice.pk in choice.invoice_ids]
    if not chosen:
        raise ServiceError("Choose the invoices the plan pays.", field="invoices")
    if len(chosen) != len(set(choice.invoice_ids)):
        raise ServiceError(
            "One of the invoices is not open any more, or cannot be arranged from this page.",
            field="invoices",
        )
    try:
        count = int(choice.count)
    except ValueError:
        raise ServiceError("Choose how many installments.", field="installment_count") from None
    try:
        down = parse_amount(choice.down, customer.currency) if choice.down.strip() else Decimal(0)
    except ValueError as exc:
        raise ServiceError(str(exc), field="down_payment") from None
    return plan_quote(
        customer=customer,
        invoices=chosen,
        down_payment=down,
        frequency=choice.frequency,
        installment_count=count,
        first_date=_date(choice.first, "first_date"),
    )


def _plan_field(name: str | None) -> str:
    known = (
        "invoices",
        "down_payment",
        "frequency",
        "installment_count",
        "first_date",
        "consent",
        "saved_method",
    )
    return name if name in known else "form"


def _plan_form(
    request: HttpRequest,
    access: Access,
    customer: Customer,
    invoices: list[Invoice],
    choice: PlanChoice,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    today = customer.organization.today()
    policy = commitment_policy(customer.organization)
    chosen = [invoice for invoice in invoices if invoice.pk in choice.invoice_ids]
    context = {
        **_common(request, access, customer, "plan"),
        "rows": _rows(invoices, chosen, today),
        "choice": choice,
        "errors": errors or {},
        "frequencies": [
            (f, FREQUENCY_LABELS[f]) for f in Frequency.values if f in (policy.plan_frequencies or [])
        ],
        "max_count": policy.plan_max_installments,
        "today": today,
        "plans": list(_own(customer_plans(customer), access)[:5]),
    }
    return render(request, "portal/plan.html", context, status=status)


def _methods_for_plan(customer: Customer, access: Access) -> list[SavedMethod]:
    found = saved_methods(customer)
    if access.is_narrow:  # a sign-in link may use what its own contact saved
        found = [m for m in found if m.saved_by_id == access.contact.pk]  # type: ignore[union-attr]
    return found


def _plan_review(
    request: HttpRequest,
    access: Access,
    customer: Customer,
    choice: PlanChoice,
    quote: Quote,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    methods = _methods_for_plan(customer, access)
    method = next((m for m in methods if str(m.pk) == choice.method), None)
    if method is None:
        choice.method = "manual"
    terms = plan_terms(customer, quote, method.label if method else None)
    can_save = any(kind in ("card", "ach") for kind in methods_for(customer.organization, saving=True))
    context = {
        **_common(request, access, customer, "plan"),
        "choice": choice,
        "hidden": choice.as_data(),
        "quote": quote,
        "schedule": [
            {
                "label": "Down payment" if item.number == 0 else f"Payment {item.number}",
                "date": item.due_date,
                "amount": format_money(item.amount, quote.currency),
            }
            for item in quote.installments
        ],
        "total": format_money(quote.total, quote.currency),
        "frequency": FREQUENCY_LABELS.get(quote.frequency, quote.frequency),
        "methods": methods,
        "method": method,
        "can_save": can_save,
        "terms": terms,
        "token": request.POST.get("token") or secrets.token_urlsafe(24),
        "errors": errors or {},
        "needs_step_up": access.is_narrow
        and (access.contact is None or not step_up_fresh(request.session, access.contact)),
    }
    return render(request, "portal/plan_review.html", context, status=status)


def _accept(
    request: HttpRequest,
    access: Access,
    customer: Customer,
    invoices: list[Invoice],
    choice: PlanChoice,
    quote: Quote,
) -> HttpResponse:
    methods = _methods_for_plan(customer, access)
    method = next((m for m in methods if str(m.pk) == choice.method), None)
    if request.POST.get("consent") != "yes":
        return _plan_review(
            request,
            access,
            customer,
            choice,
            quote,
            {"consent": "Tick the box to agree to the terms above."},
            400,
        )
    try:
        plan = plan_create(
            customer=customer,
            invoices=[invoice for invoice in invoices if invoice.pk in choice.invoice_ids],
            down_payment=quote.down_payment,
            frequency=quote.frequency,
            installment_count=quote.installment_count,
            first_date=quote.first_date,
            agreed_text=request.POST.get("terms", ""),
            contact=_contact(request, access),
            actor=actor_of(request),
            ip=client_ip(request),
            saved_method=method,
            form_token=request.POST.get("token", "")[:64],
            source=_source(access),
        )
    except ServiceError as exc:
        twin = Plan.objects.filter(customer=customer, form_token=request.POST.get("token", "")[:64]).first()
        if twin is not None and request.POST.get("token"):
            return HttpResponseRedirect(reverse(_url(access, "plan")))
        return _plan_review(
            request, access, customer, choice, quote, {_plan_field(exc.field): exc.message}, 400
        )
    request.session.pop(DRAFT_KEY, None)
    if plan.state == Plan.State.PENDING_APPROVAL:
        messages.success(request, "Thank you: your plan is sent to us for approval. We will email you.")
    else:
        messages.success(request, "Thank you: your payment plan is set up.")
    return HttpResponseRedirect(reverse(_url(access, "plan")))


def _save_method(
    request: HttpRequest, access: Access, customer: Customer, choice: PlanChoice
) -> HttpResponse:
    """Keep the choice, then (after a step-up for a sign-in link) go to the provider's page
    to save a card or bank account; back on the plan's review with it."""
    request.session[DRAFT_KEY] = choice.as_data()
    contact = _contact(request, access)
    if access.is_narrow and (contact is None or not step_up_fresh(request.session, contact)):
        back = reverse(_url(access, "plan")) + "?" + urlencode({"draft": 1, "then": "save"})
        return HttpResponseRedirect(reverse(_url(access, "step_up")) + "?" + urlencode({"next": back}))
    kind = request.POST.get("kind", "card")
    try:
        _, redirect_url = setup_start(
            customer=customer,
            contact=contact,
            method=kind if kind in ("card", "ach") else "card",
            actor=actor_of(request),
            return_route=_url(access, "plan_method_return"),
        )
    except (ServiceError, ProviderError) as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(reverse(_url(access, "plan")) + "?draft=1")
    return HttpResponseRedirect(redirect_url)


def plan_method_return(request: HttpRequest, setup_id: int) -> HttpResponse:
    """Back from saving a card for the plan: the plan's review, paying with it."""
    access = _access(request)
    customer = _customer(access)
    setups = MethodSetup.objects.filter(customer=customer)
    if access.is_narrow:
        setups = setups.filter(contact=access.contact)
    setup = get_object_or_404(setups, pk=setup_id)
    draft = request.session.get(DRAFT_KEY)
    method = None
    if not request.GET.get("cancelled"):
        try:
            method = setup_complete(setup=setup, actor=actor_of(request))
        except ProviderError as exc:
            messages.error(request, exc.message)
    if method is not None:
        messages.success(request, f"{method.label} is saved.")
        if isinstance(draft, dict):
            draft = request.session[DRAFT_KEY] = {**draft, "method": str(method.pk)}
    else:
        messages.info(request, "Nothing was saved: you can pay each installment yourself, or try again.")
    # The plan's review, shown here (a reload finds the same saved method: it is kept once).
    return plan_page(request, draft=draft if isinstance(draft, dict) else None)


def _plan_in_place(request: HttpRequest, access: Access, customer: Customer, plan: Plan) -> HttpResponse:
    progress = plan_progress(plan)
    context = {
        **_common(request, access, customer, "plan"),
        "plan": plan,
        "health": plan_health(plan),
        "paid": format_money(progress, plan.currency),
        "total": format_money(plan.total, plan.currency),
        "left": format_money(max(plan.total - progress, Decimal(0)), plan.currency),
        "frequency": FREQUENCY_LABELS.get(plan.frequency, plan.frequency),
        "installments": [
            {
                "label": "Down payment" if item.number == 0 else f"Payment {item.number}",
                "date": item.due_date,
                "amount": format_money(item.amount, plan.currency),
                "state": item.state,
                "state_label": item.get_state_display(),
            }
            for item in plan.installments.order_by("number")
        ],
    }
    return render(request, "portal/plan_current.html", context)


def _own(queryset: Any, access: Access) -> Any:
    """A sign-in link sees what its own contact promised or agreed to."""
    return queryset.filter(contact=access.contact) if access.is_narrow else queryset


def _url(access: Access, name: str) -> str:
    return f"{'pay' if access.link_scope == 'pay' else 'portal'}:{name}"


# --- the portal's routes (the pay page mounts the same views with its own permission) ---------

promise = require_http_methods(["GET", "HEAD", "POST"])(customer_required(promise_page))
plan = require_http_methods(["GET", "HEAD", "POST"])(customer_required(plan_page))
plan_method = require_safe(customer_required(plan_method_return))
