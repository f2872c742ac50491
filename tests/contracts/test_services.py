"""Contracts through their services: a contract's hashes verify and one changed byte fails;
signing reads the stored file once and refuses a changed one (AR told once per contract);
the signed copy is built from exactly the bytes checked: the original pages and a
certificate page stating the evidence, filed among the customer's documents; a signed
contract never changes, not even through a queryset; a withdrawn or expired one cannot be
signed; templates fill from a payment plan or from typed company details."""

from __future__ import annotations

import datetime
import hashlib
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import ProtectedError
from django_scopes import scope, scopes_disabled
from pypdf import PdfReader

from factories import TODAY, Users, in_threads, issue_invoice, make_contact
from openar.billing.models import Document
from openar.commitments.services import plan_create, plan_quote, plan_terms
from openar.contracts import templates
from openar.contracts.models import Contract, ImmutableError, Signature
from openar.contracts.services import (
    IntegrityFailure,
    _move,
    contract_from_template,
    contract_send,
    contract_upload,
    contract_verify,
    contract_withdraw,
    contracts_expire_all,
    contracts_expire_due,
)
from openar.core.errors import ServiceError
from openar.customers.models import Activity, Contact, Customer
from openar.identity.models import MagicLink
from openar.notifications.models import Message
from openar.tenants.models import Organization

from .conftest import SignFn, events, fresh, pdf_bytes

pytestmark = pytest.mark.usefixtures("clock")


def read(file_field: object) -> bytes:
    with file_field.open("rb") as handle:  # type: ignore[attr-defined]
        return bytes(handle.read())


def one_byte_changed(data: bytes, at: int | None = None) -> bytes:
    position = len(data) // 2 if at is None else at
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


# --- verifying -------------------------------------------------------------------------------


def test_a_signed_contracts_hashes_verify_and_one_changed_byte_fails(
    make_contract, sign: SignFn, contact: Contact
) -> None:
    original = pdf_bytes()
    contract = sign(make_contract(contact.customer, content=original), contact)
    signed = read(contract.signed_file)
    assert contract.state == "signed"
    assert contract.sha256 == hashlib.sha256(original).hexdigest()
    assert contract.signed_sha256 == hashlib.sha256(signed).hexdigest()

    as_sent = contract_verify(contract, original)
    assert (as_sent.outcome, as_sent.matches) == ("original", True)
    assert as_sent.message == "This file matches the original as sent for signature."
    as_signed = contract_verify(contract, signed)
    assert (as_signed.outcome, as_signed.size) == ("signed", len(signed))
    assert as_signed.message == "This file matches the signed copy."

    for tampered in (one_byte_changed(original), one_byte_changed(signed), one_byte_changed(original, 0)):
        result = contract_verify(contract, tampered)
        assert (result.outcome, result.matches) == ("none", False)
        assert result.message.startswith("This file does not match this contract")
    assert contract_verify(contract, original + b"\n").outcome == "none"  # one byte more
    assert contract_verify(contract, b"").outcome == "none"


# --- making and sending ----------------------------------------------------------------------


def test_an_uploaded_pdf_becomes_a_draft_with_its_hash_and_a_server_made_name(
    make_contract, customer: Customer
) -> None:
    content = pdf_bytes()
    contract = make_contract(
        customer, send=False, content=content, expires_on=TODAY + datetime.timedelta(days=10)
    )
    assert (contract.state, contract.source, contract.template) == ("draft", "uploaded", "")
    assert contract.size == len(content)
    assert read(contract.file) == content
    assert contract.file.name.startswith(f"contracts/{customer.organization_id}/")
    assert "service" not in contract.file.name  # the uploaded name is metadata only
    assert contract.filename == "service-agreement.pdf"
    (event,) = events("openar.contract.created")
    assert event.data == {
        "source": "uploaded",
        "template": "",
        "sha256": contract.sha256,
        "size": len(content),
        "pages": 2,
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"GIF89a not a pdf", "Choose a PDF file: this file is not a PDF."),
        (b"%PDF-1.4\nthis is no pdf at all", "This PDF cannot be read: it may be damaged."),
    ],
)
def test_what_is_not_a_readable_pdf_is_refused_and_nothing_is_kept(
    users: Users, customer: Customer, content: bytes, message: str
) -> None:
    with scope(organization=customer.organization), pytest.raises(ServiceError) as refused:
        contract_upload(
            customer=customer, title="Bad", content=content, filename="x.pdf", actor=users.collector
        )
    assert (refused.value.message, refused.value.field) == (message, "file")
    with scopes_disabled():
        assert Contract.objects.count() == 0
    assert events("openar.contract.created") == []


