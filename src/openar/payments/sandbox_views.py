"""The sandbox provider's "hosted page", at ``/sandbox/pay/<checkout id>/``: it plays the
part of a payment provider's site (it is not part of the portal, and looks like a site of its
own), where the customer types a test card or bank account.

What the customer types decides the outcome on the sandbox's side (``openar.payments.sandbox``),
which sends it back as signed events through the webhook path, exactly as a real provider
would; then the customer goes back to the payment's page in the portal. Card and bank numbers
are read, checked and forgotten: never stored, logged or shown back (and masked in error
reports, ``sensitive_post_parameters``).

Anyone holding the checkout id may open the page, as at a real provider: the id is derived
from the payment's secret idempotency key and cannot be guessed.
"""

from __future__ import annotations

import datetime
import re
import uuid

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django_scopes import scope, scopes_disabled

from openar.core.money import format_money
from openar.payments import sandbox
from openar.payments.models import Payment, SandboxSetup
from openar.payments.providers import base

CHALLENGES_KEY = "openar_sandbox_challenges"  # checkout ids whose card asked for authentication
CHECKOUT_ID = re.compile(r"sbx_[0-9a-f]{24}")
CANCELLED_MESSAGE = "You cancelled the payment."
TEST_CARDS = [
    ("4242 4242 4242 4242", "Paid"),
    ("4000 0000 0000 0002", "Declined"),
    ("4000 0027 6000 3184", "Asks for authentication (approve or fail it)"),
]
TEST_ACCOUNTS = [
    ("000123456789", "Accepted; the money arrives 3 days later"),
    ("000111111113", "Arrives 3 days later, then is returned 2 days after (insufficient funds)"),
]
TEST_ROUTING = "110000000"


def _payment(checkout_id: str) -> Payment:
    """The sandbox payment of ``checkout_id`` (in any organization: the page is the
    provider's, outside every tenant; the caller enters the payment's own scope)."""
    if not CHECKOUT_ID.fullmatch(checkout_id):
        raise Http404
    with scopes_disabled():
        found = (
            Payment.objects.select_related("organization", "customer")
            .filter(provider="sandbox", provider_payment_id=checkout_id)
            .first()
        )
    if found is None:
        raise Http404
    return found


def _return_url(payment: Payment, *, cancelled: bool = False) -> str:
    """Where the checkout said to send the customer back (the portal's or the pay page's
    address), else the payment's page in the portal."""
    stored = sandbox.checkout_return(payment.provider_payment_id, cancelled=cancelled)
    if stored.startswith(settings.SITE_URL):  # this site: its own path (the demo's host may differ)
        stored = stored[len(settings.SITE_URL) :] or "/"
    return stored or reverse("portal:payment", args=[payment.pk])


def _context(payment: Payment, **extra: object) -> dict[str, object]:
    return {
        "payment": payment,
        "organization": payment.organization,
        "amount": format_money(payment.amount, payment.currency),
        "return_url": _return_url(payment),
        "test_cards": TEST_CARDS,
        "test_accounts": TEST_ACCOUNTS,
        "test_routing": TEST_ROUTING,
        "values": {},
        "errors": {},
        **extra,
    }


def _card_errors(data: dict[str, str], today: datetime.date) -> dict[str, str]:
    errors = {}
    number = sandbox.digits(data["number"])
    if not 12 <= len(number) <= 19:
        errors["number"] = "Enter the card number (12 to 19 digits), such as 4242 4242 4242 4242."
    found = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", data["expiry"])
    if found is None or not 1 <= int(found.group(1)) <= 12:
        errors["expiry"] = "Enter the expiry date as MM/YY, such as 12/30."
    else:
        month, year = int(found.group(1)), int(found.group(2)) % 100 + 2000
        if (year, month) < (today.year, today.month):
            errors["expiry"] = "This card has expired."
    if not re.fullmatch(r"\d{3,4}", data["cvc"].strip()):
        errors["cvc"] = "Enter the 3 or 4 digits on the back of the card."
    if not data["name"].strip():
        errors["name"] = "Enter the name on the card."
    return errors


def _bank_errors(data: dict[str, str]) -> dict[str, str]:
    errors = {}
    if not re.fullmatch(r"\d{9}", sandbox.digits(data["routing"]) or "-"):
        errors["routing"] = f"Enter the 9-digit routing number, such as {TEST_ROUTING}."
    if not 4 <= len(sandbox.digits(data["account"])) <= 17:
        errors["account"] = "Enter the account number (4 to 17 digits)."
    if not data["holder"].strip():
        errors["holder"] = "Enter the name of the account holder."
    return errors


def _cancel_event(payment: Payment) -> dict[str, object]:
    """What a provider says when the customer gives up at its page (Stripe: the checkout
    session expired): the payment failed, and its invoices are free to be paid again."""
    return {
        "id": f"sbe_{uuid.uuid4().hex}",
        "type": base.PAYMENT_FAILED,
        "payment": payment.provider_payment_id,
        "at": timezone.now().isoformat(),
        "message": CANCELLED_MESSAGE,
        "openar_payment_id": str(payment.pk),
    }


