"""Letters rendered to PDF with ReportLab, for staff to print and post.

A letter is "sent" by being rendered and kept: the PDF is stored as the customer's
``Document`` of kind LETTER (visible to the customer, who may read it in the portal), and
``message_send`` links it to the message as its attachment. Posting it is a person's job,
so the message ends ``sent`` and never ``delivered``.

This is the one backend that writes to the database (see ``base``): the printable file is
the letter, and it must outlive the worker that rendered it. It writes only that document
(through ``billing.services.document_store``, with its audit event); the message's state
and the timeline stay with ``message_send``.

The page is A4, like the statements; ``settings.OPENAR_LETTER_PAGE_SIZE = "letter"`` switches
to US Letter for organizations whose printers hold that paper.
"""

from __future__ import annotations

import datetime
import io
import re
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django_scopes import scope
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Preformatted, SimpleDocTemplate, Spacer

from openar.billing.models import Document
from openar.billing.services import document_store
from openar.notifications.channels.base import Outbound, PermanentFailure, Sent
from openar.notifications.channels.registry import register
from openar.notifications.models import Message
from openar.tenants.models import Organization

MARGIN = 20 * mm
PAGE_SIZES = {"a4": A4, "letter": LETTER}
# A line is laid out as a table row when its columns are separated by a tab, a pipe, or a
# run of spaces inside the text ("INV-1001    2025-05-31    $1,200.00"): a proportional
# font and reflowing would scramble the columns, so such blocks keep their lines, in Courier.
_COLUMNS = re.compile(r"\S(\t| {2,}| \| )\S")


def page_size() -> tuple[float, float]:
    """The paper the organization prints on (A4 unless the settings say letter)."""
    name = str(getattr(settings, "OPENAR_LETTER_PAGE_SIZE", "A4")).lower()
    return PAGE_SIZES.get(name, A4)


def split_address(to: str) -> tuple[str, list[str]]:
    """The recipient's name and postal address lines from ``Outbound.to`` (name first, one
    line each). Fewer than two address lines cannot be posted (a street and a town at least),
    which is a permanent failure: sending again changes nothing until staff add the address."""
    lines = [line.strip() for line in to.splitlines() if line.strip()]
    if len(lines) < 3:
        raise PermanentFailure("no postal address")
    return lines[0], lines[1:]


class PDFLetterChannel:
    name = "pdf"

    def send(self, outbound: Outbound) -> Sent:
        recipient, address = split_address(outbound.to)
        organization = Organization.objects.get(pk=outbound.organization_id)
        with scope(organization=organization):
            message = Message.objects.select_related("customer", "created_by").get(pk=outbound.message_id)
            date = organization.today()
            content = render_letter_pdf(
                organization_name=organization.name,
                date=date,
                recipient=recipient,
                address=address,
                subject=outbound.subject,
                text=outbound.text,
                enclosures=[attachment.filename for attachment in outbound.attachments],
            )
            document = document_store(
                customer=message.customer,
                kind=Document.Kind.LETTER,
                title=f"Letter: {outbound.subject}" if outbound.subject else f"Letter of {date:%Y-%m-%d}",
                filename=f"letter-{date:%Y-%m-%d}-{outbound.message_id}.pdf",
                content=content,
                content_type="application/pdf",
                visible_to_customer=True,
                actor=message.created_by,
            )
        return Sent(provider_id=f"letter-{document.pk}", delivered=False, document_id=document.pk)


def render_letter_pdf(
    *,
    organization_name: str,
    date: datetime.date,
    recipient: str,
    address: list[str],
    subject: str,
    text: str,
    enclosures: list[str] | None = None,
) -> bytes:
    """A business letter: letterhead, the address block (where a window envelope shows it),
    the date, the subject as a heading, then the body. The body flows onto more pages when it
    is long; every page is numbered."""
    buffer = io.BytesIO()
    size = page_size()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=size,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=subject or "Letter",
        author=organization_name,
    )
    styles = getSampleStyleSheet()
    normal = ParagraphStyle("letter", parent=styles["Normal"], fontSize=10.5, leading=14, spaceAfter=3 * mm)
    letterhead = ParagraphStyle("letterhead", parent=styles["Title"], alignment=0, fontSize=16, spaceAfter=0)
    right = ParagraphStyle("date", parent=normal, alignment=TA_RIGHT)
    address_style = ParagraphStyle("address", parent=normal, spaceAfter=0)
    table = ParagraphStyle("table", parent=styles["Code"], fontSize=8.5, leading=11, leftIndent=0)
    columns = int((size[0] - 2 * MARGIN) / (0.6 * table.fontSize))  # Courier is 0.6 em wide

    story: list[Flowable] = [
        Paragraph(escape(organization_name), letterhead),
        Spacer(1, 14 * mm),
        KeepTogether(
            [Paragraph(f"<b>{escape(recipient)}</b>", address_style)]
            + [Paragraph(escape(line), address_style) for line in address]
        ),
        Spacer(1, 10 * mm),
        Paragraph(f"{date:%d %B %Y}", right),
        Spacer(1, 4 * mm),
    ]
    if subject:
        story.append(Paragraph(escape(subject), styles["Heading3"]))
    for block in paragraphs(text):
        if any(_COLUMNS.search(line) for line in block):
            rows = "\n".join(line.expandtabs(8) for line in block)
            story.append(Preformatted(rows, table, maxLineLength=columns))
            story.append(Spacer(1, 3 * mm))
        else:
            story.append(Paragraph("<br/>".join(escape(line.strip()) for line in block), normal))
    if enclosures:
        story.append(Spacer(1, 4 * mm))
        story.append(Paragraph("Enclosed: " + escape(", ".join(enclosures)), normal))
    doc.build(story, onFirstPage=_footer, onLaterPages=_footer)
    return buffer.getvalue()


def paragraphs(text: str) -> list[list[str]]:
    """The body's paragraphs (split on blank lines), each a list of its lines; single line
    breaks are kept, as a letter's author wrote them (a sign-off, an itemized list)."""
    blocks: list[list[str]] = [[]]
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip():
            blocks[-1].append(line.rstrip())
        elif blocks[-1]:
            blocks.append([])
    return [block for block in blocks if block]


def _footer(canvas: Any, doc: Any) -> None:
    canvas.saveState()
    canvas.setFont("Helvetica", 8)
    canvas.setFillColor(colors.HexColor("#475569"))
    canvas.drawRightString(doc.pagesize[0] - MARGIN, 10 * mm, f"Page {doc.page}")
    canvas.restoreState()


register("pdf")(PDFLetterChannel)
