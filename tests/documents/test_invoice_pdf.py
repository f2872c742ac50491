"""Every invoice has a PDF: the ERP's when it sent one, else drawn from the invoice's data;
read back with pypdf."""

from __future__ import annotations

import dataclasses
import datetime
import io
from decimal import Decimal

import pytest
from django.test import Client
from django_scopes import scope
from PIL import Image
from pypdf import PdfReader

from factories import (
    Users,
    days_ago,
    fresh,
    issue_credit_note,
    issue_invoice,
    record_payment,
    signed_in,
    text_of,
)
from openar.billing.invoice_pdf import PdfApplied, invoice_pdf_data, render_invoice_pdf
from openar.billing.models import Document, Invoice
from openar.billing.selectors import invoice_applied
from openar.billing.services import LineInput
from openar.customers.models import Customer

from .conftest import Library, body, small_pdf, store, zip_entries


def docs_section(page: str) -> str:
    start = page.index('<section class="card" aria-labelledby="docs-h"')
    return page[start : page.index("</section>", start)]


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture
def taxed(customer: Customer) -> Invoice:
    """INV-2001: 4 × 25.00 at 10% tax and 1 × 90.00 untaxed = 100.00 + 10.00 + 90.00 = 200.00;
    credited 20.00, paid 50.00: 130.00 open."""
    customer.address_line1 = "12 Harbor St"
    customer.city = "Portland"
    customer.region = "OR"
    customer.postal_code = "97201"
    customer.save()
    invoice = issue_invoice(
        customer,
        "INV-2001",
        due_date=days_ago(5),
        po_number="PO-8080",
        lines=[
            LineInput("Steel brackets", Decimal(4), Decimal("25.00"), Decimal("0.10"), sku="BRK-10"),
            LineInput("Installation", Decimal(1), Decimal("90.00")),
        ],
    )
    issue_credit_note(invoice, "CN-2001", "20.00", reason="Two brackets bent")
    record_payment(customer, "50.00", allocations=[(invoice, "50.00")], reference="CHK-9")
    return invoice


