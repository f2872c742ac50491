"""The contract templates staff can fill, and the PDFs they make (ReportLab, in the style of
the statements).

- **Payment arrangement agreement**: filled from one of the customer's payment plans (its
  invoices, total, down payment and every installment with its date and amount).
- **Credit application**: staff fill the applicant's company details and the credit asked
  for; the customer signs to certify them and to accept the terms of credit.

``*_fields`` turn the inputs into plain JSON (strings only), kept on the contract as what
the template was filled with; ``render`` draws the PDF from those fields alone, and
``key_terms`` writes the summary shown beside it. Pure functions, apart from reading the
plan.
"""

from __future__ import annotations

import datetime
import io
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table

from openar.billing.statements import _escape, _footer, _table_style
from openar.commitments.models import Installment, Plan
from openar.commitments.plans import describe
from openar.core.errors import ServiceError
from openar.core.money import MoneyError, format_money, parse_amount
from openar.customers.models import Customer

PAYMENT_ARRANGEMENT = "payment_arrangement"
CREDIT_APPLICATION = "credit_application"
TITLES = {
    PAYMENT_ARRANGEMENT: "Payment arrangement agreement",
    CREDIT_APPLICATION: "Credit application",
}
MAX_TERMS_DAYS = 365


def _day(day: datetime.date) -> str:
    return f"{day.day} {day:%B %Y}"


# --- payment arrangement ----------------------------------------------------------------------


def arrangement_fields(customer: Customer, plan: Plan | None, *, extra_terms: str = "") -> dict[str, Any]:
    """The fields of a payment arrangement agreement for ``plan`` (one of ``customer``'s
    plans, pending or active)."""
    if plan is None or plan.customer_id != customer.pk:
        raise ServiceError("Choose one of the customer's payment plans.", field="plan")
    if plan.state not in Plan.OPEN_STATES:
        raise ServiceError(
            f"This plan is {plan.get_state_display().lower()}: choose a plan that is in progress.",
            field="plan",
        )
    items: list[Installment] = list(plan.installments.order_by("number"))
    return {
        "plan_id": plan.pk,
        "currency": plan.currency,
        "total": format_money(plan.total, plan.currency),
        "down_payment": format_money(plan.down_payment, plan.currency) if plan.down_payment else "",
        "describe": describe(plan),
        "invoices": sorted(plan.invoices.values_list("number", flat=True)),
        "installments": [
            {
                "label": "Down payment" if item.number == 0 else f"Installment {item.number}",
                "date": item.due_date.isoformat(),
                "amount": format_money(item.amount, plan.currency),
            }
            for item in items
        ],
        "autopay": plan.saved_method.label if plan.saved_method else "",
        "extra_terms": extra_terms.strip()[:2000],
    }


# --- credit application -----------------------------------------------------------------------


@dataclass(frozen=True)
class CreditInput:
    legal_name: str
    registration_number: str
    address: str
    contact_name: str
    contact_email: str
    credit_limit: str  # as typed
    terms_days: str  # as typed
    extra_terms: str = ""


def credit_fields(customer: Customer, data: CreditInput) -> dict[str, Any]:
    """The fields of a credit application, checked: a legal name, an address, a credit
    limit in the customer's currency and payment terms of 1 to 365 days."""
    legal_name = data.legal_name.strip()[:200]
    if not legal_name:
        raise ServiceError("Enter the company's legal name.", field="legal_name")
    address = data.address.strip()[:500]
    if not address:
        raise ServiceError("Enter the company's address.", field="address")
    email = data.contact_email.strip()[:254]
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise ServiceError("Enter a valid email address, or leave it empty.", field="contact_email")
    try:
        limit = parse_amount(data.credit_limit, customer.currency)
    except MoneyError as exc:
        raise ServiceError(str(exc), field="credit_limit") from exc
    if limit <= 0:
        raise ServiceError("Enter a credit limit above zero.", field="credit_limit")
    try:
        days = int(Decimal(data.terms_days.strip()))
        if Decimal(data.terms_days.strip()) != days:
            raise InvalidOperation
    except (InvalidOperation, ValueError) as exc:
        raise ServiceError("Enter the payment terms as a number of days.", field="terms_days") from exc
    if not 1 <= days <= MAX_TERMS_DAYS:
        raise ServiceError(f"Payment terms are 1 to {MAX_TERMS_DAYS} days.", field="terms_days")
    return {
        "legal_name": legal_name,
        "registration_number": data.registration_number.strip()[:100],
        "address": address,
        "contact_name": data.contact_name.strip()[:200],
        "contact_email": email,
        "currency": customer.currency,
        "credit_limit": format_money(limit, customer.currency),
        "terms_days": days,
        "extra_terms": data.extra_terms.strip()[:2000],
    }


# --- what the customer reads beside the PDF ---------------------------------------------------


