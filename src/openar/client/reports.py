"""Recovery reports for a creditor client: what it placed with the agency, what the agency
collected on it, the agency's fees and what is remitted to the creditor, and apart from
that what the debtors paid the creditor directly and the commission the creditor owes the
agency on it.

The figures
-----------
placed
    The totals of the invoices placed on the creditor's accounts, counted in the month each
    invoice reached the agency.
collected (by the agency)
    Payments the agency received, applied to those invoices (allocations of payments;
    credit notes are not money), counted in the month they were applied; money taken back
    (a returned payment, a refund) counts against the month it was taken back. Money
    received but not yet applied to an invoice is not counted until it is.
fees
    The agency's commission on what it collected: collected × the creditor's commission
    rate, rounded to the currency, per month (per account in the account report).
net remitted
    collected − fees: what the agency pays over to the creditor.
paid to you directly
    Payments the debtors made to the creditor itself (``Payment.Method.DIRECT``, a direct
    payment the creditor reported and staff confirmed), counted like collections, in the
    month they were applied. The creditor kept that money: it is not remitted.
commission on direct payments
    What the creditor owes the agency on those: each payment × the rate kept on its report
    when it was confirmed (the creditor's current rate for a direct payment recorded
    without a report), rounded to the currency.

Months are calendar months in the organization's time zone: the last twelve, the current
one included. Every amount is a Decimal rounded to its currency; figures in different
currencies are never added together (each currency has its own rows). Sums are made by the
database and rounded afterwards (SQLite adds in floating point: the rounding to the
currency's minor unit removes its noise).

An account's figures are in its own currency: an invoice in another currency (the desk's
lists leave those out of an account's balance too) is not added to them.

CSV exports
-----------
``monthly.csv``: ``month`` (YYYY-MM), ``currency``, ``placed``, ``collected_by_agency``,
``fees``, ``net_remitted``, ``paid_to_you_directly``, ``commission_on_direct``, oldest month
first. ``accounts.csv``: ``account_number``, ``name``, ``currency``, ``placed_on``
(YYYY-MM-DD, the organization's date), ``placed``, ``collected_by_agency``, ``fees``,
``net_remitted``, ``paid_to_you_directly``, ``commission_on_direct``, ``open_balance``, by
account number. Amounts are plain decimals with the currency's places ("1234.50"); text
cells that a spreadsheet would run as a formula (whose first character other than spaces
is ``= + - @``, or that start with a tab or a carriage return) are prefixed with ``'``.
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone
from django.utils.html import escape
from django_scopes import scope

from openar.billing.models import Invoice
from openar.core.money import format_money, quantize
from openar.customers.models import Customer
from openar.payments.models import Allocation, Payment
from openar.tenants.models import Creditor

MONTHS = 12
ZERO = Decimal(0)
MONEY = DecimalField(max_digits=19, decimal_places=4)
DIRECT = Q(payment__method=Payment.Method.DIRECT)


@dataclass(frozen=True)
class Figures:
    currency: str
    placed: Decimal
    collected: Decimal  # by the agency
    fees: Decimal  # on what the agency collected
    direct: Decimal = ZERO  # paid to the creditor directly
    direct_fees: Decimal = ZERO  # the commission the creditor owes on ``direct``

    @property
    def net(self) -> Decimal:
        """What the agency remits: its collections less its fees on them."""
        return self.collected - self.fees

    def money(self, name: str) -> str:
        value: Decimal = getattr(self, name)
        return format_money(value, self.currency)


@dataclass(frozen=True, kw_only=True)
class MonthRow(Figures):
    month: datetime.date  # its first day

    @property
    def label(self) -> str:
        return f"{self.month:%b %Y}"


@dataclass(frozen=True, kw_only=True)
class AccountRow(Figures):
    customer: Customer
    open_balance: Decimal


def _dec(value: object) -> Decimal:
    return Decimal(str(value)) if value is not None else ZERO


def fee_of(collected: Decimal, rate: Decimal, currency: str) -> Decimal:
    return quantize(collected * rate, currency)


def _direct_rate(creditor: Creditor) -> Coalesce:
    """An allocation's commission rate on a direct payment: the one kept on its report when
    it was confirmed, else the creditor's current one."""
    return Coalesce(
        F("payment__direct_report__commission_rate"),
        Value(Decimal(creditor.commission_rate or 0)),
        output_field=DecimalField(max_digits=5, decimal_places=4),
    )


def month_starts(today: datetime.date, count: int = MONTHS) -> list[datetime.date]:
    """The first days of the last ``count`` months, oldest first, this month last."""
    year, month = today.year, today.month
    starts = []
    for _ in range(count):
        starts.append(datetime.date(year, month, 1))
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return starts[::-1]


