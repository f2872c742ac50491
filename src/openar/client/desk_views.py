"""The desk's side of what an agency's creditor clients send.

Payments they report they received directly (``/desk/client-payments/``), and the page where
staff confirm one, applying it to the debtor's invoices (oldest first, or the amounts they
enter), or reject it with a reason. Each shows the agency's commission on the payment and
what the creditor keeps. The services of ``openar.client.payments`` make every change.

Their conversations with the collectors (``/desk/creditor-messages/``): one per subject about
one placed account (``Thread.creditor_threads``, never a customer thread, which is a 404
here). The list puts the unread ones first and narrows to the accounts assigned to me, one
client, or the unread. Opening a conversation marks the client's messages read for staff; a
collector's answer (``creditor_message_reply``) is read in the client portal, and the client
users who wrote in the conversation are told by email once it commits.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Case, F, OuterRef, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Left
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from openar.billing.models import Invoice
from openar.client.models import DirectPaymentReport
from openar.client.money_views import ClientAmountField
from openar.client.payments import direct_payment_confirm, direct_payment_reject, report_commission
from openar.client.services import MAX_MESSAGE, creditor_answer_send, creditor_recipients
from openar.core.errors import ServiceError
from openar.core.money import format_money
from openar.customers.models import Customer
from openar.identity.models import User
from openar.notifications.models import Message, Thread
from openar.notifications.services import creditor_thread_mark_read
from openar.payments.services import AllocationInput
from openar.tenants.access import access_of, actor_of, require, staff_required
from openar.tenants.models import Creditor, Organization
from openar.tenants.permissions import Perm

collector_required = require(Perm.DESK_COLLECT)
PAGE_SIZE = 50
INVOICES_SHOWN = 100
ONCE_PREFIX = "openar:client-payment-form:"
ONCE_TTL = 24 * 3600

STATE_FILTERS = [
    ("reported", "Waiting"),
    ("confirmed", "Confirmed"),
    ("rejected", "Rejected"),
    ("all", "All"),
]
APPLY_CHOICES = [
    ("oldest", "To the oldest open invoices first"),
    ("invoices", "The amounts I enter for each invoice"),
]


def _field_name(invoice: Invoice) -> str:
    return f"invoice_{invoice.pk}"


class ConfirmForm(forms.Form):
    """Where the payment goes: oldest first, or an amount per open invoice."""

    once = forms.CharField(required=False, widget=forms.HiddenInput, max_length=32)
    apply = forms.ChoiceField(
        choices=APPLY_CHOICES, initial="oldest", widget=forms.RadioSelect, label="Apply it"
    )

    def __init__(
        self, *args: Any, invoices: list[Invoice], currency: str, amount: Decimal, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.invoices = invoices
        self.currency = currency
        self.amount = amount
        self.fields["once"].initial = uuid.uuid4().hex
        for invoice in invoices:
            self.fields[_field_name(invoice)] = ClientAmountField(
                currency=currency, required=False, label=f"Amount for {invoice.number}"
            )

    def clean_once(self) -> str:
        value: str = self.cleaned_data.get("once") or ""
        if value and not re.fullmatch(r"[0-9a-f]{32}", value):
            raise forms.ValidationError("This form is damaged: open it again.")
        return value

    def invoice_fields(self) -> list[tuple[Invoice, forms.BoundField]]:
        return [(invoice, self[_field_name(invoice)]) for invoice in self.invoices]

    def invoice_amounts(self) -> list[tuple[Invoice, Decimal]]:
        found = []
        for invoice in self.invoices:
            amount = self.cleaned_data.get(_field_name(invoice))
            if amount:
                found.append((invoice, amount))
        return found

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        amounts = self.invoice_amounts()
        if data.get("apply") == "invoices":
            if not amounts and not any(name.startswith("invoice_") for name in self.errors):
                self.add_error("apply", "Enter an amount for at least one invoice, or apply it oldest first.")
            for invoice, amount in amounts:
                if amount > invoice.open_amount:
                    self.add_error(
                        _field_name(invoice),
                        f"Invoice {invoice.number} has "
                        f"{format_money(invoice.open_amount, invoice.currency)} open.",
                    )
            total = sum((amount for _, amount in amounts), Decimal(0))
            if total > self.amount:
                self.add_error(
                    "apply",
                    f"The amounts for the invoices add up to {format_money(total, self.currency)}, more than "
                    f"the {format_money(self.amount, self.currency)} reported.",
                )
        elif data.get("apply") == "oldest" and amounts:
            self.add_error(
                "apply", "You entered amounts for invoices: choose “The amounts I enter for each invoice”."
            )
        return data

    def allocations(self) -> list[AllocationInput] | None:
        if self.cleaned_data.get("apply") != "invoices":
            return None
        return [AllocationInput(invoice, amount) for invoice, amount in self.invoice_amounts()]


class RejectForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The creditor reads it, by email and on the account's timeline.",
    )


def _claim(token: str) -> bool:
    """The form's one-time token, taken once: a double click changes nothing the second
    time (the service's lock and re-check stand behind it)."""
    return not token or cache.add(f"{ONCE_PREFIX}{token}", 1, timeout=ONCE_TTL)


def _release(token: str) -> None:
    if token:
        cache.delete(f"{ONCE_PREFIX}{token}")


@require_http_methods(["GET", "HEAD"])
@collector_required
def client_payments(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "reported")
    if state not in {value for value, _ in STATE_FILTERS}:
        state = "reported"
    reports = DirectPaymentReport.objects.select_related("customer", "creditor", "reported_by").order_by(
        "reported_at", "pk"
    )
    if state != "all":
        reports = reports.filter(state=state)
    if state != "reported":
        reports = reports.order_by("-reported_at", "-pk")
    page = Paginator(reports, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"report": report, "commission": report_commission(report)} for report in page.object_list]
    waiting = DirectPaymentReport.objects.filter(state=DirectPaymentReport.State.REPORTED).count()
    return render(
        request,
        "desk/client_payments.html",
        {
            "rows": rows,
            "page": page,
            "state": state,
            "states": STATE_FILTERS,
            "waiting": waiting,
            "nav": _payments_nav(request),
        },
    )


