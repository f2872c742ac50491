"""Letters: a message on the letter channel is rendered to a printable PDF, kept as the
customer's document (the one thing a backend may write), linked to the message as its
attachment, and dated on the timeline; a customer without a postal address fails at once,
with a reason staff can act on, and nothing is stored."""

from __future__ import annotations

import io

import pytest
import time_machine
from django.conf import settings
from django.core.files.storage import default_storage
from django_scopes import scope, scopes_disabled
from pypdf import PdfReader
from pytest_django.fixtures import Settings

from factories import NOON_ON_TODAY, make_document
from openar.billing.models import Document
from openar.customers.models import Activity, Contact, Customer
from openar.notifications.models import Message
from openar.notifications.services import Draft, message_create, message_send

SUBJECT = "Final notice: Bolt Hardware & account C-1001"
BODY = """Dear Dana,

Despite our earlier reminders, the invoices below are still open.
Please pay them within ten days.

Invoice       Due           Open
INV-1001      2025-05-31    $1,200.00
INV-1002\t2025-06-15\t$87.50

Kind regards,
Acme Supplies, accounts receivable"""


@pytest.fixture(autouse=True)
def _letters_are_pdf(settings: Settings) -> None:
    settings.OPENAR_CHANNELS = {**settings.OPENAR_CHANNELS, "letter": "pdf"}


@pytest.fixture
def addressed(customer: Customer) -> Customer:
    """The customer, with a postal address."""
    customer.address_line1 = "12 Foundry Road"
    customer.address_line2 = "Unit 4"
    customer.city, customer.region, customer.postal_code, customer.country = (
        "Hamilton",
        "ON",
        "L8P 4R5",
        "CA",
    )
    customer.save()
    return customer


def send_letter(customer: Customer, contact: Contact | None = None, *, text: str = BODY) -> Message:
    """Create the letter (not queued: the test sends it) and send it, as the task would."""
    with scope(organization=customer.organization):
        message = message_create(
            customer=customer, channel="letter", draft=Draft(SUBJECT, text), contact=contact, send=False
        )
    message_send(message_id=message.pk)
    with scopes_disabled():
        return Message.objects.get(pk=message.pk)


def pdf_text(document: Document) -> str:
    with document.file.open("rb") as file:
        return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(file.read())).pages)


def pdf_reader(document: Document) -> PdfReader:
    with document.file.open("rb") as file:
        return PdfReader(io.BytesIO(file.read()))


def test_a_letter_is_a_stored_pdf_attached_to_its_message(
    addressed: Customer, contact: Contact, clock: time_machine.Traveller
) -> None:
    message = send_letter(addressed, contact)

    assert (message.state, message.attempts, message.error) == (Message.State.SENT, 1, "")
    assert message.provider == "pdf"
    assert message.sent_at == NOON_ON_TODAY
    assert message.delivered_at is None  # it still has to be printed and posted
    with scope(organization=addressed.organization):
        (document,) = message.attachments.all()
        assert list(Document.objects.filter(kind=Document.Kind.LETTER)) == [document]
    assert message.provider_id == f"letter-{document.pk}"
    assert document.customer_id == addressed.pk
    assert document.visible_to_customer
    assert (document.content_type, document.filename) == (
        "application/pdf",
        f"letter-2025-06-30-{message.pk}.pdf",
    )
    assert document.title == f"Letter: {SUBJECT}"
    assert document.file.name and default_storage.exists(document.file.name)

    reader = pdf_reader(document)
    assert reader.metadata is not None and reader.metadata.title == SUBJECT
    assert reader.metadata.author == "Acme Supplies"
    text = pdf_text(document)
    for expected in [
        "Acme Supplies",  # the letterhead
        "Bolt Hardware",
        "12 Foundry Road",
        "Unit 4",
        "Hamilton ON L8P 4R5",
        "CA",
        "30 June 2025",  # the organization's date
        SUBJECT,  # escaped for ReportLab, read back as written
        "Despite our earlier reminders, the invoices below are still open.",
        "Please pay them within ten days.",
        "Kind regards,",
        "Acme Supplies, accounts receivable",
    ]:
        assert expected in text, expected
    # The invoice table keeps its columns: monospace, tabs expanded, never reflowed.
    assert "Invoice       Due           Open" in text
    assert "INV-1001      2025-05-31    $1,200.00" in text
    assert "INV-1002        2025-06-15      $87.50" in text  # tab stops every 8 columns