def test_sending_emails_each_contact_a_sign_in_link_to_the_contract(
    make_contract, users: Users, customer: Customer, contact: Contact, django_capture_on_commit_callbacks
) -> None:
    second = make_contact(customer, "Sam Buyer", "sam@bolt.example", is_primary=False)
    no_mail = make_contact(customer, "Quiet Person", "quiet@bolt.example", is_primary=False)
    with scopes_disabled():
        Contact.objects.filter(pk=no_mail.pk).update(consent_email=False)
    draft = make_contract(customer, send=False)
    with scope(organization=customer.organization), django_capture_on_commit_callbacks(execute=True):
        sent = contract_send(contract=draft, actor=users.collector)
    assert [c.pk for c in sent.emailed] == [contact.pk, second.pk]
    contract = fresh(draft)
    assert (contract.state, contract.sent_by_id) == ("sent", users.collector.pk)
    assert sorted(m.to[0] for m in mail.outbox) == ["dana@bolt.example", "sam@bolt.example"]
    message = next(m for m in mail.outbox if m.to == ["dana@bolt.example"])
    assert message.subject == "Please sign: Service agreement 2025"
    assert "/l/" in message.body and contract.sha256 in message.body
    with scopes_disabled():
        links = {link.contact_id: link.target for link in MagicLink.objects.all()}
        assert links == {
            contact.pk: f"/portal/contracts/{contract.pk}/",
            second.pk: f"/portal/contracts/{contract.pk}/",
        }
        assert Message.objects.filter(customer=customer).count() == 2
        assert list(Activity.objects.filter(kind="status").values_list("summary", flat=True)) == [
            "Contract sent for signature: Service agreement 2025"
        ]
    (event,) = events("openar.contract.sent")
    assert event.data == {"sha256": contract.sha256, "emailed": [contact.pk, second.pk]}
    with scope(organization=customer.organization), pytest.raises(ServiceError) as again:
        contract_send(contract=contract, actor=users.collector)
    assert again.value.message == "This contract is waiting for signature: it cannot be sent."


# --- signing ---------------------------------------------------------------------------------


def test_signing_keeps_the_evidence_and_files_the_signed_copy_with_a_certificate_page(
    make_contract, sign: SignFn, users: Users, contact: Contact, django_capture_on_commit_callbacks
) -> None:
    original = pdf_bytes()
    contract = make_contract(contact.customer, content=original)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        contract = sign(contract, contact, typed_name="  Dana   Payables ")
    with scopes_disabled():
        signature = Signature.objects.get(contract=contract)
        assert contract.signed_document_id is not None
        document = Document.objects.get(pk=contract.signed_document_id)
    assert (signature.typed_name, signature.signer_name, signature.signer_email) == (
        "Dana Payables",
        "Dana Payables",
        "dana@bolt.example",
    )
    assert (signature.signer_user_id, signature.contact_id) == (users.customer.pk, contact.pk)
    assert (signature.ip, signature.user_agent, signature.auth_method) == (
        "203.0.113.7",
        "Mozilla/5.0 (Test) Firefox/130.0",
        "password + authenticator app",
    )
    assert signature.document_sha256 == contract.sha256
    assert signature.consent_given is True and contract.sha256 in signature.consent_text
    assert signature.signed_at == contract.signed_at

    signed = read(contract.signed_file)
    assert (document.kind, document.visible_to_customer, document.sha256, document.size) == (
        "contract",
        True,
        contract.signed_sha256,
        len(signed),
    )
    assert read(document.file) == signed
    assert document.title == "Service agreement 2025 (signed)"

    reader, before = PdfReader(io.BytesIO(signed)), PdfReader(io.BytesIO(original))
    assert len(reader.pages) == len(before.pages) + 1 == 3
    for n in range(2):  # the original pages, unchanged
        assert reader.pages[n].extract_text() == before.pages[n].extract_text()
    certificate = " ".join(reader.pages[-1].extract_text().split())
    for expected in (
        "Certificate of electronic signature",
        "Service agreement 2025",
        contract.sha256,
        "Dana Payables <dana@bolt.example>",
        f"{signature.signed_at:%Y-%m-%d %H:%M:%S} UTC",
        "203.0.113.7",
        "Mozilla/5.0 (Test) Firefox/130.0",
        "password + authenticator app",
        f"Signature id {signature.pk}",
    ):
        assert expected in certificate, expected

    (event,) = events("openar.contract.signed")
    assert event.data["signature"] == signature.pk
    assert (event.data["document_sha256"], event.data["signed_sha256"]) == (
        contract.sha256,
        contract.signed_sha256,
    )
    assert event.ip == "203.0.113.7"
    to_customer = [m for m in mail.outbox if m.subject == "Signed: Service agreement 2025"]
    assert [m.to for m in to_customer] == [["dana@bolt.example"]]
    assert contract.signed_sha256 in to_customer[0].body


