"""PDF mechanics of contracts: checking that a file is a PDF we can sign, hashing bytes as
a stream, drawing the certificate page (ReportLab) and appending it to the original pages
(pypdf), which are copied unchanged."""

from __future__ import annotations

import datetime
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from openar.billing.statements import _escape
from openar.core.errors import ServiceError

PDF_MAGIC = b"%PDF-"
CHUNK = 64 * 1024
CERTIFICATE_TITLE = "Certificate of electronic signature"


def sha256_of(chunks: Iterable[bytes]) -> tuple[str, int]:
    """The SHA-256 (hex) and size of bytes read piece by piece."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def pdf_check(content: bytes) -> int:
    """The number of pages of ``content``; refused (ServiceError, field "file") when it is
    not a PDF that can be read without a password."""
    if not content.startswith(PDF_MAGIC):
        raise ServiceError("Choose a PDF file: this file is not a PDF.", field="file")
    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted:
            raise ServiceError(
                "This PDF is protected with a password: upload a copy without one.", field="file"
            )
        pages = len(reader.pages)
    except ServiceError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ServiceError("This PDF cannot be read: it may be damaged.", field="file") from exc
    if pages < 1:
        raise ServiceError("This PDF has no pages.", field="file")
    return pages


@dataclass(frozen=True)
class Evidence:
    """What the certificate page states."""

    contract_id: int
    title: str
    organization_name: str
    customer_name: str
    customer_number: str
    document_sha256: str
    document_size: int
    pages: int
    signature_id: int
    signer_name: str
    signer_email: str
    typed_name: str
    consent_text: str
    signed_at: datetime.datetime
    ip: str
    user_agent: str
    auth_method: str


def certificate_pdf(evidence: Evidence) -> bytes:
    """One A4 page (more only if the consent text is very long) stating the evidence."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"{CERTIFICATE_TITLE}: {evidence.title}",
        author=evidence.organization_name,
    )
    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["Normal"], fontSize=8.5, leading=11)
    mono = ParagraphStyle("mono", parent=small, fontName="Courier", fontSize=8, leading=10)
    at = evidence.signed_at.astimezone(datetime.UTC)
    rows = [
        ("Contract", Paragraph(f"{_escape(evidence.title)} (contract {evidence.contract_id})", small)),
        ("Account", Paragraph(_escape(f"{evidence.customer_name}, {evidence.customer_number}"), small)),
        ("Document SHA-256", Paragraph(evidence.document_sha256, mono)),
        ("Document", Paragraph(f"{evidence.pages} page(s), {evidence.document_size} bytes", small)),
        ("Signer", Paragraph(_escape(f"{evidence.signer_name} <{evidence.signer_email}>"), small)),
        ("Typed name", Paragraph(_escape(evidence.typed_name), small)),
        ("Signed at (UTC)", Paragraph(f"{at:%Y-%m-%d %H:%M:%S} UTC", small)),
        ("IP address", Paragraph(_escape(evidence.ip or "unknown"), small)),
        ("User agent", Paragraph(_escape(evidence.user_agent or "unknown"), small)),
        ("Authentication", Paragraph(_escape(evidence.auth_method), small)),
        ("Signature id", Paragraph(str(evidence.signature_id), small)),
    ]
    table = Table([[label, value] for label, value in rows], hAlign="LEFT", colWidths=[38 * mm, 136 * mm])
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold"),
                ("FONTSIZE", (0, 0), (-1, -1), 8.5),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#e2e8f0")),
            ]
        )
    )
    story = [
        Paragraph(CERTIFICATE_TITLE, styles["Title"]),
        Paragraph(
            f"{_escape(evidence.organization_name)} certifies that the document on the pages before "
            "this one was signed electronically as follows.",
            styles["Normal"],
        ),
        Spacer(1, 5 * mm),
        table,
        Spacer(1, 5 * mm),
        Paragraph("The signer ticked this statement:", styles["Heading4"]),
        Paragraph(_escape(evidence.consent_text), small),
        Spacer(1, 5 * mm),
        Paragraph(
            "The SHA-256 above is the hash of the document exactly as it was sent for signature, "
            "before this page was added. The document can be verified against it, and this signed "
            "copy against the hash shown on the contract's page in the portal.",
            small,
        ),
    ]
    doc.build(story)
    return buffer.getvalue()


def with_certificate(original: bytes, certificate: bytes) -> bytes:
    """The original's pages, unchanged, then the certificate's."""
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(original)))
    writer.append(PdfReader(io.BytesIO(certificate)))
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()
