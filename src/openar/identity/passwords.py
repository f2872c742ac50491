"""Password rules from the organization's security policy.

Length: never below 8 characters when the person's role requires a second factor, or 15
when the password is the only factor (NIST SP 800-63B), or the organization's own minimum
if higher. Blocklist: Django's list of 20,000 common passwords (drawn from breach corpora,
shipped with Django), plus the product's name and the organization's name and slug, and
passwords that would be too short without those names.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.password_validation import CommonPasswordValidator
from django.core.exceptions import ValidationError
from django_scopes import scopes_disabled

from openar.tenants.models import Membership, policy_for

PRODUCT_WORDS = ("openar", "open ar", "accounts receivable")


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


class PolicyPasswordValidator:
    """Django password validator driven by each organization's SecurityPolicy."""

    def __init__(self) -> None:
        self._common = CommonPasswordValidator()

    def _rules(self, user: Any) -> tuple[int, list[str]]:
        minimum, words = 15, [*PRODUCT_WORDS]
        if user is None or getattr(user, "pk", None) is None:
            return minimum, words
        with scopes_disabled():
            memberships = list(
                Membership.objects.filter(user=user, is_active=True).select_related("organization")
            )
        if memberships:
            minimum = max(policy_for(m.organization).min_password_length_for(m.role) for m in memberships)
        for membership in memberships:
            words += [membership.organization.name, membership.organization.slug]
        return minimum, words

    def validate(self, password: str, user: Any = None) -> None:
        minimum, words = self._rules(user)
        errors = []
        if len(password) < minimum:
            errors.append(
                ValidationError(
                    f"Use at least {minimum} characters.",
                    code="password_too_short",
                    params={"min_length": minimum},
                )
            )
        try:
            self._common.validate(password, user)
        except ValidationError as exc:
            errors.append(
                ValidationError(
                    "This password is on the list of common or breached passwords.", code=exc.code
                )
            )
        if getattr(user, "must_change_password", False) and user.check_password(password):
            errors.append(
                ValidationError(
                    "Choose a new password, not the one you were given.", code="password_assigned_reused"
                )
            )
        squashed = _squash(password)
        for word in words:
            core = _squash(word)
            if len(core) >= 4 and core in squashed and len(squashed) - len(core) < minimum:
                errors.append(
                    ValidationError(
                        "Do not build your password around a company or product name.",
                        code="password_too_similar",
                    )
                )
                break
        if errors:
            raise ValidationError(errors)

    def get_help_text(self) -> str:
        return (
            "At least 15 characters (8 with a second factor, or your organization's minimum), "
            "not a common password, and not built around a company name."
        )
