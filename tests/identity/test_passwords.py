"""Password rules from the organization's policy: length by second factor, the common and
breached list, and company or product names."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from factories import Users
from openar.identity.models import User
from openar.identity.passwords import PolicyPasswordValidator
from openar.tenants.models import Organization, SecurityPolicy


def _messages(password: str, user: User | None) -> list[str]:
    try:
        PolicyPasswordValidator().validate(password, user)
    except ValidationError as exc:
        return [str(message) for message in exc.messages]
    return []


@pytest.mark.django_db
def test_staff_with_mfa_need_8_characters_and_customers_without_it_15(
    supplier: Organization, users: Users
) -> None:
    SecurityPolicy.objects.filter(organization=supplier).update(mfa_staff=True, mfa_customers=False)
    assert _messages("tangerine-7q", users.admin) == []  # 12 characters, MFA on for staff
    assert _messages("tangerine-7q", users.customer) == ["Use at least 15 characters."]
    assert _messages("tangerine-7q-blue", users.customer) == []


@pytest.mark.django_db
def test_the_organizations_own_minimum_raises_the_floor(supplier: Organization, users: Users) -> None:
    SecurityPolicy.objects.filter(organization=supplier).update(mfa_staff=True, password_min_length=20)
    assert _messages("tangerine-7q-blue", users.admin) == ["Use at least 20 characters."]


@pytest.mark.django_db
def test_without_an_organization_a_password_must_be_15_long() -> None:
    assert _messages("short-but-odd", None) == ["Use at least 15 characters."]


@pytest.mark.django_db
def test_common_and_breached_passwords_are_refused(users: Users) -> None:
    assert "This password is on the list of common or breached passwords." in _messages(
        "password123", users.admin
    )


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["AcmeSupplies2025!", "acme-supplies-24", "OpenAR-rocks-99"])
def test_passwords_built_around_the_company_or_product_name_are_refused(
    password: str, supplier: Organization, users: Users
) -> None:
    SecurityPolicy.objects.filter(organization=supplier).update(mfa_staff=True)
    assert "Do not build your password around a company or product name." in _messages(password, users.admin)


@pytest.mark.django_db
def test_a_long_passphrase_that_merely_mentions_a_name_is_fine(supplier: Organization, users: Users) -> None:
    assert _messages("our acme order desk closes at nine pm sharp", users.admin) == []