def _month_of(value: datetime.datetime | datetime.date, creditor: Creditor) -> datetime.date:
    if isinstance(value, datetime.datetime):
        if timezone.is_aware(value):
            value = value.astimezone(creditor.organization.tz)
        return value.date().replace(day=1)
    return value.replace(day=1)


def recovery_by_month(creditor: Creditor, *, today: datetime.date | None = None) -> dict[str, list[MonthRow]]:
    """Per currency, one row per month of the last twelve (oldest first), zero months
    included. A currency appears when something was placed or collected in it."""
    organization = creditor.organization
    tz = organization.tz
    today = today or organization.today()
    starts = month_starts(today)
    since = datetime.datetime.combine(starts[0], datetime.time.min, tzinfo=tz)
    placed: dict[tuple[str, datetime.date], Decimal] = {}
    collected: dict[tuple[str, datetime.date], Decimal] = {}
    direct: dict[tuple[str, datetime.date], Decimal] = {}
    direct_fees: dict[tuple[str, datetime.date], Decimal] = {}
    rows = (
        Invoice.objects.filter(creditor=creditor, created_at__gte=since)
        .annotate(month=TruncMonth("created_at", tzinfo=tz))
        .values("month", "currency")
        .annotate(total=Sum("total"))
    )
    for row in rows:
        key = (row["currency"], _month_of(row["month"], creditor))
        placed[key] = placed.get(key, ZERO) + _dec(row["total"])
    allocations = Allocation.objects.filter(payment__isnull=False, invoice__creditor=creditor)
    for field, sign in (("created_at", 1), ("reversed_at", -1)):
        moved = (
            allocations.filter(**{f"{field}__gte": since})
            .exclude(DIRECT)
            .annotate(month=TruncMonth(field, tzinfo=tz))
            .values("month", "invoice__currency")
            .annotate(total=Sum("amount"))
        )
        for moved_row in moved:
            key = (moved_row["invoice__currency"], _month_of(moved_row["month"], creditor))
            collected[key] = collected.get(key, ZERO) + sign * _dec(moved_row["total"])
        moved_direct = (
            allocations.filter(DIRECT, **{f"{field}__gte": since})
            .annotate(month=TruncMonth(field, tzinfo=tz))
            .values("month", "invoice__currency")
            .annotate(total=Sum("amount"), fee=Sum(F("amount") * _direct_rate(creditor), output_field=MONEY))
        )
        for moved_row in moved_direct:
            key = (moved_row["invoice__currency"], _month_of(moved_row["month"], creditor))
            direct[key] = direct.get(key, ZERO) + sign * _dec(moved_row["total"])
            direct_fees[key] = direct_fees.get(key, ZERO) + sign * _dec(moved_row["fee"])
    currencies = sorted({currency for currency, _ in (*placed, *collected, *direct)})
    rate = creditor.commission_rate
    result: dict[str, list[MonthRow]] = {}
    for currency in currencies:
        months = []
        for start in starts:
            got = quantize(collected.get((currency, start), ZERO), currency)
            months.append(
                MonthRow(
                    currency=currency,
                    month=start,
                    placed=quantize(placed.get((currency, start), ZERO), currency),
                    collected=got,
                    fees=fee_of(got, rate, currency),
                    direct=quantize(direct.get((currency, start), ZERO), currency),
                    direct_fees=quantize(direct_fees.get((currency, start), ZERO), currency),
                )
            )
        result[currency] = months
    return result


def totals(rows: Iterable[Figures], currency: str) -> Figures:
    """The sum of rows of one currency (fees as the rows have them: the table adds up)."""
    listed = list(rows)
    return Figures(
        currency=currency,
        placed=sum((row.placed for row in listed), ZERO),
        collected=sum((row.collected for row in listed), ZERO),
        fees=sum((row.fees for row in listed), ZERO),
        direct=sum((row.direct for row in listed), ZERO),
        direct_fees=sum((row.direct_fees for row in listed), ZERO),
    )


