"""The pay page's views: a front door of its own (its own base template, no navigation into
the account), for the session a pay-page link opens (``Perm.PAY_VIEW`` only).

Paying reuses the portal's pay views (``portal/pay.py``: choose, review, confirm, the
payment's page, the receipt), which take their addresses and base template from the door
the session came through; the permission checked here is the pay page's.
"""

from __future__ import annotations

from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_safe

from openar.billing import selectors
from openar.billing.presenters import short_date
from openar.core.money import format_money
from openar.payments.online import in_flight, not_payable_now
from openar.portal import commitments
from openar.portal import pay as pay_pages
from openar.portal.details import step_up_page
from openar.tenants.access import Access, require
from openar.tenants.permissions import Perm

pay_required = require(Perm.PAY_VIEW)


def _access(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


@require_safe
@pay_required
def home(request: HttpRequest) -> HttpResponse:
    """What is past due, and the three ways forward: pay in full, pay part, or commit."""
    access = _access(request)
    customer = access.customer
    assert customer is not None  # noqa: S101  (a pay-page link is a contact's)
    today = customer.organization.today()
    invoices = list(
        selectors.invoices_visible(customer, today=today, link_scope=access.link_scope)
        .filter(currency=customer.currency)
        .order_by("due_date", "pk")
    )
    flying = in_flight(invoice.pk for invoice in invoices)
    rows = [
        {
            "number": invoice.number,
            "due": short_date(invoice.due_date),
            "late": (today - invoice.due_date).days,
            "open": format_money(invoice.open_amount, customer.currency),
            "processing": format_money(flying[invoice.pk], customer.currency) if invoice.pk in flying else "",
        }
        for invoice in invoices
    ]
    total = sum((invoice.open_amount for invoice in invoices), Decimal(0))
    # What payments in flight cover, and what open disputes hold, is not to pay now.
    held = not_payable_now(invoice.pk for invoice in invoices)
    payable = total - sum(held.values(), Decimal(0))
    context = {
        "customer": customer,
        "access": access,
        "rows": rows,
        "total": format_money(total, customer.currency),
        "payable": payable > 0,
        "payable_total": format_money(max(payable, Decimal(0)), customer.currency),
        "door": pay_pages.PAY_DOOR,
    }
    return render(request, "pay/home.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@pay_required
def checkout(request: HttpRequest) -> HttpResponse:
    return pay_pages.pay_page(request)


@require_safe
@pay_required
def payment(request: HttpRequest, payment_id: int) -> HttpResponse:
    return pay_pages.payment_page(request, payment_id)


@require_safe
@pay_required
def receipt(request: HttpRequest, payment_id: int) -> HttpResponse:
    return pay_pages.receipt_download(request, payment_id)


@require_http_methods(["GET", "HEAD", "POST"])
@pay_required
def promise(request: HttpRequest) -> HttpResponse:
    return commitments.promise_page(request)


@require_http_methods(["GET", "HEAD", "POST"])
@pay_required
def plan(request: HttpRequest) -> HttpResponse:
    return commitments.plan_page(request)


@require_safe
@pay_required
def plan_method(request: HttpRequest, setup_id: int) -> HttpResponse:
    return commitments.plan_method_return(request, setup_id)


@require_http_methods(["GET", "POST"])
@pay_required
def step_up(request: HttpRequest) -> HttpResponse:
    """Confirm it is you (an emailed code) before saving a card for a plan."""
    return step_up_page(request, door="/pay/", default_next="/pay/", base="pay/base.html")
