"""New accounts placed with the agency by a creditor client, from a CSV file.

The file
--------
UTF-8 text (a byte-order mark is fine), comma-separated (a file whose header is separated by
semicolons or tabs is read with those), a header row first, one line per invoice: an
account with three invoices takes three lines that repeat its account number. Column names
are read without regard to case, spaces, dashes or underscores; the first form below is the
one the template uses.

=================  ==========  ===============================================================
column             required    what it holds
=================  ==========  ===============================================================
account_number     yes         the debtor's account number at the creditor (up to 40 chars)
name               yes         the debtor: a person or a business (up to 200 characters)
email              no          the debtor's email address
phone              no          the debtor's phone number
address_line1      no          street address
address_line2      no          apartment, suite, ...
city               no
region             no          state or province
postal_code        no
country            no          two-letter code (US, CA, ...)
invoice_number     yes         the creditor's invoice or reference number, unique in the file
                               and not already used at the agency (also read from
                               ``reference`` or ``reference_number``)
amount             yes         what is owed on it, in the account's currency: digits with a
                               point before the decimals ("1234.50", "$1,234.50"), at most as
                               many decimals as the currency has, above zero
invoice_date       yes         YYYY-MM-DD, within 20 years of today
due_date           yes         YYYY-MM-DD, not before the invoice date, within 20 years of
                               today
currency           no          ISO code (USD, CAD, ...); empty: the account's currency when
                               the account was placed before, else the agency's currency
note               no          kept on the invoice for staff (up to 1,000 characters)
=================  ==========  ===============================================================

Lines of one account after its first must agree with it on name and currency (their other
details may be left empty). At most ``MAX_LINES`` lines per file.

What happens
------------
Every line is checked, then each account is written in its own transaction, all its
lines or none of them: a bad line refuses its whole account (its other lines say so), and
other accounts are placed. A new account gets the creditor, ``placed_at`` now, a primary
contact (when an email or phone is given) and its invoices, issued through
``billing.services.invoice_issue``. An account number this creditor placed before receives
the new invoices (its details are kept as they are); one placed by another creditor of the
agency is refused with one neutral reason that tells nothing about that account (so is an
invoice number already used at the agency). Account and invoice numbers are compared
without regard to case, in the file and against what the agency has. The import is kept
(``PlacementImport``: who, when, the file's name, size and SHA-256, the counts and the report
line by line), audited (``openar.client.placement_imported``), and the agency is emailed once
it commits.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from openar.billing.models import Invoice
from openar.billing.services import LineInput, invoice_issue
from openar.client.models import PlacementImport
from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.core.money import CURRENCY_CHOICES, MoneyError, format_money, parse_amount
from openar.core.uploads import CheckedUpload
from openar.customers.models import Activity, Contact, Customer
from openar.customers.services import activity_record
from openar.identity.models import User
from openar.tenants.models import Creditor

MAX_LINES = 5000
NOTE_MAX = 1000

COLUMNS = (
    "account_number",
    "name",
    "email",
    "phone",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "invoice_number",
    "amount",
    "invoice_date",
    "due_date",
    "currency",
    "note",
)
REQUIRED = ("account_number", "name", "invoice_number", "amount", "invoice_date", "due_date")
ALIASES = {
    "account": "account_number",
    "account_no": "account_number",
    "accountnumber": "account_number",
    "debtor": "name",
    "debtor_name": "name",
    "invoice": "invoice_number",
    "invoice_no": "invoice_number",
    "reference": "invoice_number",
    "reference_number": "invoice_number",
    "address": "address_line1",
    "address1": "address_line1",
    "address2": "address_line2",
    "state": "region",
    "province": "region",
    "postcode": "postal_code",
    "zip": "postal_code",
    "zip_code": "postal_code",
    "date": "invoice_date",
    "issue_date": "invoice_date",
    "due": "due_date",
    "notes": "note",
}
LIMITS = {
    "account_number": 40,
    "name": 200,
    "email": 254,
    "phone": 40,
    "address_line1": 200,
    "address_line2": 200,
    "city": 100,
    "region": 100,
    "postal_code": 20,
    "invoice_number": 40,
    "note": NOTE_MAX,
}
CURRENCIES = {code for code, _ in CURRENCY_CHOICES}
TEMPLATE_CSV = (
    ",".join(COLUMNS)
    + "\r\n"
    + "A-1001,Jordan Smith,jordan@example.com,555-0100,12 Main St,,Springfield,IL,62701,US,"
    "INV-9001,250.00,2025-01-15,2025-02-14,USD,First visit\r\n"
    + "A-1001,Jordan Smith,,,,,,,,,INV-9002,80.00,2025-02-10,2025-03-12,USD,\r\n"
)


@dataclass
class Line:
    """One data line of the file, as read and checked."""

    number: int  # the line in the file (the header is line 1)
    values: dict[str, str]
    errors: list[str] = field(default_factory=list)
    amount: Decimal | None = None
    invoice_date: datetime.date | None = None
    due_date: datetime.date | None = None
    currency: str = ""

    @property
    def account(self) -> str:
        return self.values.get("account_number", "")

    @property
    def invoice(self) -> str:
        return self.values.get("invoice_number", "")


@dataclass
class Outcome:
    """What happened to one line, as the report shows it."""

    line: int
    account: str
    invoice: str
    ok: bool
    message: str

    def as_json(self) -> dict[str, object]:
        return {
            "line": self.line,
            "account": self.account,
            "invoice": self.invoice,
            "ok": self.ok,
            "message": self.message,
        }


def _key(name: str) -> str:
    key = re.sub(r"[\s\-]+", "_", name.strip().lower().lstrip("\ufeff"))
    key = re.sub(r"[^a-z0-9_]", "", key)
    return ALIASES.get(key, key)


def _delimiter(first_line: str) -> str:
    if "," not in first_line:
        for candidate in (";", "\t"):
            if candidate in first_line:
                return candidate
    return ","


def read_lines(text: str) -> list[Line]:
    """The data lines of the file, each with its values by column. Raises ServiceError for a
    file that cannot be read as a whole (no header, a required column missing, a column
    named twice, too many lines)."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ServiceError("The file is empty.", field="file")
    first = text.splitlines()[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise ServiceError("The file's first line must name the columns.", field="file") from exc
    keys = [_key(name) for name in header]
    seen: set[str] = set()
    for key, name in zip(keys, header, strict=True):
        if key in seen and key:
            raise ServiceError(f"The column “{name.strip()}” appears twice in the header.", field="file")
        seen.add(key)
    missing = [name for name in REQUIRED if name not in seen]
    if missing:
        known = ", ".join(COLUMNS)
        raise ServiceError(
            f"The header has no {', '.join(missing)} column{'s' if len(missing) > 1 else ''}. "
            f"The columns are: {known}.",
            field="file",
        )
    lines: list[Line] = []
    try:
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            if len(lines) >= MAX_LINES:
                raise ServiceError(
                    f"The file has more than {MAX_LINES:,} lines: split it into smaller files.", field="file"
                )
            values = {
                key: (row[index].strip() if index < len(row) else "")
                for index, key in enumerate(keys)
                if key in COLUMNS
            }
            line = Line(number=number, values=values)
            if len(row) > len(keys) and any(cell.strip() for cell in row[len(keys) :]):
                line.errors.append(f"{len(row)} values for {len(keys)} columns (a comma too many?)")
            lines.append(line)
    except csv.Error as exc:
        raise ServiceError(
            f"Line {reader.line_num} cannot be read ({exc}): check its quotation marks.", field="file"
        ) from exc
    if not lines:
        raise ServiceError("The file has a header but no accounts.", field="file")
    return lines


# Dates further than this from today are refused (a typo such as 0202 or 2205, not a debt).
DATE_RANGE_YEARS = 20
REFUSED_ACCOUNT = "This account number cannot be used for a new placement; ask the agency."
REFUSED_INVOICE = "This invoice number cannot be used for a new placement; ask the agency."


def _years_from(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _date(text: str, label: str, errors: list[str], today: datetime.date) -> datetime.date | None:
    if not text:
        errors.append(f"missing {label}")
        return None
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        try:
            day = datetime.date.fromisoformat(text)
        except ValueError:
            pass
        else:
            earliest = _years_from(today, -DATE_RANGE_YEARS)
            latest = _years_from(today, DATE_RANGE_YEARS)
            if earliest <= day <= latest:
                return day
            errors.append(
                f"{label} {text} is more than {DATE_RANGE_YEARS} years from today "
                f"(it must be between {earliest.isoformat()} and {latest.isoformat()})"
            )
            return None
    errors.append(f"bad {label} “{text[:20]}” (write it as YYYY-MM-DD, e.g. 2025-03-31)")
    return None


AMOUNT_ERRORS = ("missing amount", "bad amount", "the amount must")


def _parse_amount(line: Line, currency: str) -> None:
    """The line's amount in ``currency`` (its decimals depend on it), or its error."""
    line.amount = None
    text = line.values.get("amount", "")
    if not text:
        line.errors.append("missing amount")
        return
    if currency not in CURRENCIES:
        return
    try:
        amount = parse_amount(text, currency)
    except MoneyError as exc:
        line.errors.append(f"bad amount “{text[:30]}”: {str(exc).rstrip('.')}")
        return
    if amount <= 0:
        line.errors.append("the amount must be above zero")
    else:
        line.amount = amount


def check_line(line: Line, default_currency: str, *, today: datetime.date | None = None) -> None:
    """Check one line on its own: required values, lengths, email, amount, dates (within
    ``DATE_RANGE_YEARS`` of ``today``). An empty currency is read as ``default_currency``
    for now; ``check_accounts`` makes it the account's when the account exists."""
    today = today or timezone.localdate()
    v = line.values
    errors = line.errors
    if not v.get("account_number"):
        errors.append("missing account number")
    if not v.get("name"):
        errors.append("missing name")
    if not v.get("invoice_number"):
        errors.append("missing invoice number")
    for name, limit in LIMITS.items():
        if len(v.get(name, "")) > limit:
            errors.append(f"{name.replace('_', ' ')} longer than {limit} characters")
    if v.get("email"):
        try:
            validate_email(v["email"])
        except ValidationError:
            errors.append(f"bad email address “{v['email'][:60]}”")
    country = v.get("country", "")
    if country and not re.fullmatch(r"[A-Za-z]{2}", country):
        errors.append(f"bad country “{country[:20]}” (use a two-letter code such as US)")
    currency = (v.get("currency") or default_currency).upper()
    if currency not in CURRENCIES:
        errors.append(f"unknown currency “{currency[:10]}”")
    line.currency = currency
    _parse_amount(line, currency)
    line.invoice_date = _date(v.get("invoice_date", ""), "invoice date", errors, today)
    line.due_date = _date(v.get("due_date", ""), "due date", errors, today)
    if line.invoice_date and line.due_date and line.due_date < line.invoice_date:
        errors.append("the due date is before the invoice date")


@dataclass
class _Account:
    number: str
    lines: list[Line]
    existing: Customer | None = None
    refused: str = ""  # why the whole account is refused, when it is


def _group(lines: list[Line]) -> list[_Account]:
    accounts: dict[str, _Account] = {}
    for line in lines:
        key = line.account.casefold()
        if not key:
            continue
        if key not in accounts:
            accounts[key] = _Account(number=line.account, lines=[])
        accounts[key].lines.append(line)
    return list(accounts.values())


def check_accounts(creditor: Creditor, lines: list[Line]) -> list[_Account]:
    """Check the lines against each other and against what the agency already has: an
    invoice number twice in the file or already used, an account of another creditor, lines
    of one account that disagree on its name or currency."""
    numbers_seen: dict[str, int] = {}
    for line in lines:
        number = line.invoice.casefold()
        if not number:
            continue
        if number in numbers_seen:
            line.errors.append(f"invoice number {line.invoice} is also on line {numbers_seen[number]}")
        else:
            numbers_seen[number] = line.number
    # Numbers already at the agency, looked up without regard to case (``mh-100`` is
    # ``MH-100``): the database lowers, the comparison here case-folds both sides.
    wanted = sorted({line.invoice.lower() for line in lines if line.invoice})
    used: set[str] = set()
    for start in range(0, len(wanted), 500):
        used.update(
            number.casefold()
            for number in Invoice.objects.annotate(number_lower=Lower("number"))
            .filter(number_lower__in=wanted[start : start + 500])
            .values_list("number", flat=True)
        )
    for line in lines:
        if line.invoice and line.invoice.casefold() in used:
            # Never say whose it is: it may be another client's invoice.
            line.errors.append(f"invoice number {line.invoice}: {REFUSED_INVOICE}")
    accounts = _group(lines)
    numbers = sorted({account.number.lower() for account in accounts})
    existing: dict[str, Customer] = {}
    for start in range(0, len(numbers), 500):
        for customer in Customer.objects.annotate(number_lower=Lower("number")).filter(
            number_lower__in=numbers[start : start + 500]
        ):
            # This creditor's own account wins over another client's variant of the number.
            key = customer.number.casefold()
            if key not in existing or customer.creditor_id == creditor.pk:
                existing[key] = customer
    for account in accounts:
        first = account.lines[0]
        found = existing.get(account.number.casefold())
        if found is not None and found.creditor_id != creditor.pk:
            account.refused = f"account number {account.number}: {REFUSED_ACCOUNT}"
        elif found is not None:
            account.existing = found
            account.number = found.number  # the new invoices go to the account as it is written
            for line in account.lines:
                if not line.values.get("currency") and line.currency != found.currency:
                    # No currency given: the account's, not the agency's.
                    line.errors[:] = [e for e in line.errors if not e.startswith(AMOUNT_ERRORS)]
                    line.currency = found.currency
                    _parse_amount(line, found.currency)
                elif line.currency and line.currency != found.currency:
                    line.errors.append(f"the account is in {found.currency}, this line in {line.currency}")
        for line in account.lines[1:]:
            name = line.values.get("name", "")
            if name and first.values.get("name") and name.casefold() != first.values["name"].casefold():
                line.errors.append(f"the name differs from line {first.number} of this account")
            if line.currency and first.currency and line.currency != first.currency:
                line.errors.append(f"the currency differs from line {first.number} of this account")
    return accounts


def _place(creditor: Creditor, account: _Account, actor: User | None, now: datetime.datetime) -> Customer:
    """Write one account and its invoices (inside the caller's transaction)."""
    first = account.lines[0]
    v = first.values
    customer = account.existing
    if customer is None:
        customer = Customer.objects.create(
            organization_id=creditor.organization_id,
            creditor=creditor,
            number=account.number,
            name=v["name"],
            currency=first.currency,
            email=v.get("email", ""),
            phone=v.get("phone", ""),
            address_line1=v.get("address_line1", ""),
            address_line2=v.get("address_line2", ""),
            city=v.get("city", ""),
            region=v.get("region", ""),
            postal_code=v.get("postal_code", ""),
            country=v.get("country", "").upper(),
            placed_at=now,
        )
        if v.get("email") or v.get("phone"):
            Contact.objects.create(
                organization_id=creditor.organization_id,
                customer=customer,
                name=v["name"],
                email=v.get("email", ""),
                phone=v.get("phone", ""),
                is_primary=True,
            )
        activity_record(
            customer=customer,
            kind=Activity.Kind.STATUS,
            visibility=Activity.Visibility.CREDITOR,
            summary=f"Account placed with the agency by {creditor.name}",
            actor=actor,
            occurred_at=now,
        )
    for line in account.lines:
        if line.amount is None or line.invoice_date is None or line.due_date is None:
            raise ServiceError(f"line {line.number} is incomplete")  # checked before: never here
        invoice_issue(
            customer=customer,
            number=line.invoice,
            issue_date=line.invoice_date,
            due_date=line.due_date,
            lines=[
                LineInput(
                    description=f"Placed for collection: {line.invoice}",
                    quantity=Decimal(1),
                    unit_price=line.amount,
                )
            ],
            currency=line.currency,
            notes=line.values.get("note", ""),
            actor=actor,
        )
    return customer


def _file_text(upload: CheckedUpload) -> str:
    if not upload.content_type.startswith("text/"):
        raise ServiceError(
            "Placements are read from CSV files: save the workbook as “CSV UTF-8” and upload that.",
            field="file",
        )
    upload.file.seek(0)
    raw = upload.file.read()
    try:
        return raw.decode("utf-8-sig") if isinstance(raw, bytes) else str(raw)
    except UnicodeDecodeError as exc:
        raise ServiceError("The file is not UTF-8 text: save it as “CSV UTF-8”.", field="file") from exc


def placement_import(*, creditor: Creditor, upload: CheckedUpload, actor: User | None) -> PlacementImport:
    """Place the accounts of a CSV file (see the module's docstring for its columns) for
    ``creditor``. Raises ServiceError (``field`` "file") when the file cannot be read at all;
    then nothing is written. Otherwise returns the import record, its report saying for
    every line whether it was placed, and why not."""
    organization = creditor.organization
    lines = read_lines(_file_text(upload))
    for line in lines:
        check_line(line, organization.default_currency, today=organization.today())
    accounts = check_accounts(creditor, lines)
    now = timezone.now()
    outcomes: dict[int, Outcome] = {}
    placed_new = added_to = refused_accounts = invoices = 0
    amounts: dict[str, Decimal] = {}
    for line in lines:
        if not line.account:
            outcomes[line.number] = Outcome(line.number, "", line.invoice, False, "; ".join(line.errors))
    for account in accounts:
        bad = [line for line in account.lines if line.errors]
        reason = account.refused
        if not reason and not bad:
            try:
                with transaction.atomic():
                    _place(creditor, account, actor, now)
            except (ServiceError, IntegrityError) as exc:
                # Placed by someone else between the check and the write: nothing of it is kept.
                reason = exc.message if isinstance(exc, ServiceError) else "it was placed at the same time"
                reason = f"not placed: {reason.rstrip('.')}"
        if reason or bad:
            refused_accounts += 1
            for line in account.lines:
                if reason:
                    message = reason
                elif line.errors:
                    message = "; ".join(line.errors)
                else:
                    others = ", ".join(str(other.number) for other in bad)
                    message = f"not placed: line {others} of this account has an error"
                outcomes[line.number] = Outcome(line.number, line.account, line.invoice, False, message)
            continue
        if account.existing is None:
            placed_new += 1
        else:
            added_to += 1
        for line in account.lines:
            invoices += 1
            amounts[line.currency] = amounts.get(line.currency, Decimal(0)) + (line.amount or Decimal(0))
            message = "placed" if account.existing is None else "added to the account placed before"
            outcomes[line.number] = Outcome(line.number, line.account, line.invoice, True, message)
    report = [outcomes[number].as_json() for number in sorted(outcomes)]
    placed_lines = sum(1 for item in report if item["ok"])
    with transaction.atomic():
        record = PlacementImport.objects.create(
            organization_id=creditor.organization_id,
            creditor=creditor,
            uploaded_by=actor if actor is not None and actor.is_authenticated else None,
            filename=upload.filename[:255],
            size=upload.size,
            sha256=upload.sha256,
            lines_total=len(lines),
            lines_placed=placed_lines,
            lines_refused=len(lines) - placed_lines,
            accounts_placed=placed_new,
            accounts_added_to=added_to,
            accounts_refused=refused_accounts,
            invoices_placed=invoices,
            amounts_placed={currency: str(total) for currency, total in sorted(amounts.items())},
            report=report,
        )
        log_event(
            "openar.client.placement_imported",
            organization=organization,
            obj=record,
            actor=actor,
            data={
                "creditor": creditor.code,
                "filename": record.filename,
                "sha256": record.sha256,
                "lines": record.lines_total,
                "lines_placed": record.lines_placed,
                "accounts_placed": placed_new,
                "accounts_added_to": added_to,
                "accounts_refused": refused_accounts,
                "amounts": record.amounts_placed,
            },
        )
        if invoices:
            _tell_agency(record, creditor)
    return record


def placed_amounts_text(record: PlacementImport) -> str:
    """ "$1,234.50" or "$1,234.50 and CA$80.00"."""
    parts = [format_money(Decimal(total), currency) for currency, total in record.amounts_placed.items()]
    return " and ".join(parts) if parts else format_money(Decimal(0), record.organization.default_currency)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _tell_agency(record: PlacementImport, creditor: Creditor) -> None:
    to = creditor.organization.email
    if not to:
        return
    subject = f"New accounts placed by {creditor.name}: {record.accounts_placed + record.accounts_added_to}"
    text = (
        f"{creditor.name} placed {_plural(record.invoices_placed, 'invoice')} "
        f"({placed_amounts_text(record)}) from {record.filename}: "
        f"{_plural(record.accounts_placed, 'new account')}, "
        f"{_plural(record.accounts_added_to, 'account')} placed before with new invoices; "
        f"{_plural(record.lines_refused, 'line')} refused.\n\n"
        f"{settings.SITE_URL}/desk/\n"
    )
    transaction.on_commit(lambda: send_mail(subject, text, None, [to], fail_silently=True))


def placement_imports(creditor: Creditor) -> QuerySet[PlacementImport]:
    """The creditor's imports, newest first (without their reports: a list needs the counts)."""
    return (
        PlacementImport.objects.filter(creditor=creditor)
        .defer("report")
        .select_related("uploaded_by")
        .order_by("-created_at", "-pk")
    )