@require_http_methods(["GET", "HEAD", "POST"])
@sensitive_post_parameters("number", "expiry", "cvc", "routing", "account")
def checkout(request: HttpRequest, checkout_id: str) -> HttpResponse:
    """The payment form: a card form or a bank form, as the payment's method."""
    payment = _payment(checkout_id)
    with scope(organization=payment.organization):
        if payment.state != Payment.State.PENDING:
            status = 409 if request.method == "POST" else 200
            return render(request, "sandbox/ended.html", _context(payment), status=status)
        if request.method != "POST":
            return render(request, "sandbox/checkout.html", _context(payment))
        if request.POST.get("action") == "cancel":
            sandbox.deliver(payment, [_cancel_event(payment)])
            return HttpResponseRedirect(_return_url(payment, cancelled=True))
        if payment.method == Payment.Method.ACH:
            data = {name: request.POST.get(name, "")[:60] for name in ("routing", "account", "holder")}
            errors = _bank_errors(data)
            if errors:
                values = {"holder": data["holder"]}
                context = _context(payment, errors=errors, values=values)
                return render(request, "sandbox/checkout.html", context, status=400)
            sandbox.bank_outcome(payment, data["account"])
            return HttpResponseRedirect(_return_url(payment))
        data = {name: request.POST.get(name, "")[:60] for name in ("number", "expiry", "cvc", "name")}
        errors = _card_errors(data, timezone.localdate())
        if errors:  # the name and expiry are shown back; the number and CVC never are
            values = {"name": data["name"], "expiry": data["expiry"]}
            return render(
                request, "sandbox/checkout.html", _context(payment, errors=errors, values=values), status=400
            )
        outcome = sandbox.card_outcome(payment, data["number"])
        if outcome == "challenge":
            waiting = [cid for cid in request.session.get(CHALLENGES_KEY, []) if cid != checkout_id]
            request.session[CHALLENGES_KEY] = [*waiting[-9:], checkout_id]
            return render(request, "sandbox/challenge.html", _context(payment))
        return HttpResponseRedirect(_return_url(payment))


@require_http_methods(["POST"])
def challenge(request: HttpRequest, checkout_id: str) -> HttpResponse:
    """The card's "3-D Secure" step: approve or fail. Only after the card asked for it, in
    this browser."""
    payment = _payment(checkout_id)
    waiting = list(request.session.get(CHALLENGES_KEY, []))
    if checkout_id not in waiting:
        raise Http404
    with scope(organization=payment.organization):
        if payment.state != Payment.State.PENDING:
            return render(request, "sandbox/ended.html", _context(payment), status=409)
        sandbox.challenge_answer(payment, request.POST.get("answer") == "approve")
    request.session[CHALLENGES_KEY] = [cid for cid in waiting if cid != checkout_id]
    return HttpResponseRedirect(_return_url(payment))


# --- saving a method for autopay --------------------------------------------------------------

SETUP_ID = re.compile(r"sbs_[0-9a-f]{24}")
SAVE_TEST_CARDS = [
    ("4242 4242 4242 4242", "Saved; charges to it are paid"),
    ("4000 0000 0000 0341", "Saved; every charge to it is declined"),
]


def _setup(setup_id: str) -> SandboxSetup:
    if not SETUP_ID.fullmatch(setup_id):
        raise Http404
    found = SandboxSetup.objects.filter(setup_id=setup_id).first()
    if found is None:
        raise Http404
    return found


def _expiry_date(text: str) -> datetime.date | None:
    found = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", text)
    if found is None:
        return None
    month, year = int(found.group(1)), int(found.group(2)) % 100 + 2000
    following = datetime.date(year + month // 12, month % 12 + 1, 1)
    return following - datetime.timedelta(days=1)


@require_http_methods(["GET", "HEAD", "POST"])
@sensitive_post_parameters("number", "expiry", "cvc", "routing", "account")
def setup(request: HttpRequest, setup_id: str) -> HttpResponse:
    """The page where the customer saves a card or bank account for later charges."""
    found = _setup(setup_id)
    context: dict[str, object] = {
        "setup": found,
        "test_cards": SAVE_TEST_CARDS,
        "test_accounts": TEST_ACCOUNTS,
        "test_routing": TEST_ROUTING,
        "values": {},
        "errors": {},
    }
    if found.state != "open":
        return HttpResponseRedirect(found.return_url if found.state == "saved" else found.cancel_url)
    if request.method != "POST":
        return render(request, "sandbox/setup.html", context)
    if request.POST.get("action") == "cancel":
        sandbox.setup_cancel(setup_id)
        return HttpResponseRedirect(found.cancel_url)
    if found.method == Payment.Method.ACH:
        data = {name: request.POST.get(name, "")[:60] for name in ("routing", "account", "holder")}
        errors = _bank_errors(data)
        number, expires = data["account"], None
        context["values"] = {"holder": data["holder"]}
    else:
        data = {name: request.POST.get(name, "")[:60] for name in ("number", "expiry", "cvc", "name")}
        errors = _card_errors(data, timezone.localdate())
        number, expires = data["number"], _expiry_date(data["expiry"])
        context["values"] = {"name": data["name"], "expiry": data["expiry"]}
    if not errors:
        outcome = sandbox.setup_save(setup_id, method=found.method, number=number, expires=expires)
        if outcome == "saved":
            return HttpResponseRedirect(found.return_url)
        errors = {"account" if found.method == Payment.Method.ACH else "number": outcome}
    context["errors"] = errors
    return render(request, "sandbox/setup.html", context, status=400)
