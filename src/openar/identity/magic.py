"""Magic links: create, look up, consume (atomically), revoke, and request by email.

A token is 128 random bits, handed out once and stored only as its SHA-256. Opening a link
consumes nothing; ``magic_link_consume`` spends one use with a single conditional UPDATE, so
with any number of concurrent confirmations of the last use exactly one wins, on PostgreSQL
(the UPDATE re-checks its WHERE on the locked row) and on SQLite (writers are serialized).
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from openar.billing.models import Invoice
from openar.core.audit import audit_event, log_event, log_events
from openar.core.errors import ServiceError
from openar.customers.models import Contact
from openar.identity.models import MagicLink, User
from openar.tenants.models import STAFF_ROLES, Membership, Organization, SecurityPolicy, policy_for

if TYPE_CHECKING:
    from openar.contracts.models import Contract

logger = logging.getLogger(__name__)

TOKEN_BYTES = 16  # 128 bits


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def magic_link_url(token: str, scope_: str = "") -> str:
    """The address of a link: a pay-page link is ``/pay/<token>/`` (what a past-due payer
    sees in a reminder), every other ``/l/<token>/``; both open the same way."""
    if scope_ == MagicLink.Scope.PAY:
        return f"{settings.SITE_URL}/pay/{token}/"
    return f"{settings.SITE_URL}/l/{token}/"


def _default_target(scope_: str, invoice: Invoice | None, contract: Contract | None = None) -> str:
    if scope_ == MagicLink.Scope.INVOICE and invoice is not None:
        return f"/portal/invoices/{invoice.pk}/"
    if scope_ == MagicLink.Scope.CONTRACT and contract is not None:
        return f"/portal/contracts/{contract.pk}/"
    if scope_ == MagicLink.Scope.PAST_DUE:
        return "/portal/invoices/?status=past_due"
    if scope_ == MagicLink.Scope.PAY:
        return "/pay/"
    return "/portal/"


def portal_path(target: str, door: str = "/portal/") -> bool:
    """A path inside ``door`` (/portal/, or /pay/ for a pay-page link) on this site: no
    scheme or host, no backslash or control character, and no "." or ".." segment, even
    percent-encoded."""
    if "\\" in target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return False
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return False
    path = unquote(parts.path)
    if "\\" in path or any(segment in (".", "..") for segment in path.split("/")):
        return False
    return path.startswith(door)


@dataclass(frozen=True)
class IssuedLink:
    link: MagicLink
    token: str

    @property
    def url(self) -> str:
        return magic_link_url(self.token, self.link.scope)


def _new_link(
    *,
    contact: Contact | None = None,
    membership: Membership | None = None,
    scope_: str,
    invoice: Invoice | None,
    target: str,
    created_by: User | None,
    ttl: datetime.timedelta | None,
    max_uses: int | None,
    policy: SecurityPolicy | None = None,
    contract: Contract | None = None,
) -> IssuedLink:
    """An unsaved link, and its token, for a customer's ``contact`` or for a staff
    ``membership``'s user: the one place a token is made and hashed, so that contact and
    staff links cannot drift apart. A contact's link leads into the portal; a staff link
    to the desk. ``ttl`` and ``max_uses`` default to the organization's policy. A link of
    scope "invoice" names one of the contact's invoices, one of scope "contract" one of
    the contact's customer's contracts (its session sees that contract and nothing else)."""
    if (contact is None) == (membership is None):
        raise ValueError("A link is for a contact or for a staff membership.")
    if scope_ not in MagicLink.Scope.values:
        raise ServiceError(f"Unknown link scope {scope_!r}.", field="scope")
    if contact is not None:
        if scope_ == MagicLink.Scope.INVOICE and (
            invoice is None or invoice.customer_id != contact.customer_id
        ):
            raise ServiceError(
                "A link to one invoice needs one of the contact's own invoices.", field="invoice"
            )
        if scope_ == MagicLink.Scope.CONTRACT and (
            contract is None or contract.customer_id != contact.customer_id
        ):
            raise ServiceError(
                "A link to one contract needs one of the contact's own contracts.", field="contract"
            )
        door = "/pay/" if scope_ == MagicLink.Scope.PAY else "/portal/"
        if target and not portal_path(target, door):
            raise ServiceError(
                "A pay-page link can only lead to the pay page."
                if scope_ == MagicLink.Scope.PAY
                else "A link can only lead into the customer portal.",
                field="target",
            )
        organization_id = contact.organization_id
        target = target or _default_target(scope_, invoice, contract)
    else:
        assert membership is not None  # noqa: S101  (checked above; for the type checker)
        organization_id = membership.organization_id
        target = STAFF_LINK_TARGET
    if max_uses is None or ttl is None:
        if policy is None:
            owner = contact.customer if contact is not None else membership
            assert owner is not None  # noqa: S101  (checked above; for the type checker)
            policy = policy_for(owner.organization)
        max_uses = max_uses or policy.magic_link_max_uses
        ttl = ttl or datetime.timedelta(days=policy.magic_link_days)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = MagicLink(
        organization_id=organization_id,
        token_hash=token_hash(token),
        contact=contact,
        user=membership.user if membership is not None else None,
        scope=scope_,
        invoice=invoice if scope_ == MagicLink.Scope.INVOICE else None,
        contract=contract if scope_ == MagicLink.Scope.CONTRACT else None,
        target=target,
        max_uses=max_uses,
        expires_at=timezone.now() + ttl,
        created_by=created_by if created_by is not None and created_by.is_authenticated else None,
    )
    return IssuedLink(link, token)


def magic_link_create(
    *,
    contact: Contact,
    scope_: str = MagicLink.Scope.PAST_DUE,
    invoice: Invoice | None = None,
    target: str = "",
    created_by: User | None = None,
    ttl: datetime.timedelta | None = None,
    max_uses: int | None = None,
    contract: Contract | None = None,
) -> IssuedLink:
    """A new link for ``contact``; the token is in the result and nowhere else."""
    issued = _new_link(
        contact=contact,
        scope_=scope_,
        invoice=invoice,
        contract=contract,
        target=target,
        created_by=created_by,
        ttl=ttl,
        max_uses=max_uses,
    )
    with transaction.atomic():
        issued.link.save()
        log_event(
            "openar.magic_link.created",
            organization=contact.customer.organization,
            obj=issued.link,
            actor=created_by,
            data={
                "contact": contact.pk,
                "scope": scope_,
                **({"contract": issued.link.contract_id} if issued.link.contract_id else {}),
                "max_uses": issued.link.max_uses,
                "expires_at": issued.link.expires_at.isoformat(),
            },
        )
    return issued


def magic_links_create_bulk(
    contacts: list[Contact], *, scope_: str = MagicLink.Scope.PAST_DUE, created_by: User | None = None
) -> list[IssuedLink]:
    """One link per contact in a single insert (reminders use this)."""
    return magic_links_issue([(contact, scope_) for contact in contacts], created_by=created_by)


def magic_links_issue(
    requests: list[tuple[Contact, str]] | list[tuple[Contact, str, str]],
    *,
    created_by: User | None = None,
    contract: Contract | None = None,
) -> list[IssuedLink]:
    """A link per (contact, scope[, target]), with their audit events, in two inserts: the
    reminder engine makes hundreds at a time. The contacts' customers must be loaded.
    ``contract``: the contract the links of scope "contract" lead to."""
    policies: dict[int, SecurityPolicy] = {}
    issued = []
    for request in requests:
        contact, scope_ = request[0], request[1]
        target = request[2] if len(request) > 2 else ""
        organization = contact.customer.organization
        if organization.pk not in policies:
            policies[organization.pk] = policy_for(organization)
        issued.append(
            _new_link(
                contact=contact,
                scope_=scope_,
                invoice=None,
                contract=contract,
                target=target,
                created_by=created_by,
                ttl=None,
                max_uses=None,
                policy=policies[organization.pk],
            )
        )
    with transaction.atomic():
        MagicLink.objects.bulk_create([item.link for item in issued])
        log_events(
            [
                audit_event(
                    "openar.magic_link.created",
                    organization=item.link.contact.customer.organization,  # type: ignore[union-attr]
                    obj=item.link,
                    actor=created_by,
                    data={
                        "contact": item.link.contact_id,
                        "scope": item.link.scope,
                        **({"contract": item.link.contract_id} if item.link.contract_id else {}),
                        "bulk": True,
                    },
                )
                for item in issued
            ]
        )
    return issued


def magic_link_find(token: str) -> MagicLink | None:
    """The link a token names, in any state (the token itself is the capability)."""
    if not token or len(token) > 64:
        return None
    with scopes_disabled():
        return (
            MagicLink.objects.select_related("organization", "contact__customer")
            .filter(token_hash=token_hash(token))
            .first()
        )


class LinkNotUsable(ServiceError):
    def __init__(self, state: str) -> None:
        messages = {
            "expired": "This link has expired.",
            "used": "This link has been used as many times as it allows.",
            "revoked": "This link has been withdrawn.",
            "unknown": "This link is not valid.",
        }
        super().__init__(messages.get(state, messages["unknown"]), code=state)
        self.state = state


def magic_link_consume(*, link_id: int, ip: str | None = None, user_agent: str = "") -> MagicLink:
    """Spend one use of the link, or raise ``LinkNotUsable`` saying why not."""
    now = timezone.now()
    with scopes_disabled(), transaction.atomic():
        updated = MagicLink.objects.filter(
            pk=link_id, revoked_at__isnull=True, expires_at__gt=now, uses__lt=F("max_uses")
        ).update(uses=F("uses") + 1, last_used_at=now)
        link = (
            MagicLink.objects.select_related("organization", "contact__customer").filter(pk=link_id).first()
        )
        if link is None:
            raise LinkNotUsable("unknown")
        if updated != 1:
            raise LinkNotUsable(link.state(now))
        log_event(
            "openar.magic_link.used",
            organization=link.organization,
            obj=link,
            data={
                **({"user": link.user_id} if link.user_id else {"contact": link.contact_id}),
                "use": link.uses,
                "of": link.max_uses,
                "user_agent": user_agent[:200],
            },
            ip=ip,
        )
    return link


def magic_link_revoke(*, link: MagicLink, actor: User | None = None) -> None:
    with transaction.atomic():
        MagicLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        log_event("openar.magic_link.revoked", organization=link.organization, obj=link, actor=actor)


def magic_links_revoke_contact(*, contact: Contact, actor: User | None = None) -> int:
    with transaction.atomic():
        count = MagicLink.objects.filter(contact=contact, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        log_event(
            "openar.magic_link.revoked_for_contact",
            organization=contact.customer.organization,
            obj=contact,
            actor=actor,
            data={"count": count},
        )
    return count


def magic_links_revoke_organization(*, organization: Organization, actor: User | None = None) -> int:
    with scope(organization=organization), transaction.atomic():
        count = MagicLink.objects.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        log_event(
            "openar.magic_link.revoked_for_organization",
            organization=organization,
            obj=organization,
            actor=actor,
            data={"count": count},
        )
    return count


def magic_link_send(*, issued: IssuedLink) -> None:
    """Email the link to its contact once the transaction commits."""
    link = issued.link
    contact = link.contact
    assert contact is not None  # noqa: S101  (customer links only)
    context = {
        "contact": contact,
        "organization": contact.customer.organization,
        "customer": contact.customer,
        "url": issued.url,
        "expires_at": link.expires_at,
        "scope": link.get_scope_display(),
    }
    subject = f"Your {contact.customer.organization.name} account: sign-in link"
    text = render_to_string("identity/email/magic_link.txt", context)
    html = render_to_string("identity/email/magic_link.html", context)

    def send() -> None:
        message = EmailMultiAlternatives(subject, text, to=[contact.email])
        message.attach_alternative(html, "text/html")
        message.send()

    transaction.on_commit(send)


# --- staff sign-in links (where the organization's policy allows them) -------------------------

STAFF_LINK_TTL = datetime.timedelta(minutes=15)
STAFF_LINK_TARGET = "/desk/"


def staff_link_memberships(user: User) -> list[Membership]:
    """The user's active staff memberships in organizations that allow staff sign-in links."""
    if not user.is_active:
        return []
    with scopes_disabled():
        return list(
            Membership.objects.select_related("organization__security_policy", "user")
            .filter(
                user=user,
                is_active=True,
                role__in=STAFF_ROLES,
                organization__security_policy__staff_magic_links=True,
            )
            .order_by("pk")
        )


