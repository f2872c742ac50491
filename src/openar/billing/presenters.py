"""Presenting billing data to the front doors: pre-formatted rows and file responses."""

from __future__ import annotations

import datetime

from django.http import FileResponse, HttpResponse

from openar.billing.models import Document, Invoice
from openar.billing.statements import render_statement_pdf, statement_for
from openar.core.money import format_money
from openar.core.uploads import attachment_response
from openar.customers.models import Customer


def short_date(day: datetime.date) -> str:
    """ "17 Aug 2026": unambiguous in every locale, and cheap (no template filter)."""
    return f"{day.day} {day:%b %Y}"


ROW_FIELDS = ("id", "number", "po_number", "issue_date", "due_date", "currency", "total", "open_amount")


def invoice_row(invoice: Invoice, today: datetime.date) -> dict[str, object]:
    """A pre-formatted row: the hot list pages format in Python, not in template filters."""
    days = (today - invoice.due_date).days
    if invoice.open_amount == 0:
        status, label = "paid", "Paid"
    elif days > 0:
        status, label = "late", f"{days} day{'s' if days != 1 else ''} late"
    elif invoice.open_amount < invoice.total:
        status, label = "partial", "Partly paid"
    else:
        status, label = "open", "Due today" if days == 0 else "Open"
    return {
        "id": invoice.pk,
        "number": invoice.number,
        "po": invoice.po_number,
        "issued": short_date(invoice.issue_date),
        "due": short_date(invoice.due_date),
        "total": format_money(invoice.total, invoice.currency),
        "open": format_money(invoice.open_amount, invoice.currency),
        "status": status,
        "status_label": label,
    }


def statement_pdf_response(customer: Customer) -> HttpResponse:
    today = customer.organization.today()
    pdf = render_statement_pdf(statement_for(customer, today))
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="statement-{customer.number}-{today:%Y-%m-%d}.pdf"'
    )
    response["Cache-Control"] = "private, no-store"
    return response


def document_response(document: Document) -> FileResponse:
    """Always a download, never rendered inline: user content must not run in our origin.
    ``attachment_response`` gives the safe name (RFC 6266 ``filename*``), ``nosniff``, a
    sandboxing Content-Security-Policy, and a type that is never a page a browser renders."""
    return attachment_response(
        document.file.open("rb"),
        filename=document.filename,
        content_type=document.content_type or "application/octet-stream",
    )
