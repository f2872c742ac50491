"""Fast, deterministic bulk data for benchmarks: ``openar seed``.

One organization is filled with customers (each with a contact and a user who can sign in to
the portal), invoices with their lines, and the payments and allocations that explain every
invoice's open amount, so that ``openar check ledger`` passes.

Rows are generated as text in Python and bypass the ORM: PostgreSQL receives them through
``COPY ... FROM STDIN`` from a second thread, so that generating the next chunk overlaps with
the server storing the previous one; SQLite through ``executemany``. This module reserves the
ids itself and advances the sequences afterwards. Everything happens in one transaction: the
data is all there or not at all.

On PostgreSQL, a seed also avoids the deferred foreign-key check of every row (millions of
them, all run at commit, at tens of microseconds each): as a superuser it sets
``session_replication_role = replica`` for the transaction, as pg_restore does, since the
generator only refers to rows it has just reserved and written. For each table that receives
at least as many rows as it holds, it drops the non-unique secondary indexes and builds them
again at the end (one sorted build is several times cheaper than maintaining them row by row)
and, without superuser rights, drops the foreign keys and adds them back, which validates each
with one query. Those take strong locks on the tables until the commit: seed before serving.

Same arguments, same data: the only other inputs are today's date and the ids the database
hands out (identical in a fresh database).
"""

from __future__ import annotations

import contextlib
import datetime
import queue
import random
import string
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import connection, models, transaction
from django_scopes import scopes_disabled

from openar.billing.models import Invoice, InvoiceLine
from openar.core.errors import ServiceError
from openar.customers.models import Contact, Customer
from openar.identity.models import User
from openar.payments.models import Allocation, Payment
from openar.tenants.models import Creditor, Membership, Organization

PASSWORD = "bench-password"  # noqa: S105  (every seeded customer's, for benchmarks)
HISTORY_DAYS = 548  # invoices are issued over the last ~18 months
INVOICES_PER_CHUNK = 40_000  # rows are generated and sent in chunks of about this many invoices

# The columns written, in COPY order. `_check_columns` compares them with the models, so that a
# new column makes the seed fail with a clear message instead of writing incomplete rows.
USER_COLUMNS = (
    "id", "password", "last_login", "is_superuser", "email", "full_name", "is_active", "is_staff",
    "date_joined", "must_change_password",
)
CUSTOMER_COLUMNS = (
    "id", "number", "name", "currency", "email", "phone", "address_line1", "address_line2", "city",
    "region", "postal_code", "country", "payment_terms_days", "placed_at", "segment", "created_at",
    "assigned_collector_id", "creditor_id", "organization_id",
)
CONTACT_COLUMNS = (
    "id", "name", "title", "email", "phone", "is_primary", "consent_email", "consent_sms",
    "language", "timezone", "email_problem", "phone_problem",
    "created_at", "organization_id", "user_id", "customer_id",
)
MEMBERSHIP_COLUMNS = (
    "id", "role", "is_active", "created_at", "creditor_id", "customer_id", "user_id",
    "organization_id",
)
INVOICE_COLUMNS = (
    "id", "number", "po_number", "issue_date", "due_date", "currency", "subtotal", "tax_total",
    "total", "open_amount", "closed_at", "notes", "created_at", "creditor_id", "customer_id",
    "organization_id",
)
LINE_COLUMNS = (
    "id", "position", "sku", "description", "quantity", "unit_price", "tax_rate", "net_amount",
    "tax_amount", "invoice_id", "organization_id",
)
PAYMENT_COLUMNS = (
    "id", "amount", "currency", "method", "state", "reference", "received_at", "idempotency_key",
    "provider", "provider_payment_id", "checkout_token", "fee_amount", "refunded_amount",
    "short_pay_reason", "failure_message", "settled_at",
    "created_at", "updated_at", "contact_id", "creditor_id", "customer_id", "organization_id",
    "recorded_by_id", "saved_method_id", "returned_amount",
)
ALLOCATION_COLUMNS = (
    "id", "amount", "created_at", "reversed_at", "credit_note_id", "invoice_id", "organization_id",
    "payment_id",
)


@dataclass(frozen=True)
class _Table:
    key: str
    model: type[models.Model]
    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.model._meta.db_table


TABLES = (
    _Table("users", User, USER_COLUMNS),
    _Table("customers", Customer, CUSTOMER_COLUMNS),
    _Table("contacts", Contact, CONTACT_COLUMNS),
    _Table("memberships", Membership, MEMBERSHIP_COLUMNS),
    _Table("invoices", Invoice, INVOICE_COLUMNS),
    _Table("lines", InvoiceLine, LINE_COLUMNS),
    _Table("payments", Payment, PAYMENT_COLUMNS),
    _Table("allocations", Allocation, ALLOCATION_COLUMNS),
)