def _open_invoices(report: DirectPaymentReport) -> list[Invoice]:
    return list(
        Invoice.objects.filter(
            customer=report.customer, currency=report.currency, open_amount__gt=0
        ).order_by("due_date", "issue_date", "pk")[:INVOICES_SHOWN]
    )


@require_http_methods(["GET", "HEAD", "POST"])
@collector_required
def client_payment_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    report = get_object_or_404(
        DirectPaymentReport.objects.select_related(
            "customer", "creditor", "reported_by", "decided_by", "payment"
        ),
        pk=report_id,
    )
    posted = request.POST if request.method == "POST" else None
    action = posted.get("action") if posted is not None else None
    confirm = ConfirmForm(
        posted if action == "confirm" else None,
        invoices=_open_invoices(report),
        currency=report.currency,
        amount=report.amount,
    )
    reject = RejectForm(posted if action == "reject" else None)
    status = 200
    if action == "confirm" and confirm.is_valid():
        token = confirm.cleaned_data.get("once") or ""
        if not _claim(token):
            messages.info(
                request, "That form was already sent (twice clicked?): the payment is confirmed once."
            )
            return HttpResponseRedirect(reverse("desk:client_payment", args=[report.pk]))
        try:
            done = direct_payment_confirm(
                report=report, allocations=confirm.allocations(), actor=actor_of(request)
            )
        except ServiceError as exc:
            _release(token)
            if exc.code == "decided":
                messages.info(request, exc.message)
                return HttpResponseRedirect(reverse("desk:client_payment", args=[report.pk]))
            confirm.add_error(None, exc.message)
            status = 400
        else:
            messages.success(
                request,
                f"Confirmed: {format_money(done.amount, done.currency)} recorded as a payment made "
                f"directly to {done.creditor.name} and applied to {done.customer.name}'s account.",
            )
            return HttpResponseRedirect(reverse("desk:client_payment", args=[report.pk]))
    elif action == "reject" and reject.is_valid():
        try:
            direct_payment_reject(
                report=report, reason=reject.cleaned_data["reason"], actor=actor_of(request)
            )
        except ServiceError as exc:
            if exc.code == "decided":
                messages.info(request, exc.message)
                return HttpResponseRedirect(reverse("desk:client_payment", args=[report.pk]))
            reject.add_error("reason", exc.message)
            status = 400
        else:
            messages.success(request, f"Rejected: {report.creditor.name} is told why.")
            return HttpResponseRedirect(reverse("desk:client_payments"))
    elif posted is not None:
        status = 400
    applied = []
    if report.payment is not None:
        applied = [
            {"invoice": a.invoice, "amount": format_money(a.amount, a.invoice.currency)}
            for a in report.payment.allocations.filter(reversed_at__isnull=True)
            .select_related("invoice")
            .order_by("pk")
        ]
    return render(
        request,
        "desk/client_payments_detail.html",
        {
            "report": report,
            "customer": report.customer,
            "commission": report_commission(report),
            "confirm": confirm,
            "reject": reject,
            "invoice_rows": [
                {
                    "invoice": invoice,
                    "field": field,
                    "open": format_money(invoice.open_amount, invoice.currency),
                }
                for invoice, field in confirm.invoice_fields()
            ],
            "applied": applied,
            "nav": _payments_nav(request),
        },
        status=status,
    )