def accounts_of(creditor: Creditor) -> QuerySet[Customer]:
    """The creditor's accounts with ``placed_total``, ``collected_total`` (active
    allocations of payments the agency received), ``direct_total`` and ``direct_fee_total``
    (of payments made to the creditor directly) and ``open_total`` annotated, each by its
    own subquery (no join fan-out), counting only invoices in the account's currency."""
    invoices = (
        Invoice.objects.filter(customer=OuterRef("pk"), currency=OuterRef("currency"))
        .order_by()
        .values("customer")
    )
    applied = (
        Allocation.objects.filter(
            invoice__customer=OuterRef("pk"),
            invoice__currency=OuterRef("currency"),
            payment__isnull=False,
            reversed_at__isnull=True,
        )
        .order_by()
        .values("invoice__customer")
    )
    collected = applied.exclude(DIRECT)
    direct = applied.filter(DIRECT)
    return (
        Customer.objects.filter(creditor=creditor)
        .annotate(
            placed_total=Coalesce(
                Subquery(invoices.annotate(s=Sum("total")).values("s")[:1], output_field=MONEY),
                Value(ZERO),
                output_field=MONEY,
            ),
            open_total=Coalesce(
                Subquery(invoices.annotate(s=Sum("open_amount")).values("s")[:1], output_field=MONEY),
                Value(ZERO),
                output_field=MONEY,
            ),
            collected_total=Coalesce(
                Subquery(collected.annotate(s=Sum("amount")).values("s")[:1], output_field=MONEY),
                Value(ZERO),
                output_field=MONEY,
            ),
            direct_total=Coalesce(
                Subquery(direct.annotate(s=Sum("amount")).values("s")[:1], output_field=MONEY),
                Value(ZERO),
                output_field=MONEY,
            ),
            direct_fee_total=Coalesce(
                Subquery(
                    direct.annotate(s=Sum(F("amount") * _direct_rate(creditor), output_field=MONEY)).values(
                        "s"
                    )[:1],
                    output_field=MONEY,
                ),
                Value(ZERO),
                output_field=MONEY,
            ),
        )
        .order_by("number", "pk")
    )


def account_row(customer: Customer, rate: Decimal) -> AccountRow:
    currency = customer.currency
    got = quantize(_dec(getattr(customer, "collected_total", ZERO)), currency)
    return AccountRow(
        currency=currency,
        customer=customer,
        placed=quantize(_dec(getattr(customer, "placed_total", ZERO)), currency),
        collected=got,
        fees=fee_of(got, rate, currency),
        direct=quantize(_dec(getattr(customer, "direct_total", ZERO)), currency),
        direct_fees=quantize(_dec(getattr(customer, "direct_fee_total", ZERO)), currency),
        open_balance=quantize(_dec(getattr(customer, "open_total", ZERO)), currency),
    )


def account_totals(creditor: Creditor) -> list[Figures]:
    """The account report's totals, per currency (summed by the database per account)."""
    by_currency: dict[str, list[AccountRow]] = {}
    rate = creditor.commission_rate
    for customer in accounts_of(creditor).only("pk", "currency", "number"):
        row = account_row(customer, rate)
        by_currency.setdefault(row.currency, []).append(row)
    return [totals(rows, currency) for currency, rows in sorted(by_currency.items())]


# --- the chart ----------------------------------------------------------------------------------

CHART_WIDTH = 640
CHART_HEIGHT = 240
COLLECTED_COLOUR = "#1d4ed8"
NET_COLOUR = "#047857"


def _label_amount(value: Decimal, currency: str) -> str:
    return format_money(value, currency)


