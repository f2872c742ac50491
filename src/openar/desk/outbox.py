"""The desk's view of messages: the outbox (every outbound message and its state), one
message whole, sending a failed one again, and the reminders that will go out tomorrow
(skip one, or send it now)."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from openar.billing.models import Invoice
from openar.billing.selectors import clean_search
from openar.core.errors import ServiceError
from openar.customers.models import Customer
from openar.notifications.models import Channel, Message
from openar.notifications.services import message_resend
from openar.reminders.engine import reminder_send_now, reminder_skip, upcoming
from openar.reminders.models import DunningStep
from openar.tenants.access import actor_of, require, staff_required
from openar.tenants.models import Organization
from openar.tenants.permissions import Perm

collector_required = require(Perm.DESK_COLLECT)
PAGE_SIZE = 50
STATE_FILTERS = {
    "": "All",
    "waiting": "Waiting",
    "sent": "Sent",
    "problems": "Failed or bounced",
    "skipped": "Not sent",
}


def _organization(request: HttpRequest) -> Organization:
    organization: Organization = request.organization  # type: ignore[attr-defined]
    return organization


@require_safe
@staff_required
def outbox(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    channel = request.GET.get("channel", "")
    search = clean_search(request.GET.get("q"))
    rows = Message.objects.filter(direction=Message.Direction.OUT).select_related("customer", "contact")
    if state == "waiting":
        rows = rows.filter(state__in=Message.OPEN_STATES)
    elif state == "sent":
        rows = rows.filter(state__in=[Message.State.SENT, Message.State.DELIVERED])
    elif state == "problems":
        rows = rows.filter(state__in=[Message.State.FAILED, Message.State.BOUNCED])
    elif state == "skipped":
        rows = rows.filter(state=Message.State.SKIPPED)
    if channel in Channel.values:
        rows = rows.filter(channel=channel)
    if search:
        rows = rows.filter(
            Q(customer__name__icontains=search)
            | Q(to_address__icontains=search)
            | Q(subject__icontains=search)
        )
    page = Paginator(rows.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    problems = Message.objects.filter(state__in=[Message.State.FAILED, Message.State.BOUNCED]).count()
    return render(
        request,
        "desk/outbox.html",
        {
            "page": page,
            "state": state,
            "channel": channel,
            "search": search,
            "states": STATE_FILTERS,
            "channels": Channel.choices,
            "problems": problems,
            "nav": "outbox",
        },
    )


@require_safe
@staff_required
def message_detail(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(
        Message.objects.select_related("customer", "contact", "thread", "dunning_step", "created_by"),
        pk=message_id,
    )
    return render(
        request,
        "desk/message_detail.html",
        {
            "message": message,
            "customer": message.customer,
            "invoices": message.invoices.order_by("due_date"),
            "attachments": message.attachments.order_by("pk"),
            "nav": "outbox",
        },
    )


@require_POST
@collector_required
def message_send_again(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(Message, pk=message_id)
    try:
        again = message_resend(message=message, actor=actor_of(request))
    except ServiceError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("desk:message", args=[message.pk]))
    messages.success(request, "Sent again as a new message.")
    return HttpResponseRedirect(reverse("desk:message", args=[again.pk]))


def _tomorrow(organization: Organization) -> datetime.datetime:
    """Tomorrow at 10:00 where the organization is: when the morning's reminders go out."""
    local = timezone.now().astimezone(organization.tz).date() + datetime.timedelta(days=1)
    return datetime.datetime.combine(local, datetime.time(10), tzinfo=organization.tz)


@require_safe
@staff_required
def reminders_upcoming(request: HttpRequest) -> HttpResponse:
    organization = _organization(request)
    moment = _tomorrow(organization)
    rows = upcoming(organization, moment)
    return render(
        request,
        "desk/reminders_upcoming.html",
        {
            "rows": rows,
            "moment": moment,
            "sending": sum(1 for row in rows if not row.blocked),
            "nav": "outbox",
        },
    )


def _reminder(request: HttpRequest) -> tuple[Customer, DunningStep, int] | None:
    try:
        customer_id = int(request.POST.get("customer", ""))
        step_id = int(request.POST.get("step", ""))
        cycle = int(request.POST.get("cycle", ""))
    except ValueError:
        return None
    customer = Customer.objects.filter(pk=customer_id).first()
    step = DunningStep.objects.filter(pk=step_id).first()
    # A cycle is one of the customer's own invoices (the one that anchors it), never any number.
    if customer is None or step is None or not Invoice.objects.filter(pk=cycle, customer=customer).exists():
        return None
    return customer, step, cycle


@require_POST
@collector_required
def reminder_skip_view(request: HttpRequest) -> HttpResponse:
    found = _reminder(request)
    if found is None:
        messages.error(request, "That reminder is not in the plan any more.")
        return HttpResponseRedirect(reverse("desk:reminders_upcoming"))
    customer, step, cycle = found
    try:
        reminder_skip(customer=customer, step=step, cycle=cycle, actor=actor_of(request))
    except IntegrityError:  # the unique key: already sent or skipped
        messages.error(request, f"The reminder for {customer.name} was already sent or skipped.")
    else:
        messages.success(request, f"The reminder for {customer.name} will not be sent.")
    return HttpResponseRedirect(reverse("desk:reminders_upcoming"))


@require_POST
@collector_required
def reminder_send_now_view(request: HttpRequest) -> HttpResponse:
    found = _reminder(request)
    if found is None:
        messages.error(request, "That reminder is not in the plan any more.")
        return HttpResponseRedirect(reverse("desk:reminders_upcoming"))
    customer, step, cycle = found
    outcome = reminder_send_now(customer=customer, step=step, cycle=cycle, actor=actor_of(request))
    if outcome == "created":
        messages.success(request, f"The reminder for {customer.name} is on its way.")
    else:
        messages.error(request, f"The reminder for {customer.name} was not sent: {outcome}.")
    return HttpResponseRedirect(reverse("desk:reminders_upcoming"))