# --- What the data is made of (no tab, newline or backslash: rows are COPY text as they are) --

_NAME_FIRST = (
    "Harbor", "Maple", "Summit", "Riverside", "Granite", "Oak", "Cedar", "Lakeview", "Pioneer",
    "Beacon", "Northgate", "Sterling", "Copper", "Ironwood", "Bayside", "Prairie", "Redwood",
    "Bluewater", "Eastfield", "Westbrook", "Highland", "Silverline", "Keystone", "Evergreen",
    "Frontier", "Meadow", "Stonebridge", "Crescent", "Union", "Liberty", "Atlas", "Horizon",
)
_NAME_SECOND = (
    "Hardware", "Builders", "Plumbing", "Electric", "Contractors", "Renovations", "Supply",
    "Facilities", "Construction", "Mechanical", "Homes", "Property Services", "Roofing",
    "Landscaping", "Flooring", "Heating & Cooling", "Cabinets", "Glass", "Paving", "Interiors",
)
_NAME_SUFFIX = ("Inc.", "LLC", "Ltd.", "Co.", "Corp.", "& Sons", "Group", "Partners")
_PEOPLE_FIRST = (
    "Dana", "Luis", "Priya", "Tom", "Aiko", "Sam", "Marie", "Kwame", "Elena", "Jordan", "Mei",
    "Omar", "Grace", "Noah", "Fatima", "Liam", "Sofia", "Ethan", "Chloe", "Raj", "Hannah", "Diego",
    "Olivia", "Ben", "Yara", "Victor", "Nina", "Hugo", "Ines", "Kai",
)
_PEOPLE_LAST = (
    "Whitfield", "Ortega", "Raman", "Becker", "Tanaka", "Okafor", "Dubois", "Mensah", "Petrova",
    "Hayes", "Lin", "Haddad", "Kim", "Fischer", "Khan", "Murphy", "Rossi", "Walsh", "Nguyen",
    "Patel", "Schmidt", "Alvarez", "Brown", "Cohen", "Silva", "Novak", "Larsen", "Moreau", "Costa",
)
_TITLES = ("Accounts payable", "Controller", "Office manager", "Owner", "Bookkeeper", "CFO")
_STREETS = (
    "Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "River",
    "Church", "Mill", "Spring", "Ridge", "Sunset", "Industrial", "Commerce", "Market", "Harbor",
)
_STREET_KINDS = ("St", "Ave", "Rd", "Blvd", "Dr", "Way", "Ln", "Pkwy")
# (city, region, postal code prefix, sales tax rate in hundredths of a percent)
_PLACES = (
    ("Seattle", "WA", "981", 1025), ("Portland", "OR", "972", 0), ("Denver", "CO", "802", 881),
    ("Austin", "TX", "787", 825), ("Chicago", "IL", "606", 1025), ("Columbus", "OH", "432", 750),
    ("Atlanta", "GA", "303", 890), ("Boston", "MA", "021", 625), ("Phoenix", "AZ", "850", 860),
    ("Raleigh", "NC", "276", 725), ("Nashville", "TN", "372", 925), ("Madison", "WI", "537", 550),
    ("Boise", "ID", "837", 600), ("Omaha", "NE", "681", 700), ("Wilmington", "DE", "198", 0),
    ("Albany", "NY", "122", 800), ("Richmond", "VA", "232", 600), ("Tampa", "FL", "336", 750),
)
# (sku, description, unit price in cents)
_PRODUCTS = (
    ("PLB-1020", "Copper pipe 15 mm, 3 m", 1840), ("PLB-2204", "Brass ball valve 3/4 in", 1295),
    ("PLB-3310", "PEX tubing 1/2 in, 100 ft", 4699), ("PLB-4102", "Water heater 50 gal", 62900),
    ("ELC-0310", "LED panel 600x600 40 W", 5400), ("ELC-1188", "Cable 12/2 NM-B, 250 ft", 11900),
    ("ELC-2050", "Breaker 20 A single pole", 1389), ("ELC-3300", "Load center 200 A", 24950),
    ("HVC-0050", "Ventilation duct 5 in", 2210), ("HVC-1120", "Heat pump 3 ton", 389000),
    ("HVC-2210", "Thermostat, programmable", 8900), ("HVC-3005", "Air filter MERV 11, case", 6420),
    ("FST-0901", "Stainless screws, box of 500", 3175),
    ("FST-1210", "Anchor bolts, box of 50", 2740),
    ("TLS-4410", "Cordless drill 18 V kit", 18900), ("TLS-5020", "Circular saw 7-1/4 in", 15900),
    ("SAF-0012", "Safety gloves, pair", 480), ("SAF-0150", "Hard hat, class E", 2395),
    ("PNT-7781", "Primer, 5 gal", 6450), ("PNT-7902", "Exterior paint, 5 gal", 21900),
    ("TIM-3300", "Pine stud 2x4, 8 ft", 489), ("TIM-4410", "Plywood 3/4 in, 4x8", 5890),
    ("CON-1001", "Concrete mix, 80 lb", 645), ("CON-2040", "Rebar #4, 20 ft", 1275),
    ("RFG-0110", "Asphalt shingles, bundle", 3690), ("RFG-0220", "Roof underlayment roll", 8900),
    ("SRV-0100", "Delivery, local", 7500), ("SRV-0200", "Installation labor, hour", 9500),
)
_QUANTITIES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 24)
_BIG_QUANTITIES = (1, 1, 2, 3)  # for items of $200 and more
# (payment method, reference prefix); a customer always pays the same way
_METHODS = (
    ("ach", "ACH"), ("ach", "ACH"), ("check", "CHK"), ("check", "CHK"), ("wire", "WIR"),
    ("card", "CRD"), ("eft", "EFT"),
)
_TERMS = (15, 30, 30, 30, 30, 45, 60)
# Payer classes: (share of customers, days paid after the due date as (mean, spread),
# probabilities (paid, partly paid) for an invoice not yet due, up to 60 days past due, older).
_PAYERS = (
    (0.70, (-4, 14), ((0.22, 0.05), (0.70, 0.10), (0.96, 0.02))),
    (0.25, (18, 30), ((0.08, 0.07), (0.45, 0.20), (0.85, 0.07))),
    (0.05, (45, 40), ((0.02, 0.05), (0.10, 0.25), (0.40, 0.25))),
)
_GOOD_PAYERS = _PAYERS[0][0]
_SLOW_PAYERS = _PAYERS[0][0] + _PAYERS[1][0]
_LINES_2 = 0.85  # below: one line; up to _LINES_3: two lines; above: three
_LINES_3 = 0.97
_NULL = "\\N"


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _check_columns() -> None:
    for table in TABLES:
        actual = {str(f.column) for f in table.model._meta.concrete_fields}
        written = set(table.columns)
        if actual != written:
            raise ServiceError(
                f"openar.seed is out of date with {table.name}: it does not write "
                f"{sorted(actual - written)} and writes {sorted(written - actual)}, "
                "which the model lacks."
            )


