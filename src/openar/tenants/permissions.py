"""Roles and what they may do, in one place. Front doors ask ``Access.can(perm)`` through
the decorators of ``openar.tenants.access``; they never look at roles themselves."""

from __future__ import annotations

from enum import StrEnum

from openar.tenants.models import Role


class Perm(StrEnum):
    PORTAL_VIEW = "portal.view"  # the customer's own account (a narrow session: what its link shows)
    PORTAL_FULL = "portal.full"  # statement, every document, the whole timeline (full sessions)
    CLIENT_VIEW = "client.view"  # a creditor client's placed accounts
    DESK_VIEW = "desk.view"  # customers, invoices, payments, timelines of the organization
    DESK_COLLECT = "desk.collect"  # act on accounts: magic links, notes, calls, promises
    DESK_ADMIN = "desk.admin"  # security policy, users, the security log
    DESK_VIEW_AS = "desk.view_as"  # open the portal as one of the customers sees it
    PAY_VIEW = "pay.view"  # the login-free pay page: what is past due, to pay, promise or arrange


ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.ADMIN: frozenset({Perm.DESK_VIEW, Perm.DESK_COLLECT, Perm.DESK_ADMIN, Perm.DESK_VIEW_AS}),
    Role.COLLECTOR: frozenset({Perm.DESK_VIEW, Perm.DESK_COLLECT, Perm.DESK_VIEW_AS}),
    Role.MANAGER: frozenset({Perm.DESK_VIEW, Perm.DESK_VIEW_AS}),
    Role.CREDITOR: frozenset({Perm.CLIENT_VIEW}),
    Role.CUSTOMER: frozenset({Perm.PORTAL_VIEW, Perm.PORTAL_FULL}),
}

# A magic-link session is narrow: it sees and pays what its link points to, nothing more.
MAGIC_LINK_PERMISSIONS = frozenset({Perm.PORTAL_VIEW})
# A pay-page link (``/pay/<token>/``) opens the pay page and nothing else of the account.
PAY_LINK_PERMISSIONS = frozenset({Perm.PAY_VIEW})
