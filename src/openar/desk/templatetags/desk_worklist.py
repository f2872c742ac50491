"""The desk customer page's "Work this account" card: ``{% worklist_card customer notes %}``
(``notes``: the creditor client's notes that were unread when the page opened, from
``openar.desk.worklist.creditor_notes_on_open``), with the account's open callbacks, the
call and letter forms and assignment."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from openar.customers.models import Activity, Customer
from openar.customers.services import assignable_collectors
from openar.customers.worklist import active_account_holds
from openar.desk.worklist import OUTCOME_BUTTONS, letter_templates, open_callbacks
from openar.tenants.access import access_of
from openar.tenants.permissions import Perm

register = template.Library()


@register.inclusion_tag("desk/worklist_card.html", takes_context=True)
def worklist_card(
    context: template.Context, customer: Customer, creditor_notes: list[Activity] | None = None
) -> dict[str, Any]:
    request = context.get("request")
    access = access_of(request) if isinstance(request, HttpRequest) else None
    can_collect = access is not None and access.can(Perm.DESK_COLLECT)
    can_assign_anyone = access is not None and access.can(Perm.DESK_ADMIN)
    return {
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "customer": customer,
        "creditor_notes": creditor_notes or [],
        "marked_read": bool(creditor_notes) and can_collect,
        "callbacks": open_callbacks(customer),
        "hold": active_account_holds(timezone.now()).filter(customer=customer).exists(),
        "today": customer.organization.today(),
        "can_collect": can_collect,
        "can_assign_anyone": can_assign_anyone,
        "collectors": assignable_collectors(customer.organization) if can_assign_anyone else [],
        "outcomes": OUTCOME_BUTTONS,
        "letter_templates": letter_templates() if can_collect else [],
        "here": reverse("desk:customer", args=[customer.pk]) + "#work",
    }
