"""The demo's documents: proofs of delivery for the delivered invoices and a remittance
advice for a paid one, real PDFs, added once."""

from __future__ import annotations

import datetime
import io

import time_machine
from django_scopes import scopes_disabled
from pypdf import PdfReader

from factories import days_ago, issue_invoice, make_contact, record_payment
from openar.billing.demo_documents import seed_demo
from openar.billing.models import Document, Invoice
from openar.customers.models import Customer

from .conftest import store


def test_seed_demo_adds_receipts_and_a_remittance_once(
    customer: Customer, clock: time_machine.Traveller
) -> None:
    make_contact(customer, "Dana Payables", "payables@bolt.example")
    for number, age in (("INV-1001", 10), ("INV-1002", 20), ("INV-1003", 40)):
        issue_invoice(customer, number, "75.00", due_date=days_ago(age), po_number=f"PO-{number[-1]}")
    paid = issue_invoice(customer, "INV-1004", "40.00", due_date=days_ago(60), po_number="PO-4")
    record_payment(customer, "40.00", allocations=[(paid, "40.00")], reference="EFT-4")
    fresh = issue_invoice(customer, "INV-1005", "40.00", issue_date=days_ago(2), due_date=days_ago(-28))

    with scopes_disabled():
        first_invoice = customer.invoices.get(number="INV-1001")
    order = store(
        customer, "Purchase order", "po.pdf", kind=Document.Kind.PURCHASE_ORDER, invoice=first_invoice
    )

    added = seed_demo(organization_slug="acme", customer_number="C-1001")
    again = seed_demo(organization_slug="acme", customer_number="C-1001")

    assert (added, again) == (5, 0)  # four delivered invoices, one remittance
    assert seed_demo(organization_slug="nowhere") == 0
    with scopes_disabled():
        receipts = list(
            Document.objects.filter(customer=customer, kind=Document.Kind.PROOF_OF_DELIVERY).order_by(
                "document_date"
            )
        )
        remittance = Document.objects.get(customer=customer, title="Remittance advice INV-1004")
        numbers = sorted(Invoice.objects.get(documents=d).number for d in receipts)
        first = receipts[0]
        receipt_invoice = Invoice.objects.get(documents=first)
    assert numbers == ["INV-1001", "INV-1002", "INV-1003", "INV-1004"]
    assert fresh.pk not in [d.invoice_id for d in receipts]
    assert first.document_date == receipt_invoice.issue_date + datetime.timedelta(days=1)
    assert first.po_number == receipt_invoice.po_number
    with first.file.open("rb") as handle:
        text = PdfReader(io.BytesIO(handle.read())).pages[0].extract_text()
    assert (
        f"Delivery receipt {receipt_invoice.number}" in text
        and "Received in good order: Dana Payables" in text
    )
    assert (remittance.invoice_id, remittance.kind, remittance.po_number) == (paid.pk, "attachment", "PO-4")
    with scopes_disabled():
        order = Document.objects.get(pk=order.pk)
    assert order.document_date == first_invoice.issue_date - datetime.timedelta(days=7)
    assert order.po_number == "PO-1"
    assert remittance.visible_to_customer and remittance.note == "Sent by the customer's accounts payable"