def key_terms(template: str, fields: dict[str, Any]) -> str:
    """The summary of a filled template, one term a line."""
    if template == PAYMENT_ARRANGEMENT:
        lines = [
            f"Total: {fields['total']}, paid as {fields['describe']}.",
            f"Invoices: {', '.join(fields['invoices']) or 'the account'}.",
            *(
                f"{item['label']}: {item['amount']} on {_day(datetime.date.fromisoformat(item['date']))}"
                for item in fields["installments"]
            ),
        ]
        if fields.get("autopay"):
            lines.append(f"Charged automatically to {fields['autopay']}.")
    else:
        lines = [
            f"Applicant: {fields['legal_name']}"
            + (f" (registration {fields['registration_number']})" if fields["registration_number"] else ""),
            f"Credit limit requested: {fields['credit_limit']}.",
            f"Payment terms: net {fields['terms_days']} days.",
        ]
    if fields.get("extra_terms"):
        lines.append(f"Further terms: {fields['extra_terms']}")
    return "\n".join(lines)


# --- the PDFs ---------------------------------------------------------------------------------


def render(template: str, fields: dict[str, Any], *, organization_name: str, customer: Customer) -> bytes:
    """The PDF of a filled template."""
    if template == PAYMENT_ARRANGEMENT:
        body = _arrangement_story(fields, organization_name, customer)
    elif template == CREDIT_APPLICATION:
        body = _credit_story(fields, organization_name, customer)
    else:
        raise ServiceError("Choose a template.", field="template")
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"{TITLES[template]}: {customer.name}",
        author=organization_name,
    )
    doc.build(body, onFirstPage=_footer, onLaterPages=_footer)
    return buffer.getvalue()


def _styles() -> Any:
    return getSampleStyleSheet()


def _parties(organization_name: str, customer: Customer) -> list[Any]:
    styles = _styles()
    address = ", ".join(customer.address_lines)
    return [
        Paragraph(
            f"Between <b>{_escape(organization_name)}</b> (“we”) and <b>{_escape(customer.name)}</b>, "
            f"account {_escape(customer.number)}{', ' + _escape(address) if address else ''} (“you”).",
            styles["Normal"],
        ),
        Spacer(1, 5 * mm),
    ]


def _arrangement_story(fields: dict[str, Any], organization_name: str, customer: Customer) -> list[Any]:
    styles = _styles()
    story: list[Any] = [
        Paragraph(_escape(organization_name), styles["Title"]),
        Paragraph("Payment arrangement agreement", styles["Heading2"]),
        *_parties(organization_name, customer),
        Paragraph(
            f"You agree to pay <b>{_escape(fields['total'])}</b> owed on "
            f"{_escape(', '.join(fields['invoices']) or 'your account')} as "
            f"{_escape(fields['describe'])}, on these dates:",
            styles["Normal"],
        ),
        Spacer(1, 3 * mm),
    ]
    rows: list[list[object]] = [["Payment", "Date", "Amount"]]
    rows += [
        [item["label"], _day(datetime.date.fromisoformat(item["date"])), item["amount"]]
        for item in fields["installments"]
    ]
    table = Table(rows, repeatRows=1, hAlign="LEFT", colWidths=[50 * mm, 50 * mm, 40 * mm])
    table.setStyle(_table_style())
    story += [table, Spacer(1, 5 * mm)]
    terms = [
        "While you keep to this schedule we will not send you reminders about these invoices or "
        "pass them to collection.",
        "You may pay more, or pay early, at any time; what you pay is applied to the next payment due.",
        "If a payment is more than 14 days late, this arrangement may end, and everything still "
        "open on these invoices becomes due at once.",
    ]
    if fields.get("autopay"):
        terms.insert(0, f"Each payment is charged on its date to {fields['autopay']}.")
    if fields.get("extra_terms"):
        terms.append(fields["extra_terms"])
    story += [Paragraph(f"{n}. {_escape(text)}", styles["Normal"]) for n, text in enumerate(terms, 1)]
    return story


def _credit_story(fields: dict[str, Any], organization_name: str, customer: Customer) -> list[Any]:
    styles = _styles()
    rows: list[list[object]] = [
        ["Legal name", Paragraph(_escape(fields["legal_name"]), styles["Normal"])],
        ["Registration / tax number", fields["registration_number"] or "—"],
        ["Address", Paragraph(_escape(fields["address"]).replace("\n", "<br/>"), styles["Normal"])],
        ["Contact", Paragraph(_escape(fields["contact_name"] or "—"), styles["Normal"])],
        ["Contact email", fields["contact_email"] or "—"],
        ["Credit limit requested", fields["credit_limit"]],
        ["Payment terms requested", f"Net {fields['terms_days']} days"],
    ]
    table = Table(rows, hAlign="LEFT", colWidths=[55 * mm, 110 * mm])
    table.setStyle(_table_style())
    terms = [
        "The applicant certifies that the information above is true and complete, and authorizes us "
        "to verify it and to obtain credit references.",
        f"If credit is granted, invoices are due {fields['terms_days']} days after their date; we may "
        "change or withdraw the credit limit at any time by notice to you.",
        "Amounts not paid when due may be passed to collection.",
    ]
    if fields.get("extra_terms"):
        terms.append(fields["extra_terms"])
    return [
        Paragraph(_escape(organization_name), styles["Title"]),
        Paragraph("Credit application", styles["Heading2"]),
        *_parties(organization_name, customer),
        table,
        Spacer(1, 5 * mm),
        *(Paragraph(f"{n}. {_escape(text)}", styles["Normal"]) for n, text in enumerate(terms, 1)),
    ]
