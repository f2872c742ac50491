"""Contracts: make one (an uploaded PDF or a filled template), send it, withdraw it, sign
it, verify a file against it. Each state change is one service that locks the contract,
re-checks its state, acts, audits (``openar.contract.*``) and records a timeline entry in
one transaction; emails leave through the notifications app once that commits.

Signing reads the stored file once, with the contract locked, and refuses when the SHA-256
of those bytes is no longer the one stored when the contract was made (AR is told the first
time, every attempt is audited); the signed copy is built from exactly those bytes: the
original's pages, unchanged, followed by a certificate page stating the evidence, kept with
its own SHA-256 and filed among the customer's documents (kind "contract").
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from openar.billing.services import document_store
from openar.commitments.models import Plan
from openar.contracts import templates
from openar.contracts.models import Contract, Signature
from openar.contracts.notices import tell_ar_signed, tell_signed, tell_to_sign, tell_withdrawn
from openar.contracts.pdf import Evidence, certificate_pdf, pdf_check, sha256_of, with_certificate
from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.core.files import atomic_with_files, file_saved
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Contact, Customer
from openar.customers.services import activity_record
from openar.identity.models import User

logger = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024
PDF = "application/pdf"


class IntegrityFailure(ServiceError):
    """The stored file is no longer the document that was sent: it cannot be signed."""


def _user(actor: User | None) -> User | None:
    return actor if actor is not None and actor.is_authenticated else None


def _filename(text: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:80] or "contract"
    return stem if stem.lower().endswith(".pdf") else f"{stem}.pdf"


def _check_expiry(expires_on: datetime.date | None, today: datetime.date) -> None:
    if expires_on is not None and expires_on < today:
        raise ServiceError("The last day to sign cannot be in the past.", field="expires_on")


def _create(
    *,
    customer: Customer,
    title: str,
    summary: str,
    content: bytes,
    filename: str,
    source: str,
    template: str = "",
    fields: dict[str, Any] | None = None,
    plan: Plan | None = None,
    expires_on: datetime.date | None,
    actor: User | None,
) -> Contract:
    title = title.strip()[:200]
    if not title:
        raise ServiceError("Give the contract a title.", field="title")
    if len(content) > MAX_BYTES:
        raise ServiceError("The PDF is larger than 20 MB.", field="file")
    pages = pdf_check(content)
    _check_expiry(expires_on, customer.organization.today())
    digest, size = sha256_of([content])
    with atomic_with_files():
        contract = Contract(
            organization_id=customer.organization_id,
            customer=customer,
            title=title,
            summary=summary.strip()[:4000],
            source=source,
            template=template,
            fields=fields or {},
            plan=plan,
            filename=_filename(filename),
            sha256=digest,
            size=size,
            expires_on=expires_on,
            created_by=_user(actor),
        )
        contract.file.save(contract.filename, ContentFile(content), save=False)
        file_saved(contract.file.storage, str(contract.file.name))
        contract.save(force_insert=True)
        log_event(
            "openar.contract.created",
            organization=customer.organization,
            obj=contract,
            actor=actor,
            data={"source": source, "template": template, "sha256": digest, "size": size, "pages": pages},
        )
    return contract


def contract_upload(
    *,
    customer: Customer,
    title: str,
    content: bytes,
    filename: str,
    summary: str = "",
    expires_on: datetime.date | None = None,
    actor: User | None,
) -> Contract:
    """A draft contract from a PDF staff uploaded (already through the upload checks):
    refused unless it is a PDF that opens without a password. ``summary``: the key terms
    the customer reads beside it."""
    return _create(
        customer=customer,
        title=title,
        summary=summary,
        content=content,
        filename=filename,
        source=Contract.Source.UPLOADED,
        expires_on=expires_on,
        actor=actor,
    )


def contract_from_template(
    *,
    customer: Customer,
    template: str,
    fields: dict[str, Any],
    expires_on: datetime.date | None = None,
    actor: User | None,
) -> Contract:
    """A draft contract drawn from a template filled with ``fields`` (made by
    ``templates.arrangement_fields`` or ``templates.credit_fields``)."""
    if template not in templates.TITLES:
        raise ServiceError("Choose a template.", field="template")
    plan = None
    if template == templates.PAYMENT_ARRANGEMENT:
        plan_id = fields.get("plan_id")
        plan = (
            Plan.objects.filter(customer=customer, pk=plan_id).first() if isinstance(plan_id, int) else None
        )
        if plan is None:
            raise ServiceError("Choose one of the customer's payment plans.", field="plan")
    title = f"{templates.TITLES[template]}: {customer.name}"
    content = templates.render(
        template, fields, organization_name=customer.organization.name, customer=customer
    )
    return _create(
        customer=customer,
        title=title,
        summary=templates.key_terms(template, fields),
        content=content,
        filename=f"{templates.TITLES[template]} {customer.number}",
        source=Contract.Source.TEMPLATE,
        template=template,
        fields=fields,
        plan=plan,
        expires_on=expires_on,
        actor=actor,
    )


def _locked(contract: Contract) -> Contract:
    return (
        Contract.objects.select_for_update(of=("self",))
        .select_related("customer__organization")
        .get(pk=contract.pk)
    )


def _move(locked: Contract, *, to: str, **changes: Any) -> None:
    """The state change as a conditional UPDATE (SQLite has no row locks): refused when
    someone else moved the contract first. A signed contract is never moved (its queryset
    refuses the update)."""
    updated = Contract.objects.filter(pk=locked.pk, state=locked.state).update(state=to, **changes)
    if updated != 1:
        raise ServiceError("This contract was changed meanwhile: reload the page.")
    locked.refresh_from_db()


@dataclass(frozen=True)
class Sent:
    contract: Contract
    emailed: list[Contact]


def contract_send(*, contract: Contract, actor: User | None) -> Sent:
    """Send a draft for signature: it becomes visible in the portal, and each contact of the
    customer who can receive email gets a sign-in link to its page. Audited
    (``openar.contract.sent``), on the timeline."""
    with transaction.atomic():
        locked = _locked(contract)
        if locked.state != Contract.State.DRAFT:
            raise ServiceError(f"This contract is {locked.get_state_display().lower()}: it cannot be sent.")
        customer = locked.customer
        _check_expiry(locked.expires_on, customer.organization.today())
        _move(locked, to=Contract.State.SENT, sent_at=timezone.now(), sent_by=_user(actor))
        emailed = tell_to_sign(locked, actor=actor)
        activity_record(
            customer=customer,
            kind=Activity.Kind.STATUS,
            summary=f"Contract sent for signature: {locked.title}",
            actor=actor,
        )
        log_event(
            "openar.contract.sent",
            organization=customer.organization,
            obj=locked,
            actor=actor,
            data={"sha256": locked.sha256, "emailed": [contact.pk for contact in emailed]},
        )
    return Sent(locked, emailed)


def contract_withdraw(*, contract: Contract, actor: User | None, reason: str) -> Contract:
    """Staff withdraw a draft or a contract waiting for signature (``reason`` required,
    field "reason"); it can no longer be signed. The customer is told when it had been
    sent. Audited (``openar.contract.withdrawn``), on the timeline."""
    reason = (reason or "").strip()
    with transaction.atomic():
        locked = _locked(contract)
        if locked.state not in (Contract.State.DRAFT, Contract.State.SENT):
            raise ServiceError(
                f"This contract is {locked.get_state_display().lower()}: it cannot be withdrawn."
            )
        if not reason:  # asked after the state: a contract that cannot be withdrawn has no reason field
            raise ServiceError("Say why the contract is withdrawn.", field="reason")
        was_sent = locked.state == Contract.State.SENT
        _move(
            locked,
            to=Contract.State.WITHDRAWN,
            ended_at=timezone.now(),
            ended_by=_user(actor),
            end_reason=reason[:300],
        )
        customer = locked.customer
        activity_record(
            customer=customer,
            kind=Activity.Kind.STATUS,
            summary=f"Contract withdrawn: {locked.title}: {reason}"[:300],
            actor=actor,
            visibility=Activity.Visibility.CUSTOMER if was_sent else Activity.Visibility.INTERNAL,
        )
        log_event(
            "openar.contract.withdrawn",
            organization=customer.organization,
            obj=locked,
            actor=actor,
            data={"reason": reason, "was_sent": was_sent},
        )
        if was_sent:
            tell_withdrawn(locked, reason)
    return locked


def contract_expire(*, contract: Contract) -> bool:
    """A contract waiting for signature whose last day has passed becomes expired (audited
    ``openar.contract.expired``); True when it did."""
    today = contract.customer.organization.today()
    with transaction.atomic():
        updated = Contract.objects.filter(
            pk=contract.pk, state=Contract.State.SENT, expires_on__lt=today
        ).update(state=Contract.State.EXPIRED, ended_at=timezone.now(), end_reason="not signed in time")
        if updated != 1:
            return False
        contract.refresh_from_db()
        activity_record(
            customer=contract.customer,
            kind=Activity.Kind.STATUS,
            summary=f"Contract expired unsigned: {contract.title}"[:300],
        )
        log_event(
            "openar.contract.expired",
            organization=contract.customer.organization,
            obj=contract,
            data={"expires_on": contract.expires_on.isoformat() if contract.expires_on else ""},
        )
    return True


def contracts_expire_due(*, today: datetime.date | None = None) -> int:
    """Expire every contract of the current organization scope past its last day (for a
    periodic job); how many."""
    due = Contract.objects.filter(state=Contract.State.SENT, expires_on__isnull=False)
    if today is not None:
        due = due.filter(expires_on__lt=today)
    return sum(
        contract_expire(contract=contract) for contract in due.select_related("customer__organization")
    )


def contracts_expire_all(now: datetime.datetime | None = None) -> int:
    """The periodic job (``now``: when it was due; each contract's last day is counted in its
    organization's own date at the moment it runs): every organization's contracts past
    their last day; how many expired."""
    with scopes_disabled():
        due = list(
            Contract.objects.filter(state=Contract.State.SENT, expires_on__isnull=False).select_related(
                "customer__organization"
            )
        )
    expired = 0
    for contract in due:
        with scope(organization=contract.customer.organization):
            expired += contract_expire(contract=contract)
    return expired


# --- signing -----------------------------------------------------------------------------------


def consent_text(contract: Contract) -> str:
    """The statement the signer ticks, naming the exact document by its hash."""
    return (
        f"I have read “{contract.title}” (the PDF with SHA-256 {contract.sha256}) and I sign it "
        f"electronically for {contract.customer.name}. I agree that my typed name is my signature "
        "and binds us as a handwritten signature would."
    )


@dataclass(frozen=True)
class Signer:
    """Who signs and how they proved who they are (the front door decides ``auth_method``)."""

    user: User | None
    contact: Contact | None
    ip: str | None
    user_agent: str
    auth_method: str


def contract_sign(
    *,
    contract: Contract,
    signer: Signer,
    typed_name: str,
    consent: bool,
    shown_consent: str,
    seen_sha256: str,
) -> Contract:
    """Sign a contract waiting for signature. Refused (ServiceError with a field) without a
    typed name ("typed_name"), without the box ticked ("consent"), when the consent text or
    the document shown is not the current one, without a proof of identity, after its last
    day (it expires), and (``IntegrityFailure``) when the stored file's hash is no longer
    the one it was sent with. Then: the Signature, the signed copy (original + certificate
    page) with its hash, filed as a document of the customer; audited
    (``openar.contract.signed``), on the timeline; the customer and AR told.

    The stored file is read once, inside the lock: the bytes hashed and compared are the
    bytes the signed copy is built from."""
    typed = " ".join((typed_name or "").split())[:200]
    if len(typed) < 2:
        raise ServiceError("Type your full name to sign.", field="typed_name")
    if not consent:
        raise ServiceError("Tick the box to agree to sign electronically.", field="consent")
    if not signer.auth_method:
        raise ServiceError("Confirm it is you before signing.", field="form")
    if signer.user is None and signer.contact is None:
        raise ServiceError("Only someone on the account can sign.", field="form")
    if signer.contact is not None and signer.contact.customer_id != contract.customer_id:
        raise ServiceError("Only someone on the account can sign.", field="form")
    if contract_expire(contract=contract):
        raise ServiceError("This contract can no longer be signed: its last day has passed.")
    with atomic_with_files():
        locked = _locked(contract)
        if locked.state != Contract.State.SENT:
            raise ServiceError(
                "This contract is already signed."
                if locked.state == Contract.State.SIGNED
                else f"This contract is {locked.get_state_display().lower()}: it can no longer be signed."
            )
        if seen_sha256 != locked.sha256:
            raise ServiceError("The document changed since you opened it: read it again before signing.")
        expected = consent_text(locked)
        if " ".join(shown_consent.split()) != " ".join(expected.split()):
            raise ServiceError("The statement to agree to changed: read it again before signing.")
        original = _stored_bytes(locked)
        found = hashlib.sha256(original).hexdigest() if original is not None else ""
        if original is not None and found == locked.sha256:
            _record_signature(locked, original, signer=signer, typed=typed, consent=expected)
            return locked
    _integrity_failed(contract, found, signer)
    raise IntegrityFailure(
        "This contract cannot be signed: its file is not the document that was sent. "
        "We have told the team; they will send it again."
    )


def _stored_bytes(contract: Contract) -> bytes | None:
    """The contract's file as it is in storage now, read once (None when it is missing)."""
    try:
        with contract.file.open("rb") as handle:
            return bytes(handle.read())
    except (FileNotFoundError, OSError):
        return None


def _record_signature(locked: Contract, original: bytes, *, signer: Signer, typed: str, consent: str) -> None:
    """Inside ``contract_sign``'s transaction, the contract locked and ``original`` checked
    against its hash: the evidence, the signed copy built from ``original``, the move."""
    customer = locked.customer
    organization = customer.organization
    now = timezone.now()
    user = _user(signer.user)
    contact = signer.contact
    signature = Signature(
        organization_id=locked.organization_id,
        contract=locked,
        signer_user=user,
        contact=contact,
        signer_name=(contact.name if contact else "") or (user.full_name if user else "") or typed,
        signer_email=(contact.email if contact else "") or (user.email if user else ""),
        typed_name=typed,
        consent_text=consent,
        consent_given=True,
        signed_at=now,
        ip=signer.ip or None,
        user_agent=signer.user_agent[:300],
        auth_method=signer.auth_method[:100],
        document_sha256=locked.sha256,
    )
    signature.save(force_insert=True)
    signed = with_certificate(original, certificate_pdf(_evidence(locked, signature, original)))
    signed_digest, signed_size = sha256_of([signed])
    stem = locked.filename.removesuffix(".pdf")
    name = locked.signed_file.field.generate_filename(locked, f"{stem}-signed.pdf")
    stored_name = locked.signed_file.storage.save(name, ContentFile(signed))
    file_saved(locked.signed_file.storage, stored_name)
    document = document_store(
        customer=customer,
        kind="contract",
        title=f"{locked.title} (signed)",
        filename=f"{stem}-signed.pdf",
        content=signed,
        content_type=PDF,
        actor=user,
    )
    _move(
        locked,
        to=Contract.State.SIGNED,
        signed_at=now,
        signed_file=stored_name,
        signed_sha256=signed_digest,
        signed_size=signed_size,
        signed_document=document,
    )
    activity_record(
        customer=customer,
        kind=Activity.Kind.PORTAL,
        summary=f"Contract signed by {typed}: {locked.title}"[:300],
        actor=user,
    )
    log_event(
        "openar.contract.signed",
        organization=organization,
        obj=locked,
        actor=user,
        ip=signer.ip,
        data={
            "signature": signature.pk,
            "contact": contact.pk if contact else None,
            "typed_name": typed,
            "auth_method": signature.auth_method,
            "document_sha256": locked.sha256,
            "signed_sha256": signed_digest,
            "user_agent": signature.user_agent[:200],
        },
    )
    tell_signed(locked, signature, document)
    tell_ar_signed(locked, signature)


def _evidence(contract: Contract, signature: Signature, original: bytes) -> Evidence:
    return Evidence(
        contract_id=contract.pk,
        title=contract.title,
        organization_name=contract.customer.organization.name,
        customer_name=contract.customer.name,
        customer_number=contract.customer.number,
        document_sha256=contract.sha256,
        document_size=contract.size,
        pages=pdf_check(original),
        signature_id=signature.pk,
        signer_name=signature.signer_name,
        signer_email=signature.signer_email,
        typed_name=signature.typed_name,
        consent_text=signature.consent_text,
        signed_at=signature.signed_at,
        ip=signature.ip or "",
        user_agent=signature.user_agent,
        auth_method=signature.auth_method,
    )


INTEGRITY_FAILED = "openar.contract.integrity_failed"


def _integrity_failed(contract: Contract, actual: str, signer: Signer) -> None:
    """Recorded in its own transaction (the refusal that follows rolls nothing back). Every
    attempt is audited; AR is emailed at the first only (the contract locked, so two
    attempts at once cannot both be the first)."""
    logger.error("contract %s: stored file does not match its hash", contract.pk)
    with transaction.atomic():
        locked = _locked(contract)
        customer = locked.customer
        first = not AuditEvent.objects.filter(
            action=INTEGRITY_FAILED, object_type=locked._meta.label_lower, object_id=str(locked.pk)
        ).exists()
        log_event(
            INTEGRITY_FAILED,
            organization=customer.organization,
            obj=locked,
            actor=_user(signer.user),
            ip=signer.ip,
            data={"expected": locked.sha256, "found": actual or "missing", "ar_told": first},
        )
        if first:
            from openar.notifications.notices import tell_ar

            tell_ar(
                customer,
                f"Contract {locked.pk} of {customer.name} cannot be signed",
                f"The stored file of “{locked.title}” no longer matches the SHA-256 it was sent with "
                f"({locked.sha256}). Withdraw it and send a new one.",
            )


# --- verifying ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    outcome: str  # "original", "signed" or "none"
    sha256: str
    size: int

    @property
    def matches(self) -> bool:
        return self.outcome != "none"

    @property
    def message(self) -> str:
        if self.outcome == "original":
            return "This file matches the original as sent for signature."
        if self.outcome == "signed":
            return "This file matches the signed copy."
        return "This file does not match this contract: it is not the document sent, nor the signed copy."


def contract_verify_stream(contract: Contract, chunks: Iterable[bytes]) -> VerifyResult:
    """Compare a file, read piece by piece and never stored, with the contract's hashes."""
    digest, size = sha256_of(chunks)
    if digest == contract.sha256:
        outcome = "original"
    elif contract.signed_sha256 and digest == contract.signed_sha256:
        outcome = "signed"
    else:
        outcome = "none"
    return VerifyResult(outcome, digest, size)


def contract_verify(contract: Contract, data: bytes) -> VerifyResult:
    return contract_verify_stream(contract, [data])


# --- reads -------------------------------------------------------------------------------------


def contracts_for_customer(customer: Customer) -> QuerySet[Contract]:
    """What the customer sees: every contract ever sent to them (drafts are staff's)."""
    return (
        Contract.objects.filter(customer=customer)
        .exclude(state=Contract.State.DRAFT)
        .select_related("signature")
        .order_by("-sent_at", "-pk")
    )


# The sign-in link scopes whose sessions see contracts ("" is a full session, or staff
# viewing the portal as the customer).
CONTRACT_SCOPES = frozenset({"", "account", "contract"})


def contracts_visible(
    customer: Customer, *, link_scope: str = "", contract_id: int | None = None
) -> QuerySet[Contract]:
    """The customer's contracts that a session may see: all of them for a full session and
    a sign-in link to the whole account; the one contract of a link to a contract; none for
    any other link (one invoice, what is past due, the pay page)."""
    contracts = contracts_for_customer(customer)
    if link_scope == "contract":
        return contracts.filter(pk=contract_id) if contract_id is not None else contracts.none()
    if link_scope not in CONTRACT_SCOPES:
        return contracts.none()
    return contracts


def effective_state(contract: Contract, today: datetime.date) -> str:
    """The state to show: a contract waiting past its last day is expired even before the
    periodic job marks it."""
    if contract.state == Contract.State.SENT and contract.expires_on and contract.expires_on < today:
        return Contract.State.EXPIRED
    return str(contract.state)
