"""Recording payments and applying them to invoices."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from openar.billing.ledger import invoices_lock
from openar.billing.models import Invoice
from openar.core.audit import log_event
from openar.core.errors import LedgerError, ServiceError
from openar.core.money import format_money, quantize
from openar.customers.models import Activity, Customer
from openar.customers.services import activity_record
from openar.identity.models import User
from openar.payments.models import Payment, PaymentSettings, ProviderAccount
from openar.payments.online import allocate
from openar.tenants.models import Organization


@dataclass(frozen=True)
class AllocationInput:
    invoice: Invoice
    amount: Decimal


def payment_record(
    *,
    customer: Customer,
    amount: Decimal,
    method: str,
    received_at: datetime.datetime,
    currency: str | None = None,
    reference: str = "",
    allocations: list[AllocationInput] | None = None,
    actor: User | None = None,
) -> Payment:
    """Record money received (cheque, wire, cash, or a settled provider payment) and apply it.

    With ``allocations`` the amounts go to those invoices (more than an invoice has open is
    refused); without, the payment is applied to the customer's open invoices in its
    currency, oldest due first. What is left stays on the payment as unapplied cash. The
    allocations are written by ``online.allocate``, as for a payment made online.
    """
    currency = (currency or customer.currency).upper()
    amount = quantize(amount, currency)
    if amount <= 0:
        raise ServiceError("A payment must be for more than zero.", field="amount")
    if method not in Payment.Method.values:
        raise ServiceError(f"Unknown payment method {method!r}.", field="method")
    if received_at.tzinfo is None:
        raise ServiceError("The time a payment was received must carry a time zone.", field="received_at")
    with transaction.atomic():
        if allocations is None:
            open_ids = list(
                Invoice.objects.filter(customer=customer, currency=currency, open_amount__gt=0)
                .order_by("due_date", "issue_date", "pk")
                .values_list("pk", flat=True)
            )
            locked = invoices_lock(open_ids)
            plan: list[tuple[Invoice, Decimal]] = []
            left = amount
            for pk in open_ids:
                if left <= 0:
                    break
                candidate = locked[pk]
                part = quantize(min(left, candidate.open_amount), currency)
                if part > 0:
                    plan.append((candidate, part))
                    left -= part
        else:
            locked = invoices_lock([item.invoice.pk for item in allocations])
            plan = []
            still_open: dict[int, Decimal] = {}
            for item in allocations:
                invoice = locked.get(item.invoice.pk)
                if invoice is None or invoice.customer_id != customer.pk:
                    raise ServiceError("A payment can only be applied to the customer's own invoices.")
                if invoice.currency != currency:
                    raise ServiceError(
                        f"Invoice {invoice.number} is in {invoice.currency}, the payment in {currency}."
                    )
                part = quantize(item.amount, currency)
                if part <= 0:
                    raise ServiceError(f"The amount applied to invoice {invoice.number} must be positive.")
                # Staff said where the money goes: more than is open is refused, not capped
                # (``allocate`` would cap it silently and keep the rest as credit).
                left_open = still_open.get(invoice.pk, invoice.open_amount)
                if part > left_open:
                    raise LedgerError(
                        f"Invoice {invoice.number} has {format_money(left_open, currency)} open; "
                        f"{format_money(part, currency)} is more than that."
                    )
                still_open[invoice.pk] = left_open - part
                plan.append((invoice, part))
            if sum((part for _, part in plan), Decimal(0)) > amount:
                raise ServiceError("The amounts applied add up to more than the payment.", field="amount")
        payment = Payment.objects.create(
            organization_id=customer.organization_id,
            creditor_id=customer.creditor_id,
            customer=customer,
            amount=amount,
            currency=currency,
            method=method,
            state=Payment.State.SUCCEEDED,
            reference=reference.strip(),
            received_at=received_at,
            recorded_by=actor if actor is not None and actor.is_authenticated else None,
        )
        # The rule online payments follow: each part capped by what the invoice has open.
        plan = allocate(payment, plan)
        applied = ", ".join(f"{invoice.number} ({format_money(part, currency)})" for invoice, part in plan)
        activity_record(
            customer=customer,
            kind=Activity.Kind.PAYMENT,
            summary=f"Payment of {format_money(amount, currency)} received by {payment.get_method_display()}",
            body=f"Applied to {applied}." if applied else "Not yet applied to an invoice.",
            actor=actor,
            occurred_at=received_at,
        )
        log_event(
            "openar.payment.recorded",
            organization=customer.organization,
            obj=payment,
            actor=actor,
            data={
                "amount": str(amount),
                "currency": currency,
                "method": method,
                "allocations": [[invoice.number, str(part)] for invoice, part in plan],
            },
        )
    return payment


# --- how an organization takes payments (admins, in the desk) ------------------------------------

CREDENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    "sandbox": (),
    "stripe": ("secret_key", "webhook_secret"),
    "paypal": ("client_id", "client_secret", "webhook_id"),
}


def provider_account_update(
    *,
    organization: Organization,
    provider: str,
    enabled: bool,
    methods: list[str],
    credentials: dict[str, str],
    actor: User | None,
) -> ProviderAccount:
    """Turn a provider on or off for the organization, choose its methods, and set its
    credentials (encrypted at rest; a blank value keeps the one stored). The audit says
    which credentials changed, never their values."""
    import json

    from openar.core.crypto import DecryptionError, decrypt_text, encrypt_text
    from openar.payments.providers.registry import provider as provider_named

    fields = CREDENTIAL_FIELDS.get(provider)
    if fields is None:
        raise ServiceError(f"Unknown payment provider {provider!r}.")
    if provider == "sandbox" and enabled and not getattr(settings, "OPENAR_SANDBOX_PAYMENTS", False):
        raise ServiceError("Test payments (the sandbox) are not allowed on this installation.")
    offered = provider_named(provider).methods
    unknown = set(methods) - set(offered)
    if unknown:
        raise ServiceError(f"{provider} does not take {', '.join(sorted(unknown))}.", field="methods")
    with transaction.atomic():
        account, _ = ProviderAccount.objects.select_for_update().get_or_create(
            organization=organization, provider=provider, defaults={"enabled": False}
        )
        try:
            stored: dict[str, str] = (
                json.loads(decrypt_text(account.credentials_encrypted))
                if account.credentials_encrypted
                else {}
            )
        except (DecryptionError, ValueError):
            stored = {}  # unreadable (a key that is gone): what is typed now replaces it
        changed = sorted(name for name in fields if credentials.get(name, "").strip())
        for name in changed:
            stored[name] = credentials[name].strip()
        missing = [name for name in fields if not stored.get(name)]
        if enabled and missing:
            names = ", ".join(name.replace("_", " ") for name in missing)
            raise ServiceError(f"Enter the {names} before turning {provider} on.", field=missing[0])
        if enabled and not methods:
            raise ServiceError("Choose at least one way of paying.", field="methods")
        before = (account.enabled, sorted(account.methods or []))
        account.enabled, account.methods = enabled, sorted(methods)
        account.credentials_encrypted = encrypt_text(json.dumps(stored)) if stored else ""
        account.save()
        if changed or before != (account.enabled, account.methods):
            log_event(
                "openar.payments.provider_changed",
                organization=organization,
                obj=account,
                actor=actor,
                data={
                    "provider": provider,
                    "enabled": enabled,
                    "methods": account.methods,
                    "credentials_changed": changed,
                },
            )
    return account


def payment_settings_update(
    *,
    organization: Organization,
    allow_partial: bool,
    short_pay_reasons: list[tuple[str, str]],
    fees: dict[str, dict[str, str]],
    actor: User | None,
) -> PaymentSettings:
    """Partial payments, their reason codes, and each method's fee or discount."""
    for method, rule in fees.items():
        for key in ("percent", "fixed"):
            try:
                value = Decimal(str(rule.get(key, "0") or "0"))
            except (ArithmeticError, ValueError) as exc:
                raise ServiceError(f"Enter the {method} {key} as a number.", field=f"{method}_{key}") from exc
            if not value.is_finite() or abs(value) > (Decimal(20) if key == "percent" else Decimal(1000)):
                raise ServiceError(f"The {method} {key} is out of range.", field=f"{method}_{key}")
    codes = [code for code, _ in short_pay_reasons]
    if len(codes) != len(set(codes)):
        raise ServiceError("Each reason code may appear once.", field="short_pay_reasons")
    with transaction.atomic():
        found, _ = PaymentSettings.objects.select_for_update().get_or_create(organization=organization)
        found.allow_partial = allow_partial
        found.short_pay_reasons = [[code, label] for code, label in short_pay_reasons]
        found.fees = {
            method: rule
            for method, rule in fees.items()
            if any(str(v) not in ("", "0") for v in rule.values())
        }
        found.save()
        log_event(
            "openar.payments.settings_changed",
            organization=organization,
            obj=found,
            actor=actor,
            data={"allow_partial": allow_partial, "reasons": codes, "fees": found.fees},
        )
    return found