def test_an_invoice_without_an_erp_pdf_gets_one_drawn_from_its_data(
    taxed: Invoice, users: Users, supplier: object
) -> None:
    supplier.email = "ar@acme.example"  # type: ignore[attr-defined]
    supplier.save()  # type: ignore[attr-defined]
    response = signed_in(users.customer).get(f"/portal/invoices/{taxed.pk}/invoice.pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="invoice-INV-2001.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    text = pdf_text(response.content)
    for expected in (
        "Acme Supplies",
        "ar@acme.example",
        "Invoice INV-2001",
        "Bolt Hardware",
        "Account C-1001",
        "12 Harbor St",
        "Portland OR 97201",
        "PO-8080",
        "Steel brackets",
        "BRK-10",
        "Installation",
        "$10.00 (10%)",
        "Subtotal",
        "$190.00",
        "$200.00",
        "Credited",
        "−$20.00",
        "Paid",
        "−$50.00",
        "Open",
        "$130.00",
        "Credit note CN-2001 · Two brackets bent",
        "ref. CHK-9",
        "Please pay $130.00",
    ):
        assert expected in text, expected
    assert "PAID" not in text


def test_the_totals_are_the_invoices(taxed: Invoice) -> None:
    with scope(organization=taxed.customer.organization):
        data = invoice_pdf_data(fresh(taxed))

    assert (data.subtotal, data.tax_total, data.total) == (
        Decimal("190.00"),
        Decimal("10.00"),
        Decimal("200.00"),
    )
    assert (data.credited, data.paid, data.open_amount) == (
        Decimal("20.00"),
        Decimal("50.00"),
        Decimal("130.00"),
    )
    assert data.total - data.credited - data.paid == data.open_amount
    assert [line.total for line in data.lines] == [Decimal("110.00"), Decimal("90.00")]


def test_a_paid_invoice_says_so_and_asks_for_nothing(customer: Customer, users: Users) -> None:
    invoice = issue_invoice(customer, "INV-2002", "80.00")
    record_payment(customer, "80.00", allocations=[(invoice, "80.00")], reference="EFT-1")

    text = pdf_text(signed_in(users.customer).get(f"/portal/invoices/{invoice.pk}/invoice.pdf").content)

    assert "Invoice INV-2002 · PAID" in text
    assert "Please pay" not in text
    assert "$0.00" in text


def test_a_long_invoice_runs_over_pages(customer: Customer) -> None:
    lines = [LineInput(f"Item {n:03d}", Decimal(1), Decimal("1.00")) for n in range(120)]
    invoice = issue_invoice(customer, "INV-2003", lines=lines)
    with scope(organization=customer.organization):
        pdf = render_invoice_pdf(invoice_pdf_data(invoice))

    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 3
    text = pdf_text(pdf)
    assert "Item 000" in text and "Item 119" in text and "$120.00" in text
    assert text.count("Description") == len(reader.pages[:-1]) or text.count("Description") >= 3


def test_the_erp_pdf_is_served_when_there_is_one(
    library: Library, customer: Customer, portal: Client
) -> None:
    invoice = library.invoices["INV-1001"]
    supplied = small_pdf("ERP INVOICE 1001")
    erp = store(
        customer,
        "Invoice INV-1001",
        "erp-1001.pdf",
        kind=Document.Kind.INVOICE,
        invoice=invoice,
        content=supplied,
    )

    response = portal.get(f"/portal/invoices/{invoice.pk}/invoice.pdf")

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="erp-1001.pdf"'
    assert body(response) == supplied
    assert erp.kind == "invoice"


def test_a_hidden_erp_pdf_is_for_staff_the_customer_gets_the_drawn_one(
    library: Library, customer: Customer, portal: Client, users: Users
) -> None:
    invoice = library.invoices["INV-1001"]
    store(
        customer,
        "Draft invoice",
        "draft.pdf",
        kind=Document.Kind.INVOICE,
        invoice=invoice,
        content=small_pdf("DRAFT"),
        visible=False,
    )

    mine = portal.get(f"/portal/invoices/{invoice.pk}/invoice.pdf")
    staff = signed_in(users.collector).get(f"/desk/customers/{customer.pk}/invoices/{invoice.pk}/invoice.pdf")

    assert "DRAFT" not in pdf_text(body(mine)) and "INV-1001" in pdf_text(body(mine))
    assert "DRAFT" in pdf_text(body(staff))


def test_another_customers_invoice_pdf_is_404(
    library: Library, customer_2: Customer, other_customer: Customer, users: Users, portal: Client
) -> None:
    neighbour = issue_invoice(customer_2, "INV-8001", "10.00")
    foreign = issue_invoice(other_customer, "INV-9001", "10.00", currency="EUR")
    desk = signed_in(users.collector)

    assert portal.get(f"/portal/invoices/{neighbour.pk}/invoice.pdf").status_code == 404
    assert portal.get(f"/portal/invoices/{foreign.pk}/invoice.pdf").status_code == 404
    own = library.invoices["INV-1001"].customer_id
    assert desk.get(f"/desk/customers/{own}/invoices/{neighbour.pk}/invoice.pdf").status_code == 404
    assert (
        desk.get(f"/desk/customers/{other_customer.pk}/invoices/{foreign.pk}/invoice.pdf").status_code == 404
    )


def test_a_narrow_session_gets_the_pdf_of_the_invoice_its_link_shows_only(
    library: Library, invoice_link: Client
) -> None:
    assert (
        invoice_link.get(f"/portal/invoices/{library.invoices['INV-1002'].pk}/invoice.pdf").status_code == 200
    )
    assert (
        invoice_link.get(f"/portal/invoices/{library.invoices['INV-1001'].pk}/invoice.pdf").status_code == 404
    )


def test_both_invoice_pages_list_the_pdf_first_then_the_documents(
    library: Library, portal: Client, users: Users, customer: Customer
) -> None:
    invoice = library.invoices["INV-1001"]
    store(customer, "Invoice INV-1001 from the ERP", "erp.pdf", kind=Document.Kind.INVOICE, invoice=invoice)

    mine = portal.get(f"/portal/invoices/{invoice.pk}/").content.decode()
    staff = (
        signed_in(users.collector)
        .get(f"/desk/customers/{customer.pk}/invoices/{invoice.pk}/")
        .content.decode()
    )

    section = docs_section(mine)
    assert text_of(section).startswith("Documents Invoice INV-1001 (PDF) Invoice PDF Signed delivery receipt")
    assert f'href="/portal/invoices/{invoice.pk}/invoice.pdf"' in section
    assert "Bill of lading 881" in section and "Collector memo" not in mine
    assert "Invoice INV-1001 from the ERP" not in section  # served by the PDF link
    assert f'href="/portal/invoices/{invoice.pk}/documents.zip"' in section
    desk_section = docs_section(staff)
    assert f'href="/desk/customers/{customer.pk}/invoices/{invoice.pk}/invoice.pdf"' in desk_section
    assert "Collector memo" in desk_section and "Staff only" in desk_section


def test_an_invoice_closed_by_credit_is_not_called_paid(customer: Customer, users: Users) -> None:
    invoice = issue_invoice(customer, "INV-2010", "80.00")
    issue_credit_note(invoice, "CN-2010", "80.00", reason="Returned in full")

    text = pdf_text(signed_in(users.customer).get(f"/portal/invoices/{invoice.pk}/invoice.pdf").content)

    assert "Invoice INV-2010 · Closed by credit" in text
    assert "PAID" not in text and "Paid and credited" not in text
    assert "Please pay" not in text
    assert "Credited" in text and "−$80.00" in text


def test_an_invoice_closed_by_payments_and_credits_says_both(customer: Customer, users: Users) -> None:
    invoice = issue_invoice(customer, "INV-2011", "80.00")
    issue_credit_note(invoice, "CN-2011", "30.00", reason="Short shipped")
    record_payment(customer, "50.00", allocations=[(invoice, "50.00")], reference="EFT-2")

    text = pdf_text(signed_in(users.customer).get(f"/portal/invoices/{invoice.pk}/invoice.pdf").content)

    assert "Invoice INV-2011 · Paid and credited" in text
    assert "PAID" not in text and "Closed by credit" not in text


def test_a_reversed_payment_does_not_count_as_paid(customer: Customer) -> None:
    invoice = issue_invoice(customer, "INV-2012", "80.00")
    issue_credit_note(invoice, "CN-2012", "80.00", reason="Cancelled order")
    with scope(organization=customer.organization):
        data = invoice_pdf_data(fresh(invoice))
    bounced = PdfApplied("payment", datetime.date(2025, 6, 1), "Payment by check", Decimal("80.00"), True)
    with_bounce = dataclasses.replace(data, applied=[bounced, *data.applied])

    assert (data.paid, data.credited, data.status) == (Decimal(0), Decimal("80.00"), "Closed by credit")
    assert (with_bounce.paid, with_bounce.status) == (Decimal(0), "Closed by credit")
    assert "Payment by check (reversed)" in pdf_text(render_invoice_pdf(with_bounce))


def test_a_zero_invoice_has_no_status_stamp(customer: Customer) -> None:
    invoice = issue_invoice(customer, "INV-2014", "0.00")
    with scope(organization=customer.organization):
        data = invoice_pdf_data(fresh(invoice))

    assert (data.open_amount, data.status) == (Decimal(0), "")
    assert "PAID" not in pdf_text(render_invoice_pdf(data))


def test_an_open_invoice_has_no_status_stamp(taxed: Invoice) -> None:
    with scope(organization=taxed.customer.organization):
        data = invoice_pdf_data(fresh(taxed))

    assert data.status == ""


def test_payment_dates_are_the_organizations_own(customer: Customer, users: Users) -> None:
    """Paid at 02:30 UTC on 30 June: 22:30 on 29 June in Toronto, where the supplier is."""
    invoice = issue_invoice(customer, "INV-2013", "80.00")
    record_payment(
        customer,
        "30.00",
        allocations=[(invoice, "30.00")],
        reference="LATE-1",
        received_at=datetime.datetime(2025, 6, 30, 2, 30, tzinfo=datetime.UTC),
    )

    text = pdf_text(signed_in(users.customer).get(f"/portal/invoices/{invoice.pk}/invoice.pdf").content)
    with scope(organization=customer.organization):
        [applied] = invoice_applied(fresh(invoice))

    assert applied.date == datetime.date(2025, 6, 29)
    assert "2025-06-29" in text and "2025-06-30" not in text


def test_an_invoice_number_with_a_slash_keeps_all_of_it_in_file_names(
    customer: Customer, users: Users
) -> None:
    invoice = issue_invoice(customer, "2025/INV\\77", "10.00")
    portal = signed_in(users.customer)

    pdf = portal.get(f"/portal/invoices/{invoice.pk}/invoice.pdf")
    archive = portal.get(f"/portal/invoices/{invoice.pk}/documents.zip")

    assert pdf["Content-Disposition"] == 'attachment; filename="invoice-2025-INV-77.pdf"'
    assert archive["Content-Disposition"] == 'attachment; filename="invoice-2025-INV-77-documents.zip"'
    assert list(zip_entries(body(archive))) == ["invoice-2025-INV-77.pdf"]


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 30, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_only_a_pdf_counts_as_the_erp_invoice_pdf(
    library: Library, customer: Customer, portal: Client, users: Users
) -> None:
    invoice = library.invoices["INV-1001"]
    scan = store(
        customer,
        "Invoice scan",
        "scan.png",
        kind=Document.Kind.INVOICE,
        invoice=invoice,
        content=png_bytes(),
        content_type="image/png",
    )

    mine = portal.get(f"/portal/invoices/{invoice.pk}/invoice.pdf")
    staff = signed_in(users.collector).get(f"/desk/customers/{customer.pk}/invoices/{invoice.pk}/invoice.pdf")
    page = portal.get(f"/portal/invoices/{invoice.pk}/").content.decode()
    archive = zip_entries(body(portal.get(f"/portal/invoices/{invoice.pk}/documents.zip")))

    for response in (mine, staff):
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"] == 'attachment; filename="invoice-INV-1001.pdf"'
        assert body(response).startswith(b"%PDF")
        assert "Invoice INV-1001" in pdf_text(body(response))
    section = docs_section(page)
    assert f'href="/portal/documents/{scan.pk}/download"' in section  # an ordinary document
    assert "Invoice scan" in text_of(section)
    assert sorted(archive) == ["bol (2).pdf", "bol.pdf", "invoice-INV-1001.pdf", "scan.png"]
    assert archive["scan.png"] == png_bytes()
