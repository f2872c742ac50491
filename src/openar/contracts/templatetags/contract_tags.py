"""Contracts on pages whose views know nothing of them.

- ``{% portal_has_contracts as has %}``: whether the portal session may see any contract
  sent to its customer (the nav shows "Contracts" only then, or while on a contract page):
  never for a sign-in link to one invoice or to what is past due, only its own contract
  for a link to one contract; one or two queries.
- ``{% contracts_card customer %}``: the desk customer page's "Contracts" card.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest

from openar.contracts.models import Contract
from openar.contracts.services import effective_state
from openar.contracts.views_common import sees_contracts, session_contracts
from openar.customers.models import Customer
from openar.tenants.access import access_of

register = template.Library()
CARD_ROWS = 10


@register.simple_tag(takes_context=True)
def portal_has_contracts(context: template.Context) -> bool:
    request = context.get("request")
    if not isinstance(request, HttpRequest):
        return False
    access = access_of(request)
    if access is None or access.customer is None or not sees_contracts(access):
        return False
    return session_contracts(request, access).exists()


@register.inclusion_tag("desk/contracts_card.html", takes_context=True)
def contracts_card(context: template.Context, customer: Customer) -> dict[str, Any]:
    today = customer.organization.today()
    contracts = list(
        Contract.objects.filter(customer=customer).order_by("-created_at", "-pk")[: CARD_ROWS + 1]
    )
    return {
        "request": context.get("request"),
        "customer": customer,
        "rows": [(c, effective_state(c, today)) for c in contracts[:CARD_ROWS]],
        "more": len(contracts) > CARD_ROWS,
    }


@register.simple_tag
def contract_badge(state: str) -> str:
    """The badge class of a state."""
    badges: dict[str, str] = {
        Contract.State.SIGNED: "badge--paid",
        Contract.State.SENT: "badge--open",
        Contract.State.DRAFT: "badge--internal",
        Contract.State.EXPIRED: "badge--late",
    }
    return badges.get(state, "")


@register.filter
def state_label(state: str) -> str:
    return str(dict(Contract.State.choices).get(state, state))
