"""What the customer's upload form offers, wherever it is shown (the document center, the
upload page, an invoice's page): ``{% portal_upload_kinds as kinds %}``."""

from __future__ import annotations

from django import template

from openar.billing.services import CUSTOMER_UPLOAD_LABELS

register = template.Library()


@register.simple_tag
def portal_upload_kinds() -> list[tuple[str, str]]:
    return list(CUSTOMER_UPLOAD_LABELS.items())
