"""Template filters available in every template (registered as a builtin in settings)."""

from __future__ import annotations

from decimal import Decimal

from django import template

from openar.core.money import format_money

register = template.Library()


@register.filter
def money(amount: Decimal | None, currency: str) -> str:
    return format_money(amount, currency)
