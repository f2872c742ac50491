"""What contracts tell the customer and AR. Customer emails are Messages (stored whole,
sent once the transaction commits); AR gets a short email after the commit. Callers run
these inside their transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from openar.customers.models import Contact
from openar.identity.magic import magic_links_issue
from openar.identity.models import MagicLink, User
from openar.notifications.models import Channel
from openar.notifications.notices import tell_ar, tell_customer
from openar.notifications.rendering import text_to_html
from openar.notifications.services import Draft, message_create

if TYPE_CHECKING:
    from openar.billing.models import Document
    from openar.contracts.models import Contract, Signature


def contract_path(contract: Contract) -> str:
    return f"/portal/contracts/{contract.pk}/"


def signers(contract: Contract) -> list[Contact]:
    """The customer's contacts who can receive the email asking them to sign: an address
    that works, and email agreed to."""
    return list(
        Contact.objects.filter(customer_id=contract.customer_id, consent_email=True, email_problem="")
        .exclude(email="")
        .select_related("customer__organization")
        .order_by("-is_primary", "pk")
    )


def tell_to_sign(contract: Contract, *, actor: User | None) -> list[Contact]:
    """Each contact who can receive email gets their own sign-in link to the contract: a
    link of scope "contract", whose session sees that contract's pages and nothing else of
    the account's contracts; the contacts emailed."""
    contacts = signers(contract)
    if not contacts:
        return []
    customer = contract.customer
    organization = customer.organization
    issued = magic_links_issue(
        [(contact, str(MagicLink.Scope.CONTRACT), contract_path(contract)) for contact in contacts],
        created_by=actor,
        contract=contract,
    )
    until = (
        f"It can be signed until {contract.expires_on.day} {contract.expires_on:%B %Y}.\n\n"
        if contract.expires_on
        else ""
    )
    for contact, link in zip(contacts, issued, strict=True):
        text = (
            f"Hello {contact.name},\n\n"
            f"{organization.name} has sent you “{contract.title}” to read and sign.\n\n"
            f"{contract.summary + chr(10) + chr(10) if contract.summary else ''}"
            f"Read it and sign it here:\n{link.url}\n\n{until}"
            f"The document's SHA-256 is {contract.sha256}.\n\n{organization.name}\n"
        )
        message_create(
            customer=customer,
            channel=Channel.EMAIL,
            draft=Draft(f"Please sign: {contract.title}"[:300], text, text_to_html(text), links=(link.url,)),
            contact=contact,
            created_by=actor,
        )
    return contacts


def tell_withdrawn(contract: Contract, reason: str) -> None:
    tell_customer(
        contract.customer,
        None,
        f"Withdrawn: {contract.title}",
        f"“{contract.title}”, sent to you for signature, is withdrawn and can no longer be signed: {reason}",
    )


def tell_signed(contract: Contract, signature: Signature, document: Document) -> None:
    tell_customer(
        contract.customer,
        signature.contact,
        f"Signed: {contract.title}",
        f"{signature.typed_name} signed “{contract.title}” on "
        f"{signature.signed_at:%d %B %Y at %H:%M} UTC.\n\n"
        f"The signed copy, with its certificate page, is among your documents in the portal "
        f"({settings.SITE_URL}{contract_path(contract)}).\n"
        f"SHA-256 of the document signed: {contract.sha256}\n"
        f"SHA-256 of the signed copy: {contract.signed_sha256}",
    )


def tell_ar_signed(contract: Contract, signature: Signature) -> None:
    tell_ar(
        contract.customer,
        f"{contract.customer.name} signed {contract.title}"[:200],
        f"{signature.typed_name} ({signature.signer_email or 'no email'}) signed “{contract.title}” "
        f"on {signature.signed_at:%d %B %Y at %H:%M} UTC, after {signature.auth_method}.",
    )
