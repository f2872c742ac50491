"""Demo documents for the document center: proofs of delivery (signed delivery receipts) for
the demo customer's delivered invoices, dated the day after each invoice, and a remittance
advice for its oldest paid invoice, each a small real PDF drawn with ReportLab and kept
through ``document_store`` (so the audit log holds them, as production would).

The demo already gives the customer a purchase order and a bill of lading per invoice, kept
without a date of their own; these are dated as their invoices (the order a week before).
With these every filter of the document center has something to show. Run it after the demo
data exists; running it again adds nothing.
"""

from __future__ import annotations

import datetime
import io

from django.db import transaction
from django_scopes import scope
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from openar.billing.models import Document, Invoice
from openar.billing.services import document_store
from openar.customers.models import Customer
from openar.tenants.models import Organization

DELIVERED_AFTER_DAYS = 7  # invoices at least this old were delivered, so they have a receipt


def _pdf(title: str, lines: list[str], signed_by: str = "") -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setTitle(title)
    pdf.setFont("Helvetica-Bold", 16)
    pdf.drawString(20 * mm, 277 * mm, title)
    pdf.setFont("Helvetica", 10)
    for index, line in enumerate(lines):
        pdf.drawString(20 * mm, 265 * mm - 6 * mm * index, line)
    if signed_by:
        top = 265 * mm - 6 * mm * (len(lines) + 2)
        pdf.line(20 * mm, top, 90 * mm, top)
        pdf.drawString(20 * mm, top - 5 * mm, f"Received in good order: {signed_by}")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


@transaction.atomic
def seed_demo(organization_slug: str = "northwind", customer_number: str = "NW1001") -> int:
    """Add the demo documents to ``customer_number`` of ``organization_slug``; how many were
    added (0 when the customer is missing or already has them)."""
    organization = Organization.objects.filter(slug=organization_slug).first()
    if organization is None:
        return 0
    with scope(organization=organization):
        customer = Customer.objects.filter(number=customer_number).first()
        if customer is None:
            return 0
        if Document.objects.filter(customer=customer, kind=Document.Kind.PROOF_OF_DELIVERY).exists():
            return 0
        contact = customer.contacts.order_by("-is_primary", "pk").first()
        receiver = contact.name if contact is not None else customer.name
        today = organization.today()
        added = 0
        invoices = Invoice.objects.filter(
            customer=customer, issue_date__lte=today - datetime.timedelta(days=DELIVERED_AFTER_DAYS)
        ).order_by("issue_date", "pk")
        for invoice in invoices:
            delivered = invoice.issue_date + datetime.timedelta(days=1)
            document_store(
                customer=customer,
                invoice=invoice,
                kind=Document.Kind.PROOF_OF_DELIVERY,
                title=f"Proof of delivery {invoice.number}",
                filename=f"pod-{invoice.number}.pdf",
                content=_pdf(
                    f"Delivery receipt {invoice.number}",
                    [
                        f"Delivered to: {customer.name}",
                        *customer.address_lines,
                        f"Delivered on {delivered:%d %B %Y}",
                        f"Invoice {invoice.number}"
                        + (f", order {invoice.po_number}" if invoice.po_number else ""),
                        f"{invoice.lines.count()} line(s), all items received",
                    ],
                    signed_by=receiver,
                ),
                content_type="application/pdf",
                po_number=invoice.po_number,
                document_date=delivered,
            )
            added += 1
        # The demo's own purchase orders and bills of lading were kept undated (so dated the day
        # the demo was made): date them as their invoices, and give the orders their numbers.
        for document in Document.objects.filter(
            customer=customer,
            kind__in=[Document.Kind.PURCHASE_ORDER, Document.Kind.BILL_OF_LADING],
            invoice__isnull=False,
        ).select_related("invoice"):
            about = document.invoice
            assert about is not None  # noqa: S101  (filtered above)
            is_order = document.kind == Document.Kind.PURCHASE_ORDER
            Document.objects.filter(pk=document.pk).update(
                document_date=about.issue_date - datetime.timedelta(days=7 if is_order else 0),
                po_number=about.po_number if is_order else "",
            )
        paid = invoices.filter(open_amount=0).first()
        if paid is not None:
            document_store(
                customer=customer,
                invoice=paid,
                kind=Document.Kind.ATTACHMENT,
                title=f"Remittance advice {paid.number}",
                filename=f"remittance-{paid.number}.pdf",
                content=_pdf(
                    "Remittance advice",
                    [
                        f"From: {customer.name}",
                        f"To: {organization.name}",
                        f"Paying invoice {paid.number} in full: {paid.total} {paid.currency}",
                    ],
                ),
                content_type="application/pdf",
                po_number=paid.po_number,
                document_date=paid.due_date,
                note="Sent by the customer's accounts payable",
            )
            added += 1
    return added