@dataclass
class _Counts:
    rows: dict[str, int] = field(default_factory=lambda: {t.key: 0 for t in TABLES})
    paid: int = 0
    partial: int = 0
    current: int = 0
    past_due: int = 0


class _Generator:
    """Makes the rows as COPY text lines, customer after customer, from one random.Random.

    The hot loop is written for CPython's speed: locals instead of attributes, precomputed
    strings (dates, timestamps, invoice lines), integer cents, few calls per row.
    """

    def __init__(
        self,
        *,
        rng: random.Random,
        customers: int,
        invoices_per_customer: int,
        organization_id: int,
        creditor_id: int,
        domain: str,
        first_ids: dict[str, int],
        today: datetime.date,
        password_hash: str,
        postgres: bool,
    ) -> None:
        self.rng = rng
        self.customers = customers
        self.per_customer = invoices_per_customer
        self.organization_id = organization_id
        self.creditor_id = creditor_id
        self.domain = domain
        self.next_ids = dict(first_ids)
        self.counts = _Counts()
        self.password_hash = password_hash
        # How each backend spells booleans and aware timestamps (UTC) in its text form.
        self.true, self.false = ("t", "f") if postgres else ("1", "0")
        zone = "+00" if postgres else ""
        self.customer_digits = max(7, len(str(customers)))
        self.invoice_digits = max(8, len(str(customers * invoices_per_customer)))
        self.invoice_serial = 0
        # Days are indexes into these lists; `today_index` is today. Due dates lie at most 60
        # days after an issue date, so 100 days past today are enough.
        self.today_index = HISTORY_DAYS + 10
        origin = today - datetime.timedelta(days=self.today_index)
        self.dates = [
            (origin + datetime.timedelta(days=i)).isoformat() for i in range(self.today_index + 100)
        ]
        # Times of day vary with the day, so that timestamps are not all alike.
        self.issued_at = [
            f"{d} {8 + i % 9:02d}:{i * 7 % 60:02d}:{i * 13 % 60:02d}{zone}"
            for i, d in enumerate(self.dates)
        ]
        self.paid_at = [
            f"{d} {10 + i % 7:02d}:{i * 11 % 60:02d}:{i * 17 % 60:02d}{zone}"
            for i, d in enumerate(self.dates)
        ]
        # Invoice lines per tax rate, as (the middle of the line's row, net cents, tax cents,
        # net text, tax text, total text): a line is then one random pick and a short f-string.
        self.lines: dict[int, list[tuple[str, int, int, str, str, str]]] = {}
        for rate in sorted({place[3] for place in _PLACES}):
            choices = []
            for sku, description, price in _PRODUCTS:
                for quantity in _QUANTITIES if price < 20000 else _BIG_QUANTITIES:
                    net = quantity * price
                    tax = (net * rate + 5000) // 10000  # half up to the cent
                    choices.append((
                        f"{sku}\t{description}\t{quantity}.000\t{_money(price)}\t0.{rate:04d}\t"
                        f"{_money(net)}\t{_money(tax)}",
                        net, tax, _money(net), _money(tax), _money(net + tax),
                    ))
            self.lines[rate] = choices
        # Payments' idempotency keys: 64 random bits of this run, then the payment id (unique),
        # written as PostgreSQL's uuid type or Django's 32 hex digits elsewhere.
        bits = f"{rng.getrandbits(64):016x}"
        dash = "-" if postgres else ""
        self.key_prefix = dash.join((bits[:8], bits[8:12], "8" + bits[13:16], "8000")) + dash

    def chunks(self) -> Iterator[dict[str, list[str]]]:
        per_chunk = max(1, INVOICES_PER_CHUNK // max(1, self.per_customer))
        first, size = 0, max(1, per_chunk // 8)  # a small first chunk: the server starts sooner
        while first < self.customers:
            stop = min(self.customers, first + size)
            yield self._chunk(first, stop)
            first, size = stop, per_chunk

    def _chunk(self, first: int, stop: int) -> dict[str, list[str]]:
        r = self.rng.random
        org, creditor = self.organization_id, self.creditor_id
        true, false, null = self.true, self.false, _NULL
        domain, password = self.domain, self.password_hash
        dates, issued_at, paid_at = self.dates, self.issued_at, self.paid_at
        today_index, per_customer = self.today_index, self.per_customer
        gap = HISTORY_DAYS / per_customer if per_customer else 0.0
        customer_digits, invoice_digits = self.customer_digits, self.invoice_digits
        key_prefix = self.key_prefix
        ids = self.next_ids
        user_id, customer_id = ids["users"], ids["customers"]
        contact_id, membership_id = ids["contacts"], ids["memberships"]
        invoice_id, line_id = ids["invoices"], ids["lines"]
        payment_id, allocation_id = ids["payments"], ids["allocations"]
        serial = self.invoice_serial
        paid_n = partial_n = current_n = past_due_n = 0

        users: list[str] = []
        customers: list[str] = []
        contacts: list[str] = []
        memberships: list[str] = []
        invoices: list[str] = []
        lines: list[str] = []
        payments: list[str] = []
        allocations: list[str] = []
        add_invoice, add_line = invoices.append, lines.append
        add_payment, add_allocation = payments.append, allocations.append

        for c in range(first, stop):
            number = f"C{c + 1:0{customer_digits}d}"
            email = f"{number.lower()}@{domain}"
            name = (
                f"{_NAME_FIRST[int(r() * len(_NAME_FIRST))]} "
                f"{_NAME_SECOND[int(r() * len(_NAME_SECOND))]} "
                f"{_NAME_SUFFIX[int(r() * len(_NAME_SUFFIX))]}"
            )
            person = (
                f"{_PEOPLE_FIRST[int(r() * len(_PEOPLE_FIRST))]} "
                f"{_PEOPLE_LAST[int(r() * len(_PEOPLE_LAST))]}"
            )
            city, region, postal, rate = _PLACES[int(r() * len(_PLACES))]
            phone = f"+1 555 {int(r() * 9000) + 1000}"
            street = (
                f"{int(r() * 9800) + 100} {_STREETS[int(r() * len(_STREETS))]} "
                f"{_STREET_KINDS[int(r() * len(_STREET_KINDS))]}"
            )
            terms = _TERMS[int(r() * len(_TERMS))]
            method, reference = _METHODS[int(r() * len(_METHODS))]
            x = r()
            payer = _PAYERS[0 if x < _GOOD_PAYERS else 1 if x < _SLOW_PAYERS else 2]
            late_mean, late_spread = payer[1]
            (p_new, q_new), (p_mid, q_mid), (p_old, q_old) = payer[2]
            postal_code = f"{postal}{int(r() * 90) + 10}"
            title = _TITLES[int(r() * len(_TITLES))]
            choices = self.lines[rate]
            n_choices = len(choices)
            invoice_end = f"\t{creditor}\t{customer_id}\t{org}\n"
            payment_end = f"\t{creditor}\t{customer_id}\t{org}\t{null}\t{null}\t0\n"
            first_day = today_index - HISTORY_DAYS

            for j in range(per_customer):
                # Issued in order over the history, one per slot of `gap` days, anywhere in it.
                age = int(HISTORY_DAYS - (j + r()) * gap)
                if age < 0:
                    age = 0
                day = today_index - age
                if j == 0:
                    first_day = day
                serial += 1
                x = r()
                line = choices[int(r() * n_choices)]
                add_line(f"{line_id}\t1\t{line[0]}\t{invoice_id}\t{org}\n")
                line_id += 1
                if x < _LINES_2:
                    subtotal_text, tax_text, total_text = line[3], line[4], line[5]
                    total = line[1] + line[2]
                else:
                    subtotal, tax = line[1], line[2]
                    for position in range(2, 3 if x < _LINES_3 else 4):
                        line = choices[int(r() * n_choices)]
                        add_line(f"{line_id}\t{position}\t{line[0]}\t{invoice_id}\t{org}\n")
                        line_id += 1
                        subtotal += line[1]
                        tax += line[2]
                    total = subtotal + tax
                    subtotal_text = f"{subtotal // 100}.{subtotal % 100:02d}"
                    tax_text = f"{tax // 100}.{tax % 100:02d}"
                    total_text = f"{total // 100}.{total % 100:02d}"
                # The older the invoice, the likelier it is paid.
                overdue = age - terms
                if overdue <= 0:
                    p_paid, p_partial = p_new, q_new
                elif overdue <= 60:
                    p_paid, p_partial = p_mid, q_mid
                else:
                    p_paid, p_partial = p_old, q_old
                x = r()
                # A customer's purchase orders follow its own sequence; a few invoices have none.
                po = f"PO-{(serial * 7919 + c * 104729) % 900000 + 100000}" if serial % 29 else ""
                if x < p_paid + p_partial:
                    # One payment, received around the due date, never before the issue date
                    # nor after today, allocated to this invoice.
                    paid_age = age - terms - int(late_mean + (r() - 0.5) * late_spread)
                    if paid_age > age:
                        paid_age = age
                    elif paid_age < 0:
                        paid_age = 0
                    stamp = paid_at[today_index - paid_age]
                    if x < p_paid:
                        amount_text, open_text, closed = total_text, "0.00", stamp
                        paid_n += 1
                    else:
                        part = total * int(1 + r() * 3) // 4
                        rest = total - part
                        amount_text = f"{part // 100}.{part % 100:02d}"
                        open_text, closed = f"{rest // 100}.{rest % 100:02d}", null
                        partial_n += 1
                    add_payment(
                        f"{payment_id}\t{amount_text}\tUSD\t{method}\tsucceeded\t"
                        f"{reference}-{payment_id:08d}\t{stamp}\t{key_prefix}{payment_id:012x}\t"
                        f"\t\t\t0\t0\t\t\t{stamp}\t"
                        f"{stamp}\t{stamp}\t{null}{payment_end}"
                    )
                    add_allocation(
                        f"{allocation_id}\t{amount_text}\t{stamp}\t{null}\t{null}\t{invoice_id}\t"
                        f"{org}\t{payment_id}\n"
                    )
                    payment_id += 1
                    allocation_id += 1
                else:
                    open_text, closed = total_text, null
                    if overdue > 0:
                        past_due_n += 1
                    else:
                        current_n += 1
                add_invoice(
                    f"{invoice_id}\tINV-{serial:0{invoice_digits}d}\t{po}\t{dates[day]}\t"
                    f"{dates[day + terms]}\tUSD\t{subtotal_text}\t{tax_text}\t{total_text}\t"
                    f"{open_text}\t{closed}\t\t{issued_at[day]}{invoice_end}"
                )
                invoice_id += 1

            # The customer came a month before its first invoice (or the history's start).
            joined = issued_at[first_day - 30 if first_day >= 30 else 0]
            users.append(
                f"{user_id}\t{password}\t{null}\t{false}\t{email}\t{person}\t{true}\t{false}\t"
                f"{joined}\t{false}\n"
            )
            customers.append(
                f"{customer_id}\t{number}\t{name}\tUSD\t{email}\t{phone}\t{street}\t\t{city}\t"
                f"{region}\t{postal_code}\tUS\t{terms}\t{null}\t\t{joined}\t{null}\t{creditor}\t"
                f"{org}\n"
            )
            contacts.append(
                f"{contact_id}\t{person}\t{title}\t{email}\t{phone}\t{true}\t{true}\t{false}\t"
                f"en\t\t\t\t{joined}\t{org}\t{user_id}\t{customer_id}\n"
            )
            memberships.append(
                f"{membership_id}\tcustomer\t{true}\t{joined}\t{null}\t{customer_id}\t{user_id}\t"
                f"{org}\n"
            )
            user_id += 1
            customer_id += 1
            contact_id += 1
            membership_id += 1

        ids.update(
            users=user_id, customers=customer_id, contacts=contact_id, memberships=membership_id,
            invoices=invoice_id, lines=line_id, payments=payment_id, allocations=allocation_id,
        )
        self.invoice_serial = serial
        counts = self.counts
        counts.paid += paid_n
        counts.partial += partial_n
        counts.current += current_n
        counts.past_due += past_due_n
        chunk = {
            "users": users, "customers": customers, "contacts": contacts,
            "memberships": memberships,
            "invoices": invoices, "lines": lines, "payments": payments, "allocations": allocations,
        }
        for key, rows in chunk.items():
            counts.rows[key] += len(rows)
        return chunk


# --- Loading ---------------------------------------------------------------------------------


def _quoted(columns: Sequence[str]) -> str:
    return ", ".join(f'"{column}"' for column in columns)


class _CopyThread(threading.Thread):
    """Runs the COPY statements while the main thread generates the next chunk.

    It uses the main thread's raw psycopg connection, inside its transaction; the main thread
    does not touch the connection again before ``close`` has joined this thread.
    """

    def __init__(self, raw: Any) -> None:
        super().__init__(name="openar-seed-copy", daemon=True)
        self.raw = raw
        self.jobs: queue.Queue[tuple[str, str] | None] = queue.Queue(maxsize=8)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.raw.cursor() as cursor:
                while (job := self.jobs.get()) is not None:
                    statement, data = job
                    with cursor.copy(statement) as copy:
                        copy.write(data)
        except BaseException as exc:  # handed over to the main thread by put() and close()
            self.error = exc
            while self.jobs.get() is not None:
                pass

    def put(self, statement: str, data: str) -> None:
        if self.error is not None:
            raise self.error
        self.jobs.put((statement, data))

    def close(self) -> None:
        self.jobs.put(None)
        self.join()
        if self.error is not None:
            raise self.error

    def cancel(self) -> None:
        """Stop soon: drop the jobs not started and cancel the COPY under way."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.jobs.get_nowait()
        with contextlib.suppress(Exception):
            self.raw.cancel_safe()
        with contextlib.suppress(Exception):
            self.close()


class _Loader:
    """Writes the generated chunks into one kind of database."""

    def __init__(self) -> None:
        connection.ensure_connection()
        self.raw: Any = connection.connection
        self.index_seconds = 0.0

    def reserve_ids(self) -> dict[str, int]:
        raise NotImplementedError

    def prepare(self, customers: int, invoices: int) -> None:
        """Before the first chunk, with the numbers of customers and invoices to come."""

    def write(self, chunk: dict[str, list[str]]) -> None:
        raise NotImplementedError

    def finish(self, first_ids: dict[str, int], next_ids: dict[str, int]) -> None:
        """After the last chunk."""

    def abort(self) -> None:
        """When generating failed, before the transaction is rolled back."""


class _PostgresLoader(_Loader):
    PER_INVOICE = frozenset({"invoices", "lines", "payments", "allocations"})

    def __init__(self) -> None:
        super().__init__()
        self.sequences: dict[str, str] = {}
        self.indexes: list[str] = []  # CREATE INDEX statements to run again after the load
        self.foreign_keys: list[tuple[str, str, str]] = []  # (table, constraint, definition)
        self.copier: _CopyThread | None = None
        self.statements = {
            t.key: f"COPY {t.name} ({_quoted(t.columns)}) FROM STDIN" for t in TABLES
        }

    def reserve_ids(self) -> dict[str, int]:
        ids = {}
        with connection.cursor() as cursor:
            # Nobody else inserts into these tables before we commit, so the ids after the
            # highest one in use are ours. Readers are not blocked (until indexes are dropped).
            names = ", ".join(t.name for t in TABLES)
            cursor.execute(f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE")
            for table in TABLES:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table.name])
                sequence = cursor.fetchone()[0]
                if not sequence:
                    raise ServiceError(f"{table.name}.id has no sequence to reserve ids from.")
                self.sequences[table.key] = sequence
                cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608
                last_value, is_called = cursor.fetchone()
                cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table.name}")  # noqa: S608
                highest = cursor.fetchone()[0]
                ids[table.key] = max(highest, last_value if is_called else last_value - 1) + 1
        return ids

    def prepare(self, customers: int, invoices: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            superuser = bool(cursor.fetchone()[0])
            if superuser:
                # No foreign-key trigger fires for the rows of this transaction (pg_restore's
                # way): the generator only refers to rows it has just written.
                cursor.execute("SET LOCAL session_replication_role = replica")
            else:
                # Run the checks pending for the organization and creditor rows now: a table
                # with pending trigger events cannot be altered.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            for table in TABLES:
                coming = invoices if table.key in self.PER_INVOICE else customers
                if not coming:
                    continue
                # Setting a table's indexes and foreign keys aside pays when the load is at
                # least as big as what the table holds (rebuilding and validating cost about
                # the size of the table). Count that much at most.
                cursor.execute(
                    f"SELECT COUNT(*) FROM (SELECT 1 FROM {table.name} LIMIT %s) t",  # noqa: S608
                    [coming],
                )
                if cursor.fetchone()[0] >= coming:
                    continue
                self._set_indexes_aside(cursor, table)
                if not superuser:
                    self._set_foreign_keys_aside(cursor, table)
        self.copier = _CopyThread(self.raw)
        self.copier.start()

    def _set_indexes_aside(self, cursor: Any, table: _Table) -> None:
        """Drop the non-unique secondary indexes; ``finish`` creates them again."""
        cursor.execute(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            FROM pg_index i
            WHERE i.indrelid = %s::regclass AND NOT i.indisunique AND NOT i.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            ORDER BY 1
            """,
            [table.name],
        )
        for name, definition in cursor.fetchall():
            cursor.execute(f"DROP INDEX {name}")
            self.indexes.append(definition)

    def _set_foreign_keys_aside(self, cursor: Any, table: _Table) -> None:
        """Drop the foreign keys; ``finish`` adds them back, which validates them."""
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
            [table.name],
        )
        for name, definition in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {table.name} DROP CONSTRAINT "{name}"')
            self.foreign_keys.append((table.name, name, definition))

    def write(self, chunk: dict[str, list[str]]) -> None:
        if self.copier is None:
            raise RuntimeError("prepare() starts the copier")
        for table in TABLES:
            rows = chunk[table.key]
            if rows:
                self.copier.put(self.statements[table.key], "".join(rows))

    def abort(self) -> None:
        if self.copier is not None:
            self.copier.cancel()

    def finish(self, first_ids: dict[str, int], next_ids: dict[str, int]) -> None:
        if self.copier is not None:
            self.copier.close()
        started = time.perf_counter()
        with connection.cursor() as cursor:
            if self.indexes or self.foreign_keys:
                cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            for definition in self.indexes:
                cursor.execute(definition)
            for table_name, name, definition in self.foreign_keys:
                cursor.execute(f'ALTER TABLE {table_name} ADD CONSTRAINT "{name}" {definition}')
            for table in TABLES:
                if next_ids[table.key] > first_ids[table.key]:
                    last = next_ids[table.key] - 1
                    cursor.execute("SELECT setval(%s, %s)", [self.sequences[table.key], last])
        self.index_seconds = time.perf_counter() - started