# --- conversations with creditor clients ---------------------------------------------------------

THREADS_PAGE_SIZE = 50
SNIPPET = 160
WHO_FILTERS = [("all", "All accounts"), ("mine", "Assigned to me")]
SHOW_FILTERS = [("", "All"), ("unread", "Unread")]


class CreditorReplyForm(forms.Form):
    body = forms.CharField(
        label="Your answer",
        max_length=MAX_MESSAGE,
        widget=forms.Textarea(attrs={"rows": 6}),
        error_messages={
            "required": "Write the answer first.",
            "max_length": "Keep the answer to %(limit_value)s characters or fewer (it has %(show_value)s).",
        },
    )


def _organization(request: HttpRequest) -> Organization:
    organization: Organization = request.organization  # type: ignore[attr-defined]
    return organization


def _payments_nav(request: HttpRequest) -> str:
    """An agency has a nav tab of its own for its clients' payments; a supplier's desk shows
    these pages under Payments."""
    return "client_payments" if _organization(request).kind == Organization.Kind.AGENCY else "payments"


def _author(request: HttpRequest) -> User:
    user = actor_of(request)
    assert user is not None  # noqa: S101  (the desk is for signed-in staff only)
    return user


def creditor_conversations() -> QuerySet[Thread]:
    """Every conversation of the organization's creditor clients (the request's tenant
    scope), never a customer thread."""
    return Thread.creditor_threads.select_related(
        "customer", "customer__creditor", "customer__assigned_collector"
    )


