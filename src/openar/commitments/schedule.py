"""The arithmetic of a payment plan: the dates of its payments and equal installments in
the currency's minor unit. Pure functions (no database)."""

from __future__ import annotations

import calendar
import datetime
from decimal import ROUND_DOWN, Decimal

from openar.core.money import exponent

STEP_DAYS = {"weekly": 7, "biweekly": 14}


def add_months(day: datetime.date, months: int) -> datetime.date:
    """The same day ``months`` later, or the month's last day when it has no such day
    (31 January + 1 month = 28 or 29 February; + 2 months = 31 March)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def nth_date(first: datetime.date, frequency: str, n: int) -> datetime.date:
    """The date of the payment ``n`` periods after ``first`` (n = 0 is ``first``): weekly
    +7 days, biweekly +14, monthly the same day of the month (clamped to the month's end),
    always counted from ``first`` so that a clamped month does not shift the next ones."""
    if frequency == "monthly":
        return add_months(first, n)
    return first + datetime.timedelta(days=STEP_DAYS[frequency] * n)


def split(amount: Decimal, count: int, currency: str) -> list[Decimal]:
    """``amount`` in ``count`` equal parts of the currency's minor unit, rounded down, the
    remainder on the last one (so the last is never the smallest)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    unit = Decimal(1).scaleb(-exponent(currency))
    part = (amount / count).quantize(unit, rounding=ROUND_DOWN)
    return [part] * (count - 1) + [amount - part * (count - 1)]


def payment_dates(
    first: datetime.date, frequency: str, installment_count: int, *, down_payment: bool
) -> list[tuple[int, datetime.date]]:
    """(number, date) of each payment. With a down payment, it is number 0 on ``first`` and
    the installments 1..n follow one period apart; without, installment 1 is on ``first``."""
    if down_payment:
        return [(0, first)] + [(n, nth_date(first, frequency, n)) for n in range(1, installment_count + 1)]
    return [(n, nth_date(first, frequency, n - 1)) for n in range(1, installment_count + 1)]