class _SqliteLoader(_Loader):
    """SQLite: executemany in the main thread. With AUTOINCREMENT, SQLite moves its sequence
    past explicit ids by itself."""

    def __init__(self) -> None:
        super().__init__()
        self.statements: dict[str, str] = {}
        self.nullable: dict[str, list[int]] = {}
        for table in TABLES:
            placeholders = ", ".join("?" * len(table.columns))
            self.statements[table.key] = (
                f"INSERT INTO {table.name} ({_quoted(table.columns)})"  # noqa: S608
                f" VALUES ({placeholders})"
            )
            fields = {f.column: f for f in table.model._meta.concrete_fields}
            self.nullable[table.key] = [i for i, c in enumerate(table.columns) if fields[c].null]

    def reserve_ids(self) -> dict[str, int]:
        ids = {}
        with connection.cursor() as cursor:
            for table in TABLES:
                cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table.name}")  # noqa: S608
                highest = cursor.fetchone()[0]
                cursor.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = %s",
                    [table.name],
                )
                ids[table.key] = max(highest, cursor.fetchone()[0]) + 1
        return ids

    def write(self, chunk: dict[str, list[str]]) -> None:
        for table in TABLES:
            nullable = self.nullable[table.key]
            params: list[list[str | None]] = []
            for row in chunk[table.key]:
                values: list[str | None] = list(row[:-1].split("\t"))
                for i in nullable:
                    if values[i] == _NULL:
                        values[i] = None
                params.append(values)
            if params:
                self.raw.executemany(self.statements[table.key], params)


