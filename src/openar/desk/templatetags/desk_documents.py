"""The document types the desk's upload form offers, wherever it is shown (the customer page's
Documents card, the customer's documents page): ``{% document_kinds as kinds %}``."""

from __future__ import annotations

from django import template

from openar.billing.models import Document

register = template.Library()


@register.simple_tag
def document_kinds() -> list[tuple[str, str]]:
    return list(Document.Kind.choices)