def test_signing_refuses_when_the_stored_file_changed_and_tells_ar_once(
    make_contract, sign: SignFn, contact: Contact, django_capture_on_commit_callbacks
) -> None:
    Organization.objects.filter(pk=contact.organization_id).update(email="ar@acme.example")
    contract = make_contract(contact.customer)
    other = make_contract(contact.customer, title="Personal guarantee")
    found = {}
    for each in (contract, other):
        storage, name = each.file.storage, each.file.name
        tampered = one_byte_changed(read(each.file))
        storage.delete(name)
        assert storage.save(name, ContentFile(tampered)) == name
        found[each.pk] = hashlib.sha256(tampered).hexdigest()
    mail.outbox.clear()
    for attempt in (contract, contract, contract, other):  # three attempts on one, one on the other
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(IntegrityFailure) as refused:
            sign(attempt, contact)
        assert refused.value.message.startswith(
            "This contract cannot be signed: its file is not the document"
        )
    after = fresh(contract)
    assert (after.state, after.signed_sha256, after.signed_document_id) == ("sent", "", None)
    with scopes_disabled():
        assert Signature.objects.count() == 0
        assert Document.objects.count() == 0
    audited = events("openar.contract.integrity_failed")
    assert [(e.object_id, e.data["ar_told"]) for e in audited] == [
        (str(contract.pk), True),
        (str(contract.pk), False),
        (str(contract.pk), False),
        (str(other.pk), True),
    ]
    assert audited[0].data == {"expected": contract.sha256, "found": found[contract.pk], "ar_told": True}
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["ar@acme.example"], f"Contract {contract.pk} of Bolt Hardware cannot be signed"),
        (["ar@acme.example"], f"Contract {other.pk} of Bolt Hardware cannot be signed"),
    ]
    assert contract.sha256 in mail.outbox[0].body
    assert events("openar.contract.signed") == []


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_simultaneous_attempts_on_a_changed_file_tell_ar_once(
    make_contract, sign: SignFn, contact: Contact
) -> None:
    Organization.objects.filter(pk=contact.organization_id).update(email="ar@acme.example")
    contract = make_contract(contact.customer)
    storage, name = contract.file.storage, contract.file.name
    tampered = one_byte_changed(read(contract.file))
    storage.delete(name)
    storage.save(name, ContentFile(tampered))
    mail.outbox.clear()

    results = in_threads(8, lambda n: sign(contract, contact))

    assert [type(r) for r in results] == [IntegrityFailure] * 8
    audited = events("openar.contract.integrity_failed")
    assert sorted(e.data["ar_told"] for e in audited) == [False] * 7 + [True]
    assert [m.subject for m in mail.outbox] == [f"Contract {contract.pk} of Bolt Hardware cannot be signed"]
    assert fresh(contract).state == "sent"


