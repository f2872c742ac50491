"""Desk actions that steer collection on one customer: which reminder policy it follows,
holds (pause reminders until released or until a date), and turning autopay off."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST

from openar.core.errors import ServiceError
from openar.customers.models import Customer, Hold
from openar.customers.services import customer_segment_set, hold_place, hold_release
from openar.payments.autopay import autopay_disable
from openar.reminders.models import DunningPolicy
from openar.tenants.access import actor_of, require
from openar.tenants.permissions import Perm

collector_required = require(Perm.DESK_COLLECT)


def _back(customer: Customer) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("desk:customer", args=[customer.pk]) + "#collection")


@require_POST
@collector_required
def segment_set(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    segment = str(request.POST.get("segment", ""))
    if segment and not DunningPolicy.objects.filter(segment=segment, is_active=True).exists():
        messages.error(request, "Choose one of the reminder policies.")
        return _back(customer)
    customer_segment_set(customer=customer, segment=segment, actor=actor_of(request))
    messages.success(request, f"{customer.name} follows the reminder policy you chose.")
    return _back(customer)


@require_POST
@collector_required
def hold_create(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    until = str(request.POST.get("until", "")).strip()
    expires_at = None
    if until:
        try:
            day = datetime.date.fromisoformat(until)
            # The hold covers the whole day chosen, in the organization's time zone.
            expires_at = datetime.datetime.combine(day, datetime.time.min, tzinfo=customer.organization.tz)
            expires_at += datetime.timedelta(days=1)
        except (ValueError, OverflowError):
            messages.error(request, "Enter the end date as a date, e.g. 2026-12-31.")
            return _back(customer)
    try:
        hold_place(
            customer=customer,
            reason=str(request.POST.get("reason", "")),
            actor=actor_of(request),
            expires_at=expires_at,
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"Collection on {customer.name} is on hold: no reminders until it is released."
        )
    return _back(customer)


@require_POST
@collector_required
def hold_end(request: HttpRequest, customer_id: int, hold_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    hold = get_object_or_404(Hold, pk=hold_id, customer=customer)
    if hold_release(hold=hold, actor=actor_of(request)):
        messages.success(request, "Hold released: reminders resume when they are due.")
    return _back(customer)


@require_POST
@collector_required
def autopay_off(request: HttpRequest, customer_id: int) -> HttpResponse:
    """Staff turn a customer's autopay off (the customer asked by phone, a dispute, ...): the
    customer is told by email, and only they can turn it on again (their consent)."""
    customer = get_object_or_404(Customer, pk=customer_id)
    reason = str(request.POST.get("reason", "")).strip()[:200]
    if not reason:
        messages.error(request, "Say why automatic payments are turned off: the customer is told.")
        return _back(customer)
    autopay_disable(customer=customer, actor=actor_of(request), reason=reason)
    messages.success(request, f"Automatic payments of {customer.name} are off; the customer is told.")
    return _back(customer)
