"""The desk nav's inbox badge. It is on every desk page, whose views know nothing of
messages, so the nav asks for it itself: ``{% desk_unread as unread %}``, one query."""

from __future__ import annotations

from django import template

from openar.desk.inbox import unread_count
from openar.tenants.access import access_of

register = template.Library()


@register.simple_tag(takes_context=True)
def desk_unread(context: template.Context) -> int:
    request = context.get("request")
    return unread_count(access_of(request)) if request is not None else 0
