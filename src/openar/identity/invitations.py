"""How an invited person gets their first password, and the invitation email.

The organization's policy says how first passwords are set (``SecurityPolicy.password_mode``):

- **self-chosen**: the email carries a link to choose a password. It is allauth's own
  password-reset link (Django's token: it stops working once the password is set or the
  person signs in, and after ``PASSWORD_RESET_TIMEOUT``), so choosing it goes through the
  policy's password rules and never bypasses MFA.
- **assigned**: the service generates a first password, shown once to the person who sent
  the invitation, who hands it over by another channel (phone, in person). The email says
  where to sign in; at the first sign-in the person must choose their own password before
  anything else (``User.must_change_password``, enforced by
  ``openar.identity.mfa.MFAEnrolmentMiddleware``).

Someone who already has a password of their own (a member of another organization, say) is
told they have new access and signs in as usual: nothing about their password changes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from openar.identity.models import User
from openar.tenants.models import Membership, Role, SecurityPolicy, policy_for

# Lower-case letters and digits that cannot be mistaken for one another when read aloud or
# copied from a screen (no 0/o, 1/l/i).
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # noqa: S105  (an alphabet, not a password)
PASSWORD_GROUPS, PASSWORD_GROUP_LENGTH = 4, 5  # 20 characters, about 99 bits


def assigned_password() -> str:
    """A first password: four groups of five, e.g. ``k7mqz-4tbne-x9rwa-2hpcd``."""
    return "-".join(
        "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_GROUP_LENGTH))
        for _ in range(PASSWORD_GROUPS)
    )


def set_password_url(user: User) -> str:
    """allauth's "choose a new password" link for ``user`` (valid until used or expired)."""
    path = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": default_token_generator.make_token(user)},
    )
    return f"{settings.SITE_URL}{path}"


def link_valid_days() -> int:
    return max(1, int(settings.PASSWORD_RESET_TIMEOUT) // 86400)


@dataclass(frozen=True)
class Invitation:
    membership: Membership
    new_user: bool
    how: str  # "set_password", "assigned" or "existing"
    assigned_password: str = ""  # shown once to the inviter; never stored or logged

    @property
    def user(self) -> User:
        return self.membership.user


def first_password(user: User, policy: SecurityPolicy) -> tuple[str, str]:
    """Decide (and, for an assigned password, set) how ``user`` signs in the first time.
    Returns ``(how, assigned_password)``."""
    if user.has_usable_password() and not user.must_change_password:
        return "existing", ""
    if policy.password_mode == SecurityPolicy.PasswordMode.ASSIGNED:
        password = assigned_password()
        user.set_password(password)
        user.must_change_password = True
        user.save(update_fields=["password", "must_change_password"])
        return "assigned", password
    return "set_password", ""


def invitation_send(*, invitation: Invitation, inviter: User | None) -> None:
    """Email the invitation once the transaction commits (a rolled-back invitation sends
    nothing)."""
    membership = invitation.membership
    organization = membership.organization
    user = invitation.user
    context = {
        "person": user,
        "organization": organization,
        "membership": membership,
        "what": access_description(membership),
        "inviter": inviter.get_full_name() if inviter is not None else organization.name,
        "how": invitation.how,
        "set_password_url": set_password_url(user) if invitation.how == "set_password" else "",
        "valid_days": link_valid_days(),
        "sign_in_url": f"{settings.SITE_URL}{reverse('account_login')}",
        "reset_url": f"{settings.SITE_URL}{reverse('account_reset_password')}",
        "mfa_required": policy_for(organization).mfa_required_for(membership.role),
    }
    subject = f"{organization.name} invited you to their accounts portal"
    text = render_to_string("identity/email/invitation.txt", context)
    html = render_to_string("identity/email/invitation.html", context)

    def send() -> None:
        message = EmailMultiAlternatives(subject, text, to=[user.email])
        message.attach_alternative(html, "text/html")
        message.send()

    transaction.on_commit(send)


def access_description(membership: Membership) -> str:
    """What the membership opens, in words: "the account of Bolt Hardware", ..."""
    if membership.role == Role.CUSTOMER and membership.customer is not None:
        return f"the account of {membership.customer.name}"
    if membership.role == Role.CREDITOR and membership.creditor is not None:
        return f"the accounts placed by {membership.creditor.name}"
    return f"the desk, as {membership.get_role_display().lower()}"
