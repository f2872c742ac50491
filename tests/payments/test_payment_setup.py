"""Admins set up payment providers (credentials encrypted, never shown back) and the rules
of paying online (partial payments, reason codes, fees), from the desk."""

from __future__ import annotations

import json

from django_scopes import scope, scopes_disabled

from factories import Users, signed_in, text_of
from openar.core.crypto import decrypt_text
from openar.core.models import AuditEvent
from openar.payments.models import PaymentSettings, ProviderAccount
from openar.tenants.models import Organization

SETUP = "/desk/payments/setup/"


def test_stripe_is_turned_on_with_credentials_stored_encrypted_and_never_shown(
    users: Users, supplier: Organization
) -> None:
    client = signed_in(users.admin)
    missing = client.post(
        SETUP, {"section": "provider", "provider": "stripe", "enabled": "on", "methods": ["card"]}
    )
    assert missing.status_code == 400
    assert "Enter the secret key, webhook secret before turning stripe on." in text_of(missing.content)

    saved = client.post(
        SETUP,
        {
            "section": "provider",
            "provider": "stripe",
            "enabled": "on",
            "methods": ["card", "ach"],
            "secret_key": "sk_live_secret_value_123",
            "webhook_secret": "whsec_secret_value_456",
        },
    )
    assert saved.status_code == 302
    with scope(organization=supplier):
        account = ProviderAccount.objects.get(provider="stripe")
    assert (account.enabled, account.methods) == (True, ["ach", "card"])
    assert "sk_live_secret_value_123" not in account.credentials_encrypted
    assert json.loads(decrypt_text(account.credentials_encrypted))["secret_key"] == "sk_live_secret_value_123"
    page = client.get(SETUP).content.decode()
    assert "sk_live_secret_value_123" not in page and "whsec_secret_value_456" not in page
    assert "A value is stored." in text_of(page)
    assert f"/hooks/payments/stripe/{supplier.slug}/" in page
    with scopes_disabled():
        events = list(AuditEvent.objects.filter(action="openar.payments.provider_changed"))
    assert events and "sk_live" not in json.dumps([e.data for e in events])

    client.post(SETUP, {"section": "provider", "provider": "stripe", "enabled": "on", "methods": ["card"]})
    with scope(organization=supplier):
        kept = json.loads(decrypt_text(ProviderAccount.objects.get(provider="stripe").credentials_encrypted))
    assert kept["secret_key"] == "sk_live_secret_value_123"  # blank kept what was stored


def test_fees_and_reasons_are_saved_and_checked(users: Users, supplier: Organization) -> None:
    client = signed_in(users.admin)
    bad = client.post(SETUP, {"section": "settings", "short_pay_reasons": "no colon here"})
    assert bad.status_code == 400
    assert "Line 1: write each reason as" in text_of(bad.content)

    client.post(
        SETUP,
        {
            "section": "settings",
            "allow_partial": "on",
            "short_pay_reasons": "price: The price is wrong\ndamaged: Goods arrived damaged",
            "card_percent": "2.5",
            "card_fixed": "0.30",
            "ach_percent": "-1",
        },
    )
    with scope(organization=supplier):
        found = PaymentSettings.objects.get()
    assert found.allow_partial
    assert found.short_pay_reasons == [["price", "The price is wrong"], ["damaged", "Goods arrived damaged"]]
    assert found.fees == {"card": {"percent": "2.5", "fixed": "0.30"}, "ach": {"percent": "-1", "fixed": "0"}}


def test_only_admins_set_up_payments(users: Users) -> None:
    for person in (users.collector, users.manager):
        assert signed_in(person).get(SETUP).status_code == 403


def test_the_sandbox_cannot_be_turned_on_where_test_payments_are_off(
    users: Users, supplier: Organization, settings: object
) -> None:
    settings.OPENAR_SANDBOX_PAYMENTS = False  # type: ignore[attr-defined]
    client = signed_in(users.admin)
    assert "Sandbox (test payments" not in text_of(client.get(SETUP).content)
    response = client.post(
        SETUP, {"section": "provider", "provider": "sandbox", "enabled": "on", "methods": ["card"]}
    )
    assert response.status_code == 400
    assert "not allowed on this installation" in text_of(response.content)
    with scope(organization=supplier):
        assert not ProviderAccount.objects.filter(provider="sandbox", enabled=True).exists()


def test_credentials_that_can_no_longer_be_read_are_asked_for_again(
    users: Users, supplier: Organization
) -> None:
    with scope(organization=supplier):
        ProviderAccount.objects.create(
            organization=supplier, provider="stripe", methods=["card"], credentials_encrypted="enc1:damaged"
        )
    client = signed_in(users.admin)
    page = client.get(SETUP)
    assert page.status_code == 200
    assert "Nothing stored yet." in text_of(page.content)
    saved = client.post(
        SETUP,
        {
            "section": "provider",
            "provider": "stripe",
            "enabled": "on",
            "methods": ["card"],
            "secret_key": "sk_new",
            "webhook_secret": "whsec_new",
        },
    )
    assert saved.status_code == 302