@require_safe
@staff_required
def creditor_threads(request: HttpRequest) -> HttpResponse:
    """The creditor clients' conversations, unread first, then the most recent."""
    who = request.GET.get("who", "all")
    if who not in {value for value, _ in WHO_FILTERS}:
        who = "all"
    show = request.GET.get("show", "")
    if show not in {value for value, _ in SHOW_FILTERS}:
        show = ""
    clients = list(Creditor.objects.filter(is_self=False).order_by("name", "pk"))
    chosen = next((c for c in clients if str(c.pk) == request.GET.get("client", "")), None)
    latest = Message.objects.filter(thread=OuterRef("pk")).order_by("-created_at", "-pk")
    threads = creditor_conversations().annotate(
        unread_first=Case(When(unread_by_staff__gt=0, then=Value(0)), default=Value(1)),
        latest_text=Subquery(latest.annotate(snippet=Left("body_text", SNIPPET)).values("snippet")[:1]),
        latest_direction=Subquery(latest.values("direction")[:1]),
    )
    if who == "mine":
        threads = threads.filter(customer__assigned_collector=actor_of(request))
    if show == "unread":
        threads = threads.filter(unread_by_staff__gt=0)
    if chosen is not None:
        threads = threads.filter(customer__creditor=chosen)
    account = None
    if re.fullmatch(r"[0-9]{1,18}", account_id := request.GET.get("account", "")):
        account = Customer.objects.filter(pk=int(account_id)).first()
        threads = threads.filter(customer_id=int(account_id))
    threads = threads.order_by("unread_first", F("last_message_at").desc(nulls_last=True), "-pk")
    page = Paginator(threads, THREADS_PAGE_SIZE).get_page(request.GET.get("page"))
    unread = Thread.creditor_threads.aggregate(total=Sum("unread_by_staff"))["total"] or 0
    return render(
        request,
        "desk/creditor_threads.html",
        {
            "page": page,
            "who": who,
            "who_filters": WHO_FILTERS,
            "show": show,
            "show_filters": SHOW_FILTERS,
            "clients": clients,
            "chosen": chosen,
            "account": account,
            "unread": unread,
            "nav": "creditor_messages",
        },
    )


def _conversation(conversation_id: int) -> Thread:
    return get_object_or_404(creditor_conversations(), pk=conversation_id)


def _conversation_page(
    request: HttpRequest,
    thread: Thread,
    form: CreditorReplyForm,
    *,
    new: frozenset[int] = frozenset(),
    status: int = 200,
) -> HttpResponse:
    items = thread.messages.select_related("created_by").order_by("created_at", "pk")
    access = access_of(request)
    return render(
        request,
        "desk/creditor_threads_detail.html",
        {
            "thread": thread,
            "customer": thread.customer,
            "creditor": thread.customer.creditor,
            "items": list(items),
            "new": new,
            "form": form,
            "can_reply": access is not None and access.can(Perm.DESK_COLLECT),
            "recipients": creditor_recipients(thread),
            "max_body": MAX_MESSAGE,
            "nav": "creditor_messages",
        },
        status=status,
    )


@require_safe
@staff_required
def creditor_thread(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """The conversation whole, oldest first; opening it marks the client's messages read
    for staff (those are flagged "New" on this page)."""
    thread = _conversation(conversation_id)
    new: frozenset[int] = frozenset()
    if thread.unread_by_staff:
        new = frozenset(
            thread.messages.filter(direction=Message.Direction.IN, read_at__isnull=True).values_list(
                "pk", flat=True
            )
        )
        creditor_thread_mark_read(thread=thread, by_staff=True)
        thread.unread_by_staff = 0
    return _conversation_page(request, thread, CreditorReplyForm(), new=new)


@require_POST
@collector_required
def creditor_thread_reply(request: HttpRequest, conversation_id: int) -> HttpResponse:
    thread = _conversation(conversation_id)
    form = CreditorReplyForm(request.POST)
    if not form.is_valid():
        return _conversation_page(request, thread, form, status=400)
    try:
        message, told = creditor_answer_send(
            thread=thread, author=_author(request), body=form.cleaned_data["body"]
        )
    except ServiceError as exc:
        form.add_error("body", exc.message)
        return _conversation_page(request, thread, form, status=400)
    creditor = thread.customer.creditor.name
    if told:
        names = ", ".join(user.email for user in told)
        messages.success(request, f"Your answer is in {creditor}'s portal; told by email: {names}.")
    else:
        messages.success(
            request, f"Your answer is in {creditor}'s portal (none of its users has an email address)."
        )
    return HttpResponseRedirect(reverse("desk:creditor_thread", args=[thread.pk]) + f"#m-{message.pk}")