def chart_svg(rows: list[MonthRow], *, chart_id: str, table_id: str) -> str:
    """An inline SVG bar chart of what the agency collected and the net it remitted per
    month (two bars a month; payments made to the creditor directly are not in it),
    with a title and description for screen readers and a pointer to the table that holds
    the same figures (``table_id``). Negative months (more taken back than collected) are
    drawn below the baseline."""
    currency = rows[0].currency if rows else "USD"
    values = [value for row in rows for value in (row.collected, row.net)]
    top = max([ZERO, *values])
    bottom = min([ZERO, *values])
    if top == bottom:  # nothing at all: the baseline at the bottom, no bar drawn
        top = Decimal(1)
    span = top - bottom
    left, right, head, foot = 8, 8, 16, 28
    plot_height = CHART_HEIGHT - head - foot
    slot = Decimal(CHART_WIDTH - left - right) / max(len(rows), 1)
    bar = slot * Decimal("0.36")
    baseline = head + float(top / span) * plot_height

    def y_of(value: Decimal) -> float:
        return head + float((top - value) / span) * plot_height

    best = max(rows, key=lambda row: row.collected) if rows else None
    summary = (
        f"Highest collected by the agency: {best.money('collected')} in {best.label}."
        if best and best.collected > 0
        else "Nothing collected in these months."
    )
    parts = [
        f'<svg class="recovery-chart" id="{chart_id}" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" '
        f'width="100%" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        'preserveAspectRatio="xMidYMid meet" focusable="false">',
        f'<title id="{chart_id}-title">Collected by the agency and net remitted per month, '
        f"{escape(currency)}</title>",
        f'<desc id="{chart_id}-desc">Two bars per month for the last {len(rows)} months: collected by '
        f"the agency (blue) and net remitted (green); payments made to you directly are not in "
        f"these bars. {escape(summary)} "
        "The table “Month by month” below gives every figure.</desc>",
        f'<line x1="{left}" y1="{baseline:.1f}" x2="{CHART_WIDTH - right}" y2="{baseline:.1f}" '
        'stroke="#6b7280" stroke-width="1"/>',
    ]
    for index, row in enumerate(rows):
        x0 = left + float(slot * index + (slot - bar * 2) / 2)
        for offset, value, colour, name in (
            (0.0, row.collected, COLLECTED_COLOUR, "collected by the agency"),
            (float(bar), row.net, NET_COLOUR, "net remitted"),
        ):
            y = y_of(value)
            top_y, height = (y, baseline - y) if value >= 0 else (baseline, y - baseline)
            parts.append(
                f'<rect x="{x0 + offset:.1f}" y="{top_y:.1f}" width="{float(bar):.1f}" '
                f'height="{max(height, 0):.1f}" fill="{colour}">'
                f"<title>{escape(row.label)}: {escape(name)} "
                f"{escape(format_money(value, row.currency))}</title></rect>"
            )
        parts.append(
            f'<text x="{x0 + float(bar):.1f}" y="{CHART_HEIGHT - 8}" text-anchor="middle" '
            f'font-size="11" fill="#374151">{row.month:%b}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --- CSV ----------------------------------------------------------------------------------------


def _cell(value: str) -> str:
    """Text a spreadsheet must not run as a formula gets a leading apostrophe: one that
    starts with a tab or a carriage return, or whose first character other than spaces is
    ``= + - @`` (spreadsheets skip leading spaces)."""
    if value and (value[0] in "\t\r" or value.lstrip()[:1] in ("=", "+", "-", "@")):
        return "'" + value
    return value


def _amount(value: Decimal, currency: str) -> str:
    return format(quantize(value, currency), "f")


MONTHLY_COLUMNS = (
    "month",
    "currency",
    "placed",
    "collected_by_agency",
    "fees",
    "net_remitted",
    "paid_to_you_directly",
    "commission_on_direct",
)
ACCOUNT_COLUMNS = (
    "account_number",
    "name",
    "currency",
    "placed_on",
    "placed",
    "collected_by_agency",
    "fees",
    "net_remitted",
    "paid_to_you_directly",
    "commission_on_direct",
    "open_balance",
)


def _csv_line(values: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(list(values))
    return buffer.getvalue()


def monthly_csv(creditor: Creditor, *, today: datetime.date | None = None) -> str:
    lines = [_csv_line(MONTHLY_COLUMNS)]
    for currency, rows in recovery_by_month(creditor, today=today).items():
        for row in rows:
            lines.append(
                _csv_line(
                    [
                        f"{row.month:%Y-%m}",
                        currency,
                        _amount(row.placed, currency),
                        _amount(row.collected, currency),
                        _amount(row.fees, currency),
                        _amount(row.net, currency),
                        _amount(row.direct, currency),
                        _amount(row.direct_fees, currency),
                    ]
                )
            )
    return "".join(lines)


def accounts_csv_lines(creditor: Creditor, *, chunk: int = 500) -> Iterator[str]:
    """The account report as CSV, streamed a chunk of accounts at a time. Each chunk is read
    inside the organization's scope, entered here: the response is streamed after the view
    (and the request's scope) has returned. Chunks follow the account number, unique in the
    organization."""
    yield _csv_line(ACCOUNT_COLUMNS)
    organization = creditor.organization
    tz = organization.tz
    rate = creditor.commission_rate
    after: str | None = None
    while True:
        with scope(organization=organization):
            accounts = accounts_of(creditor)
            if after is not None:
                accounts = accounts.filter(number__gt=after)
            found = list(accounts[:chunk])
        lines = []
        for customer in found:
            row = account_row(customer, rate)
            currency = row.currency
            placed_on = customer.placed_at.astimezone(tz).date().isoformat() if customer.placed_at else ""
            lines.append(
                _csv_line(
                    [
                        _cell(customer.number),
                        _cell(customer.name),
                        currency,
                        placed_on,
                        _amount(row.placed, currency),
                        _amount(row.collected, currency),
                        _amount(row.fees, currency),
                        _amount(row.net, currency),
                        _amount(row.direct, currency),
                        _amount(row.direct_fees, currency),
                        _amount(row.open_balance, currency),
                    ]
                )
            )
        if lines:
            yield "".join(lines)
        if len(found) < chunk:
            return
        after = found[-1].number
