"""The portal nav's unread badge. It is on every portal page, whose views know nothing of
messages, so the nav asks for it itself: ``{% portal_unread as unread %}``, one query."""

from __future__ import annotations

from django import template

from openar.portal.messages import unread_count
from openar.tenants.access import access_of

register = template.Library()


@register.simple_tag(takes_context=True)
def portal_unread(context: template.Context) -> int:
    request = context.get("request")
    return unread_count(access_of(request)) if request is not None else 0
