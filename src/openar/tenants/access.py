"""Who is asking, in which organization, through which door, with which powers.

The middleware builds one ``Access`` per request, from the signed-in user's membership (a
full session) or from a confirmed magic link (a narrow session). Front doors ask it through
``require(perm)`` and never re-implement the rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render

from openar.identity.models import User
from openar.tenants.models import STAFF_ROLES, Membership, Organization, Role
from openar.tenants.permissions import MAGIC_LINK_PERMISSIONS, PAY_LINK_PERMISSIONS, ROLE_PERMISSIONS, Perm

if TYPE_CHECKING:
    from openar.customers.models import Contact, Customer
    from openar.tenants.models import Creditor

View = Callable[..., HttpResponseBase]


@dataclass(frozen=True)
class Access:
    organization: Organization
    role: str
    via: str  # "password" (a full session) or "magic" (a narrow one from a link)
    membership: Membership | None = None
    customer: Customer | None = None
    creditor: Creditor | None = None
    contact: Contact | None = None
    link_scope: str = ""  # magic sessions: "invoice", "past_due", "account" or "pay"
    invoice_id: int | None = None
    perms: frozenset[Perm] = field(default=frozenset())
    read_only: bool = False  # staff viewing the portal as a customer: nothing may change

    @classmethod
    def viewing_as(cls, staff: Access, customer: Customer, *, can_act: bool = False) -> Access:
        """Staff seeing the portal exactly as ``customer``'s users do: read-only, unless the
        organization's policy lets staff act for the customer (``view_as_can_act``)."""
        return cls(
            organization=staff.organization,
            role=Role.CUSTOMER,
            via="view_as",
            membership=staff.membership,
            customer=customer,
            perms=ROLE_PERMISSIONS[Role.CUSTOMER],
            read_only=not can_act,
        )

    @classmethod
    def from_membership(cls, membership: Membership) -> Access:
        return cls(
            organization=membership.organization,
            role=membership.role,
            via="password",
            membership=membership,
            customer=membership.customer,
            creditor=membership.creditor,
            perms=ROLE_PERMISSIONS.get(membership.role, frozenset()),
        )

    @classmethod
    def from_magic_link(
        cls, *, customer: Customer, contact: Contact, link_scope: str, invoice_id: int | None
    ) -> Access:
        return cls(
            organization=customer.organization,
            role=Role.CUSTOMER,
            via="magic",
            customer=customer,
            contact=contact,
            link_scope=link_scope,
            invoice_id=invoice_id,
            perms=PAY_LINK_PERMISSIONS if link_scope == "pay" else MAGIC_LINK_PERMISSIONS,
        )

    def can(self, perm: Perm) -> bool:
        return perm in self.perms

    @property
    def perm_names(self) -> frozenset[str]:
        """For templates: ``{% if "desk.admin" in request.access.perm_names %}``."""
        return frozenset(str(perm) for perm in self.perms)

    @property
    def is_narrow(self) -> bool:
        return self.via == "magic"

    @property
    def is_view_as(self) -> bool:
        """Staff looking through the customer's door (read-only or acting for them)."""
        return self.via == "view_as"

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


def access_of(request: HttpRequest) -> Access | None:
    access: Access | None = getattr(request, "access", None)
    return access


_DOORS = {
    Perm.PORTAL_VIEW: "the customer portal",
    Perm.PORTAL_FULL: "this part of the customer portal",
    Perm.CLIENT_VIEW: "the creditor-client portal",
    Perm.DESK_VIEW: "the staff desk",
    Perm.DESK_COLLECT: "this action of the staff desk",
    Perm.DESK_ADMIN: "the desk's administration",
    Perm.DESK_VIEW_AS: "viewing the portal as a customer",
    Perm.PAY_VIEW: "the pay page",
}


def require(perm: Perm) -> Callable[[View], View]:
    """Let the view run only for an access that has ``perm``. Anonymous people go to the
    sign-in page; a narrow (magic-link) session asking for more is offered a full sign-in;
    anyone else gets a 403 page."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            access = access_of(request)
            if access is None:
                if request.user.is_authenticated:  # signed in, but a member of nothing
                    return render(request, "errors/no_access.html", {"door": _DOORS[perm]}, status=403)
                return redirect_to_login(request.get_full_path())
            if not access.can(perm):
                if access.is_narrow and perm == Perm.PORTAL_FULL:
                    return render(request, "errors/sign_in_for_more.html", status=403)
                return render(
                    request, "errors/no_access.html", {"door": _DOORS.get(perm, "this page")}, status=403
                )
            return view(request, *args, **kwargs)

        # What the view needs, for the isolation harness and any route listing.
        wrapped.openar_perms = getattr(view, "openar_perms", frozenset()) | {perm}  # type: ignore[attr-defined]
        return wrapped

    return decorator


customer_required = require(Perm.PORTAL_VIEW)
staff_required = require(Perm.DESK_VIEW)


def landing_url(access: Access | None, *, signed_in: bool = False) -> str:
    """Where a signed-in person starts."""
    if access is None:
        return "/welcome/" if signed_in else "/accounts/login/"
    if access.can(Perm.PORTAL_VIEW):
        return "/portal/"
    if access.can(Perm.DESK_VIEW):
        return "/desk/"
    if access.can(Perm.PAY_VIEW):
        return "/pay/"
    if access.can(Perm.CLIENT_VIEW):
        return "/client/"
    return "/welcome/"


def actor_of(request: HttpRequest) -> User | None:
    """The signed-in user, for audit events and ``created_by`` fields (None when anonymous)."""
    user = request.user
    return user if isinstance(user, User) and user.is_authenticated else None