# --- Entry point -----------------------------------------------------------------------------


def _domain(slug: str) -> str:
    """The seeded users' email domain (no underscore: email validators refuse it)."""
    return f"{slug.lower().replace('_', '-')}.example"


def _organization(slug: str) -> tuple[Organization, Creditor]:
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        organization = Organization.objects.create(
            name=slug.replace("-", " ").replace("_", " ").title() + " Supply Co.",
            slug=slug,
            kind=Organization.Kind.SUPPLIER,
            default_currency="USD",
            email=f"billing@{_domain(slug)}",
        )
    creditor = Creditor.objects.filter(organization=organization, is_self=True).first()
    if creditor is None:
        creditor = Creditor.objects.create(
            organization=organization, name=organization.name, code=slug[:40], is_self=True
        )
    return organization, creditor


def seed(
    *, customers: int, invoices_per_customer: int, seed: int, organization_slug: str = "bench"
) -> str:
    """Fill one organization with benchmark data and return a one-paragraph report."""
    if customers < 1:
        raise ServiceError("The number of customers must be at least 1.")
    if invoices_per_customer < 0:
        raise ServiceError("The number of invoices per customer cannot be negative.")
    try:
        validate_slug(organization_slug)
    except ValidationError as exc:
        raise ServiceError(f"{organization_slug!r} is not a slug (letters, digits, -, _)") from exc
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise ServiceError(f"openar seed supports PostgreSQL and SQLite, not {vendor}.")
    _check_columns()
    started = time.perf_counter()
    # Hashed once: every seeded user gets the same hash, its salt derived from the seed too.
    alphabet = string.ascii_letters + string.digits
    salt = "".join(random.Random(f"openar-seed-{seed}").choices(alphabet, k=22))
    password_hash = make_password(PASSWORD, salt)
    loader: _Loader = _PostgresLoader() if vendor == "postgresql" else _SqliteLoader()
    with transaction.atomic(), scopes_disabled():
        organization, creditor = _organization(organization_slug)
        if Customer.objects.filter(organization=organization).exists():
            raise ServiceError(
                f"Organization {organization_slug!r} already has customers: seed another "
                "organization (--organization) or an empty database."
            )
        first_email = f"c{1:0{max(7, len(str(customers)))}d}@{_domain(organization_slug)}"
        if User.objects.filter(email=first_email).exists():
            raise ServiceError(f"A user {first_email} already exists: seed another organization.")
        first_ids = loader.reserve_ids()
        generator = _Generator(
            rng=random.Random(seed),
            customers=customers,
            invoices_per_customer=invoices_per_customer,
            organization_id=organization.pk,
            creditor_id=creditor.pk,
            domain=_domain(organization_slug),
            first_ids=first_ids,
            today=organization.today(),
            password_hash=password_hash,
            postgres=vendor == "postgresql",
        )
        loader.prepare(customers, customers * invoices_per_customer)
        # The COPY thread needs the GIL only briefly, but often: hand it over sooner than
        # every 5 ms, or the server waits for data while this thread generates.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)
        try:
            for chunk in generator.chunks():
                loader.write(chunk)
        except BaseException:
            loader.abort()
            raise
        finally:
            sys.setswitchinterval(switch_interval)
        loader.finish(first_ids, generator.next_ids)
    seconds = time.perf_counter() - started
    counts = generator.counts
    rows = sum(counts.rows.values())
    invoices = counts.rows["invoices"]
    rebuilt = ""
    if loader.index_seconds >= 0.01:
        rebuilt = f", {loader.index_seconds:.2f} s of it rebuilding indexes"
    return (
        f"Seeded organization {organization_slug!r} (id {organization.pk}) on {vendor}: "
        f"{counts.rows['customers']:,} customers, each with a contact, a user and a membership; "
        f"{invoices:,} invoices with {counts.rows['lines']:,} lines ({counts.paid:,} paid, "
        f"{counts.partial:,} partly paid, {counts.current:,} open and not yet due, "
        f"{counts.past_due:,} past due); {counts.rows['payments']:,} payments with "
        f"{counts.rows['allocations']:,} allocations. {rows:,} rows in {seconds:.2f} s{rebuilt}: "
        f"{rows / seconds:,.0f} rows/s, {invoices / seconds:,.0f} invoices/s. Customers sign in as "
        f"{first_email} and so on, with the password {PASSWORD!r}."
    )
