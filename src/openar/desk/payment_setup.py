"""Admins set up how their organization takes payments: which providers (sandbox, Stripe,
PayPal) with which methods and credentials, partial payments and their reason codes, and
each method's convenience fee or discount. Credentials are write-only here: the page says
whether one is stored, never shows it."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from openar.core.crypto import decrypt_text
from openar.core.errors import ServiceError
from openar.payments.models import ProviderAccount
from openar.payments.online import payment_settings
from openar.payments.providers.registry import provider as provider_named
from openar.payments.services import CREDENTIAL_FIELDS, payment_settings_update, provider_account_update
from openar.tenants.access import actor_of, require
from openar.tenants.models import Organization
from openar.tenants.permissions import Perm

admin_required = require(Perm.DESK_ADMIN)
METHODS = (("card", "Card"), ("ach", "Bank account (ACH)"), ("paypal", "PayPal"))
PROVIDERS = (("sandbox", "Sandbox (test payments, no money)"), ("stripe", "Stripe"), ("paypal", "PayPal"))


def _organization(request: HttpRequest) -> Organization:
    organization: Organization = request.organization  # type: ignore[attr-defined]
    return organization


def _providers(organization: Organization, errors: dict[str, str], posted: str) -> list[dict[str, object]]:
    accounts = {a.provider: a for a in ProviderAccount.objects.filter(organization=organization)}
    rows = []
    for name, label in PROVIDERS:
        if name == "sandbox" and not getattr(settings, "OPENAR_SANDBOX_PAYMENTS", False):
            continue  # test payments are for the demo and tests only
        account = accounts.get(name)
        try:
            stored = (
                json.loads(decrypt_text(account.credentials_encrypted))
                if account and account.credentials_encrypted
                else {}
            )
        except ValueError:  # a key that is gone: shown as not set, to be typed in again
            stored = {}
        rows.append(
            {
                "name": name,
                "label": label,
                "enabled": bool(account and account.enabled),
                "methods": [
                    (value, text, bool(account and value in (account.methods or [])))
                    for value, text in METHODS
                    if value in provider_named(name).methods
                ],
                "fields": [
                    (
                        field,
                        field.replace("_", " ").capitalize(),
                        bool(stored.get(field)),
                        errors.get(field, "") if posted == name else "",
                    )
                    for field in CREDENTIAL_FIELDS[name]
                ],
                "methods_error": errors.get("methods", "") if posted == name else "",
                "webhook": f"{settings.SITE_URL}/hooks/payments/{name}/{organization.slug}/",
            }
        )
    return rows


def _reasons_text(reasons: list[list[str]]) -> str:
    return "\n".join(f"{code}: {label}" for code, label in reasons)


def _parse_reasons(text: str) -> list[tuple[str, str]]:
    reasons = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        code, _, label = line.partition(":")
        code, label = code.strip().lower(), label.strip()
        if not code or not label or not code.replace("_", "").replace("-", "").isalnum():
            raise ServiceError(
                f'Line {number}: write each reason as "code: what the customer reads", '
                'e.g. "price: The price is wrong".',
                field="short_pay_reasons",
            )
        reasons.append((code[:30], label[:120]))
    return reasons


@require_http_methods(["GET", "HEAD", "POST"])
@admin_required
def payment_setup(request: HttpRequest) -> HttpResponse:
    organization = _organization(request)
    errors: dict[str, str] = {}
    if request.method == "POST":
        data = request.POST
        try:
            if data.get("section") == "provider":
                name = str(data.get("provider", ""))
                provider_account_update(
                    organization=organization,
                    provider=name,
                    enabled=data.get("enabled") == "on",
                    methods=data.getlist("methods"),
                    credentials={
                        field: str(data.get(field, "")) for field in CREDENTIAL_FIELDS.get(name, ())
                    },
                    actor=actor_of(request),
                )
                messages.success(request, f"{dict(PROVIDERS).get(name, name)} saved.")
            else:
                payment_settings_update(
                    organization=organization,
                    allow_partial=data.get("allow_partial") == "on",
                    short_pay_reasons=_parse_reasons(str(data.get("short_pay_reasons", ""))),
                    fees={
                        method: {
                            "percent": str(data.get(f"{method}_percent", "")).strip() or "0",
                            "fixed": str(data.get(f"{method}_fixed", "")).strip() or "0",
                        }
                        for method, _ in METHODS
                    },
                    actor=actor_of(request),
                )
                messages.success(request, "Payment settings saved.")
        except ServiceError as exc:
            errors[exc.field or "form"] = exc.message
        else:
            return HttpResponseRedirect(reverse("desk:payment_setup"))
    current = payment_settings(organization)
    fees = current.fees or {}
    return render(
        request,
        "desk/payment_setup.html",
        {
            "providers": _providers(organization, errors, str(request.POST.get("provider", ""))),
            "settings": current,
            "reasons": request.POST.get("short_pay_reasons")
            if errors
            else _reasons_text(current.short_pay_reasons or []),
            "fees": [
                (
                    method,
                    label,
                    fees.get(method, {}).get("percent", ""),
                    fees.get(method, {}).get("fixed", ""),
                )
                for method, label in METHODS
            ],
            "errors": errors,
            "nav": "payments",
        },
        status=400 if errors else 200,
    )
