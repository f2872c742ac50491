"""The desk nav's disputes badge: ``{% desk_open_disputes as n %}``, one count query."""

from __future__ import annotations

from django import template

from openar.disputes.selectors import open_count
from openar.tenants.access import access_of
from openar.tenants.permissions import Perm

register = template.Library()


@register.simple_tag(takes_context=True)
def desk_open_disputes(context: template.Context) -> int:
    request = context.get("request")
    access = access_of(request) if request is not None else None
    if access is None or not access.can(Perm.DESK_VIEW):
        return 0
    return open_count()