def test_the_letter_is_on_the_timeline_with_its_date(
    addressed: Customer, contact: Contact, clock: time_machine.Traveller
) -> None:
    message = send_letter(addressed, contact)

    with scope(organization=addressed.organization):
        (activity,) = Activity.objects.filter(kind=Activity.Kind.LETTER)
    assert activity.occurred_at == message.sent_at == NOON_ON_TODAY
    assert activity.summary == f"Letter sent: {SUBJECT}"
    assert activity.visibility == Activity.Visibility.CUSTOMER
    assert activity.body == BODY


def test_a_long_letter_runs_onto_numbered_pages(addressed: Customer, clock: time_machine.Traveller) -> None:
    paragraph = "We have written to you several times about this balance. " * 12
    text = "\n\n".join([paragraph] * 14 + ["Kind regards,\nAcme Supplies"])

    message = send_letter(addressed, text=text)

    with scope(organization=addressed.organization):
        (document,) = message.attachments.all()
    pages = pdf_reader(document).pages
    assert len(pages) >= 2
    assert "Bolt Hardware" in pages[0].extract_text()
    assert "Page 2" in pages[1].extract_text()
    assert "Kind regards," in pages[-1].extract_text()
    assert pages[0].mediabox.width == pytest.approx(595.28, abs=0.1)  # A4


def test_the_page_size_can_be_us_letter(
    addressed: Customer, clock: time_machine.Traveller, settings: Settings
) -> None:
    settings.OPENAR_LETTER_PAGE_SIZE = "letter"

    message = send_letter(addressed)

    with scope(organization=addressed.organization):
        (document,) = message.attachments.all()
    page = pdf_reader(document).pages[0]
    assert (float(page.mediabox.width), float(page.mediabox.height)) == (612, 792)


def test_enclosed_documents_are_listed_and_stay_attached(
    addressed: Customer, clock: time_machine.Traveller
) -> None:
    statement = make_document(
        addressed,
        title="Statement",
        filename="statement-C-1001.pdf",
        content=b"%PDF-1.4 statement",
        kind=Document.Kind.STATEMENT,
    )
    with scope(organization=addressed.organization):
        message = message_create(
            customer=addressed,
            channel="letter",
            draft=Draft(SUBJECT, BODY),
            attachments=[statement],
            send=False,
        )
    message_send(message_id=message.pk)

    with scope(organization=addressed.organization):
        attached = {document.kind: document for document in message.attachments.all()}
    assert set(attached) == {Document.Kind.STATEMENT, Document.Kind.LETTER}
    assert "Enclosed: statement-C-1001.pdf" in pdf_text(attached[Document.Kind.LETTER])


@pytest.mark.parametrize(
    "address",
    [
        pytest.param({}, id="no address"),
        pytest.param({"country": "CA"}, id="one line"),
    ],
)
def test_a_customer_without_a_postal_address_fails_permanently(
    customer: Customer, contact: Contact, clock: time_machine.Traveller, address: dict[str, str]
) -> None:
    for field, value in address.items():
        setattr(customer, field, value)
    customer.save()

    message = send_letter(customer, contact)

    assert (message.state, message.error, message.attempts) == (Message.State.FAILED, "no postal address", 1)
    assert message.provider == "pdf"
    assert message.sent_at is None
    assert message.not_before is None  # not retried: nothing changes until staff add the address
    with scope(organization=customer.organization):
        assert not Document.objects.exists()
        assert not message.attachments.exists()
        assert not Activity.objects.filter(kind=Activity.Kind.LETTER).exists()
        contact.refresh_from_db()
    assert (contact.email_problem, contact.phone_problem) == ("", "")  # a letter flags no address


def test_sending_again_renders_nothing_more(addressed: Customer, clock: time_machine.Traveller) -> None:
    message = send_letter(addressed)

    assert message_send(message_id=message.pk) == Message.State.SENT
    with scope(organization=addressed.organization):
        assert Document.objects.filter(kind=Document.Kind.LETTER).count() == 1


def test_the_test_settings_send_letters_as_pdf() -> None:
    assert settings.OPENAR_CHANNELS["letter"] == "pdf"