def staff_magic_link_create(*, membership: Membership, ip: str | None = None) -> IssuedLink:
    """A single-use link that signs a staff user in for 15 minutes. It replaces the
    password only: a second factor the person has is still asked for at sign-in."""
    issued = _new_link(
        membership=membership,
        scope_=MagicLink.Scope.ACCOUNT,
        invoice=None,
        target=STAFF_LINK_TARGET,
        created_by=None,
        ttl=STAFF_LINK_TTL,
        max_uses=1,
    )
    link = issued.link
    with transaction.atomic():
        link.save()
        log_event(
            "openar.magic_link.requested",
            organization=membership.organization,
            obj=link,
            data={"user": membership.user_id, "staff": True, "expires_at": link.expires_at.isoformat()},
            ip=ip,
        )
    return issued


def staff_magic_link_send(*, issued: IssuedLink) -> None:
    link = issued.link
    user = link.user
    assert user is not None  # noqa: S101  (staff links only)
    context = {
        "person": user,
        "organization": link.organization,
        "url": issued.url,
        "minutes": int(STAFF_LINK_TTL.total_seconds() // 60),
    }
    subject = f"Sign in to {link.organization.name}'s desk"
    text = render_to_string("identity/email/staff_link.txt", context)
    html = render_to_string("identity/email/staff_link.html", context)

    def send() -> None:
        message = EmailMultiAlternatives(subject, text, to=[user.email])
        message.attach_alternative(html, "text/html")
        message.send()

    transaction.on_commit(send)


def staff_link_usable(link: MagicLink) -> bool:
    """At confirmation: the policy still allows staff links and the person is still staff."""
    return link.user is not None and any(
        m.organization_id == link.organization_id for m in staff_link_memberships(link.user)
    )


def magic_link_request(*, email: str, ip: str | None = None) -> int:
    """Someone asked for a link on the sign-in page. Every contact with that address (who
    accepts email) gets a fresh link to what is past due, and a staff user whose
    organization allows staff links gets a short-lived sign-in link to the desk; the caller
    answers the same way whether there were any. Returns how many were sent (for logs and
    tests only)."""
    email = email.strip().lower()
    if not email or "@" not in email:
        return 0
    with scopes_disabled():
        contacts = list(
            Contact.objects.select_related("customer__organization")
            .filter(email__iexact=email, consent_email=True)
            .order_by("pk")[:10]
        )
    user = User.objects.filter(email__iexact=email).first()
    staff = staff_link_memberships(user) if user is not None else []
    for membership in staff:
        with scope(organization=membership.organization), transaction.atomic():
            staff_magic_link_send(issued=staff_magic_link_create(membership=membership, ip=ip))
    for contact in contacts:
        with scope(organization=contact.customer.organization), transaction.atomic():
            issued = magic_link_create(contact=contact, scope_=MagicLink.Scope.PAST_DUE)
            log_event(
                "openar.magic_link.requested",
                organization=contact.customer.organization,
                obj=issued.link,
                ip=ip,
            )
            magic_link_send(issued=issued)
    sent = len(contacts) + len(staff)
    logger.info("magic link requested", extra={"sent": sent})
    return sent