def test_the_signed_copy_is_built_from_the_very_bytes_that_were_hashed(
    make_contract, sign: SignFn, contact: Contact, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored file is swapped for another PDF right after its first read: the signing
    reads it once, so it signs what it checked (before, it checked one read and built the
    signed copy from a second one)."""
    original = pdf_bytes()
    contract = make_contract(contact.customer, content=original)
    storage, name = contract.file.storage, contract.file.name
    swapped = pdf_bytes("TAMPERED: the customer owes 1,000,000", pages=1)
    backend = type(storages["default"])
    real_open = backend._open  # type: ignore[attr-defined]
    reads: list[str] = []

    def open_then_swap(self: object, path: str, mode: str = "rb") -> object:
        handle = real_open(self, path, mode)
        if path != name:
            return handle
        reads.append(path)
        if len(reads) > 1:
            return handle
        content = handle.read()  # the first read gets the original; the stored file changes
        handle.close()
        storage.delete(name)
        storage.save(name, ContentFile(swapped))
        return ContentFile(content, name=path)

    monkeypatch.setattr(backend, "_open", open_then_swap)
    signed = fresh(sign(contract, contact))
    monkeypatch.undo()
    assert reads == [name]
    assert signed.state == "signed"
    copy = PdfReader(io.BytesIO(read(signed.signed_file)))
    text = "".join(page.extract_text() for page in copy.pages)
    assert "TAMPERED" not in text
    assert len(copy.pages) == 3  # the original's two pages and the certificate
    assert contract.sha256 in text


def test_a_missing_file_is_refused_too(make_contract, sign: SignFn, contact: Contact) -> None:
    contract = make_contract(contact.customer)
    contract.file.storage.delete(contract.file.name)
    with pytest.raises(IntegrityFailure):
        sign(contract, contact)
    assert events("openar.contract.integrity_failed")[0].data["found"] == "missing"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"typed_name": " "}, "typed_name", "Type your full name to sign."),
        ({"consent": False}, "consent", "Tick the box to agree to sign electronically."),
        (
            {"shown_consent": "I agree."},
            None,
            "The statement to agree to changed: read it again before signing.",
        ),
        (
            {"seen_sha256": "0" * 64},
            None,
            "The document changed since you opened it: read it again before signing.",
        ),
    ],
)
def test_signing_without_a_name_consent_or_the_current_document_is_refused(
    make_contract, sign: SignFn, contact: Contact, change: dict[str, object], field: str | None, message: str
) -> None:
    contract = make_contract(contact.customer)
    with pytest.raises(ServiceError) as refused:
        sign(contract, contact, **change)
    assert (refused.value.message, refused.value.field) == (message, field)
    assert fresh(contract).state == "sent"
    with scopes_disabled():
        assert Signature.objects.count() == Document.objects.count() == 0


def test_a_contact_of_another_customer_cannot_sign(
    make_contract, sign: SignFn, customer_2: Customer, contact: Contact
) -> None:
    contract = make_contract(contact.customer)
    stranger = make_contact(customer_2, "Stranger", "s@anvil.example")
    with pytest.raises(ServiceError) as refused:
        sign(contract, stranger)
    assert refused.value.message == "Only someone on the account can sign."
    assert fresh(contract).state == "sent"


# --- immutability, withdrawing, expiry -------------------------------------------------------


def test_a_signed_contract_is_immutable(make_contract, sign: SignFn, users: Users, contact: Contact) -> None:
    contract = sign(make_contract(contact.customer), contact)
    with scope(organization=contract.organization):
        for change in (
            {"sha256": "0" * 64},
            {"title": "Something else"},
            {"state": "withdrawn"},
            {"signed_sha256": ""},
        ):
            loaded = Contract.objects.get(pk=contract.pk)
            for name, value in change.items():
                setattr(loaded, name, value)
            with pytest.raises(ImmutableError):
                loaded.save()
        # Refused by the signature's protecting key, and by pre_delete were it gone.
        with pytest.raises((ImmutableError, ProtectedError)):
            Contract.objects.get(pk=contract.pk).delete()
        with pytest.raises((ImmutableError, ProtectedError)):
            Contract.objects.filter(pk=contract.pk).delete()
        signature = Signature.objects.get(contract=contract)
        signature.typed_name = "Someone Else"
        with pytest.raises(ImmutableError):
            signature.save()
        with pytest.raises(ImmutableError):
            signature.delete()
        with pytest.raises(ServiceError) as withdraw:
            contract_withdraw(contract=contract, actor=users.collector, reason="changed our mind")
        assert withdraw.value.message == "This contract is signed: it cannot be withdrawn."
        with pytest.raises(ServiceError) as again:
            contract_send(contract=contract, actor=users.collector)
        assert again.value.message == "This contract is signed: it cannot be sent."
    with pytest.raises(ServiceError) as twice:
        sign(contract, contact)
    assert twice.value.message == "This contract is already signed."
    after = fresh(contract)
    assert (after.sha256, after.title, after.signed_sha256) == (
        contract.sha256,
        contract.title,
        contract.signed_sha256,
    )
    with scopes_disabled():
        assert Signature.objects.count() == 1


def test_a_drafts_document_never_changes_either(make_contract, customer: Customer) -> None:
    contract = make_contract(customer, send=False)
    with scope(organization=customer.organization):
        loaded = Contract.objects.get(pk=contract.pk)
        loaded.sha256 = "f" * 64
        with pytest.raises(ImmutableError):
            loaded.save()
        loaded = Contract.objects.get(pk=contract.pk)
        loaded.summary = "Net 45."  # what is not the document may change before sending
        loaded.save()
    assert fresh(contract).summary == "Net 45."


def test_querysets_never_change_or_delete_a_signed_contract_or_a_signature(
    make_contract, sign: SignFn, contact: Contact
) -> None:
    signed = sign(make_contract(contact.customer, title="Signed one"), contact)
    waiting = make_contract(contact.customer, title="Waiting one")
    with scopes_disabled():
        before = list(Contract.objects.order_by("pk").values())
        signature_before = list(Signature.objects.values())
        signature = Signature.objects.get()
        for queryset in (
            Contract.objects.filter(pk=signed.pk),
            Contract.objects.all(),  # one signed row among others refuses the whole update
            Contract.objects.filter(title="Signed one"),
        ):
            with pytest.raises(ImmutableError, match=r"^A signed contract is never changed\.$"):
                queryset.update(sha256="0" * 64, title="changed")
            with pytest.raises(ImmutableError, match=r"^A signed contract is never deleted\.$"):
                queryset.delete()
        with pytest.raises(ImmutableError):
            Contract.objects.update(state="withdrawn")
        loaded = Contract.objects.get(pk=signed.pk)
        loaded.title = "changed"
        with pytest.raises(ImmutableError), transaction.atomic():
            Contract.objects.bulk_update([loaded], ["title"])
        for change in (
            lambda: Signature.objects.filter(contract_id=signed.pk).update(typed_name="Someone else"),
            lambda: Signature.objects.update(document_sha256="0" * 64),
            lambda: Signature.objects.filter(pk=signature.pk).delete(),
            lambda: Signature.objects.all().delete(),
            lambda: Signature.objects.filter(pk=-1).update(typed_name="nobody"),  # even matching none
        ):
            with pytest.raises(ImmutableError, match="A signature is evidence"):
                change()
        assert list(Contract.objects.order_by("pk").values()) == before
        assert list(Signature.objects.values()) == signature_before
        # An unsigned contract's row may still change in bulk (the services' conditional moves).
        assert Contract.objects.filter(pk=waiting.pk).update(end_reason="note") == 1
        assert Contract.objects.filter(state="sent").update(end_reason="again") == 1
        assert Contract.objects.get(pk=waiting.pk).end_reason == "again"
    with scope(organization=signed.organization):
        locked = Contract.objects.get(pk=signed.pk)
        with pytest.raises(ImmutableError):  # the services' move refuses a signed contract too
            _move(locked, to=Contract.State.WITHDRAWN, end_reason="changed our mind")
    assert (fresh(signed).state, fresh(signed).end_reason) == ("signed", "")


def test_a_bulk_update_never_reaches_a_contract_signed_meanwhile(
    make_contract, sign: SignFn, contact: Contact, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check that a queryset holds no signed contract and the update are two queries:
    a contract signed between them is still left alone by the update."""
    contract = make_contract(contact.customer)
    with scope(organization=contract.organization):
        queryset = Contract.objects.filter(pk=contract.pk)
        monkeypatch.setattr(type(queryset), "_refuse_signed", lambda self, what: None)
        sign(contract, contact)
        assert queryset.update(title="changed") == 0
    assert fresh(contract).title == "Service agreement 2025"


def test_a_withdrawn_contract_cannot_be_signed(
    make_contract, sign: SignFn, users: Users, contact: Contact, django_capture_on_commit_callbacks
) -> None:
    contract = make_contract(contact.customer)
    mail.outbox.clear()
    with scope(organization=contract.organization):
        with pytest.raises(ServiceError) as no_reason:
            contract_withdraw(contract=contract, actor=users.collector, reason=" ")
        assert (no_reason.value.message, no_reason.value.field) == (
            "Say why the contract is withdrawn.",
            "reason",
        )
        with django_capture_on_commit_callbacks(execute=True):
            contract_withdraw(contract=contract, actor=users.collector, reason="Terms changed")
    after = fresh(contract)
    assert (after.state, after.end_reason, after.ended_by_id) == (
        "withdrawn",
        "Terms changed",
        users.collector.pk,
    )
    assert [m.subject for m in mail.outbox] == ["Withdrawn: Service agreement 2025"]
    (event,) = events("openar.contract.withdrawn")
    assert event.data == {"reason": "Terms changed", "was_sent": True}
    with pytest.raises(ServiceError) as refused:
        sign(after, contact)
    assert refused.value.message == "This contract is withdrawn: it can no longer be signed."
    with scopes_disabled():
        assert Signature.objects.count() == 0


def test_a_contract_past_its_last_day_expires_and_cannot_be_signed(
    make_contract, sign: SignFn, contact: Contact, clock: time_machine.Traveller
) -> None:
    contract = make_contract(contact.customer, expires_on=TODAY + datetime.timedelta(days=2))
    clock.shift(datetime.timedelta(days=3))
    with pytest.raises(ServiceError) as refused:
        sign(contract, contact)
    assert refused.value.message == "This contract can no longer be signed: its last day has passed."
    assert fresh(contract).state == "expired"
    assert len(events("openar.contract.expired")) == 1
    with scope(organization=contract.organization):
        assert contracts_expire_due() == 0  # already done


def test_the_periodic_expiry_expires_only_what_is_past_its_last_day(
    make_contract, contact: Contact, clock: time_machine.Traveller
) -> None:
    soon = make_contract(contact.customer, expires_on=TODAY + datetime.timedelta(days=1))
    later = make_contract(contact.customer, expires_on=TODAY + datetime.timedelta(days=9))
    open_ended = make_contract(contact.customer)
    clock.shift(datetime.timedelta(days=2))
    assert contracts_expire_all() == 1  # the periodic job, across organizations
    assert [fresh(c).state for c in (soon, later, open_ended)] == ["expired", "sent", "sent"]
    with scope(organization=contact.customer.organization):
        assert contracts_expire_due() == 0


# --- templates -------------------------------------------------------------------------------


def test_a_payment_arrangement_agreement_is_filled_from_the_customers_plan(
    users: Users, customer: Customer, contact: Contact
) -> None:
    issue_invoice(customer, "INV-1", "100.00", due_date=TODAY - datetime.timedelta(days=20))
    issue_invoice(customer, "INV-2", "200.00", due_date=TODAY - datetime.timedelta(days=5))
    with scope(organization=customer.organization):
        fields: dict[str, Any] = {
            "invoices": [],
            "down_payment": Decimal("0"),
            "frequency": "monthly",
            "installment_count": 3,
            "first_date": TODAY + datetime.timedelta(days=1),
        }
        shown = plan_quote(customer=customer, **fields)
        plan = plan_create(
            customer=customer,
            **fields,
            agreed_text=plan_terms(customer, shown, None),
            contact=contact,
            actor=None,
            ip="203.0.113.9",
            saved_method=None,
            form_token="",
            source="portal",
        )
        filled = templates.arrangement_fields(customer, plan, extra_terms="Interest waived while on plan.")
        contract = contract_from_template(
            customer=customer, template=templates.PAYMENT_ARRANGEMENT, fields=filled, actor=users.collector
        )
    assert (contract.source, contract.template, contract.plan_id) == (
        "template",
        "payment_arrangement",
        plan.pk,
    )
    assert contract.title == "Payment arrangement agreement: Bolt Hardware"
    assert filled["installments"] == [
        {"label": "Installment 1", "date": "2025-07-01", "amount": "$100.00"},
        {"label": "Installment 2", "date": "2025-08-01", "amount": "$100.00"},
        {"label": "Installment 3", "date": "2025-09-01", "amount": "$100.00"},
    ]
    assert contract.summary.splitlines() == [
        "Total: $300.00, paid as 3 monthly installments.",
        "Invoices: INV-1, INV-2.",
        "Installment 1: $100.00 on 1 July 2025",
        "Installment 2: $100.00 on 1 August 2025",
        "Installment 3: $100.00 on 1 September 2025",
        "Further terms: Interest waived while on plan.",
    ]
    text = " ".join(PdfReader(io.BytesIO(read(contract.file))).pages[0].extract_text().split())
    for expected in (
        "Payment arrangement agreement",
        "$300.00",
        "INV-1, INV-2",
        "1 August 2025",
        "Interest waived",
    ):
        assert expected in text, expected


def test_a_credit_application_checks_what_staff_typed(users: Users, customer: Customer) -> None:
    good = templates.CreditInput(
        legal_name="Bolt Hardware Ltd.",
        registration_number="BN 12345",
        address="1 Main St\nToronto",
        contact_name="Dana Payables",
        contact_email="dana@bolt.example",
        credit_limit="25,000.00",
        terms_days="45",
    )
    with scope(organization=customer.organization):
        for change, field, message in (
            ({"legal_name": " "}, "legal_name", "Enter the company's legal name."),
            ({"address": ""}, "address", "Enter the company's address."),
            ({"credit_limit": "12,50"}, "credit_limit", None),
            ({"credit_limit": "0"}, "credit_limit", "Enter a credit limit above zero."),
            ({"terms_days": "30.5"}, "terms_days", "Enter the payment terms as a number of days."),
            ({"terms_days": "400"}, "terms_days", "Payment terms are 1 to 365 days."),
            ({"contact_email": "nope"}, "contact_email", "Enter a valid email address, or leave it empty."),
        ):
            with pytest.raises(ServiceError) as refused:
                templates.credit_fields(customer, templates.CreditInput(**{**good.__dict__, **change}))
            assert refused.value.field == field
            if message:
                assert refused.value.message == message
        contract = contract_from_template(
            customer=customer,
            template=templates.CREDIT_APPLICATION,
            fields=templates.credit_fields(customer, good),
            actor=users.collector,
        )
    assert contract.summary.splitlines() == [
        "Applicant: Bolt Hardware Ltd. (registration BN 12345)",
        "Credit limit requested: $25,000.00.",
        "Payment terms: net 45 days.",
    ]
    text = " ".join(PdfReader(io.BytesIO(read(contract.file))).pages[0].extract_text().split())
    assert "Credit application" in text and "$25,000.00" in text and "Net 45 days" in text


def test_the_command_checks_a_file_against_a_contract(
    make_contract, sign: SignFn, contact: Contact, tmp_path: Path
) -> None:
    contract = sign(make_contract(contact.customer), contact)
    signed = tmp_path / "signed.pdf"
    signed.write_bytes(read(contract.signed_file))
    out = io.StringIO()
    call_command("contract_verify", str(contract.pk), str(signed), stdout=out)
    assert out.getvalue().splitlines()[0] == "This file matches the signed copy."
    changed = tmp_path / "changed.pdf"
    changed.write_bytes(one_byte_changed(signed.read_bytes()))
    with pytest.raises(SystemExit) as failed:
        call_command("contract_verify", str(contract.pk), str(changed), stdout=io.StringIO())
    assert failed.value.code == 1
    with pytest.raises(CommandError, match=r"No contract 999999\."):
        call_command("contract_verify", "999999", str(signed))
