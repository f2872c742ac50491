"""Paying from the portal with the sandbox provider, end to end through the front doors: the
pay page (what, how, review, confirm), the sandbox's hosted page, the payment's page and
receipt, the receipt email, and what the invoices show while money is in flight."""

from __future__ import annotations

import datetime
import io
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import mail
from django.http.response import HttpResponseBase
from django.test import Client
from django_scopes import scope, scopes_disabled
from pypdf import PdfReader

from factories import TODAY, Users, dec, fresh, issue_invoice, make_member, signed_in, text_of
from openar.billing.ledger import ledger_check
from openar.billing.models import Document, Invoice
from openar.customers.models import Activity, Contact, Customer
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink
from openar.notifications.models import Message
from openar.payments import receipts
from openar.payments.models import Payment, PaymentSettings
from openar.payments.sandbox import deliver_due
from openar.tenants.models import Organization, Role

PAY = "/portal/pay/"
CARD_PAID = "4242 4242 4242 4242"
CARD_DECLINED = "4000 0000 0000 0002"
CARD_CHALLENGE = "4000 0027 6000 3184"
Capture = Callable[..., Any]


@pytest.fixture
def invoices(customer: Customer, clock: time_machine.Traveller) -> dict[str, Invoice]:
    """Two past-due invoices and one coming up, "today" being factories.TODAY."""
    return {
        "late": issue_invoice(customer, "INV-1", "100.00", due_date=TODAY - datetime.timedelta(days=10)),
        "later": issue_invoice(customer, "INV-2", "50.00", due_date=TODAY - datetime.timedelta(days=5)),
        "next": issue_invoice(customer, "INV-3", "80.00", due_date=TODAY + datetime.timedelta(days=20)),
    }


@pytest.fixture
def client(users: Users, contact: Contact, invoices: dict[str, Invoice]) -> Client:
    """The customer's portal user, signed in (a full session)."""
    return signed_in(users.customer)


def pay_settings(organization: Organization, **changes: object) -> None:
    with scope(organization=organization):
        PaymentSettings.objects.update_or_create(organization=organization, defaults=changes)


def review(client: Client, **data: object) -> HttpResponseBase:
    return client.post(PAY, {"step": "review", "method": "card", **data})


HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def confirm(client: Client, reviewed: HttpResponseBase) -> HttpResponseBase:
    """Press "Pay" on the review page: post its hidden fields with step=confirm."""
    assert reviewed.status_code == 200, text_of(reviewed.content)
    data: dict[str, list[str]] = {}
    for name, value in HIDDEN.findall(reviewed.content.decode()):
        data.setdefault(name, []).append(value.replace("&amp;", "&"))
    return client.post(PAY, {**data, "step": "confirm"})


def checkout_path(confirmed: HttpResponseBase) -> str:
    assert confirmed.status_code == 302, text_of(confirmed.content)
    path = urlsplit(confirmed["Location"]).path
    assert re.fullmatch(r"/sandbox/pay/sbx_[0-9a-f]{24}/", path), path
    return path


def start(client: Client, **data: object) -> str:
    """Choose, review and confirm: the sandbox page's path."""
    return checkout_path(confirm(client, review(client, **data)))


def pay_card(client: Client, path: str, number: str = CARD_PAID) -> HttpResponseBase:
    return client.post(path, {"number": number, "expiry": "12/39", "cvc": "123", "name": "Dana Payables"})


def pay_bank(client: Client, path: str, account: str) -> HttpResponseBase:
    return client.post(path, {"routing": "110000000", "account": account, "holder": "Bolt Hardware"})


def only_payment() -> Payment:
    with scopes_disabled():
        (payment,) = Payment.objects.filter(provider="sandbox")
        return payment


def page(client: Client, path: str) -> str:
    """The page at ``path``, through its redirects (the provider's return address leads on to
    the payment's page)."""
    response = client.get(path, follow=True)
    assert response.status_code == 200, (path, response.status_code)
    return text_of(response.content)


def back_at(client: Client, response: HttpResponseBase) -> str:
    """Where the provider's page sends the customer back to, once the portal has taken it
    (the checkout's return address, then the payment's page)."""
    assert response.status_code == 302, response.status_code
    assert response["Location"].startswith(f"{PAY}?checkout="), response["Location"]
    returned = client.get(response["Location"])
    assert returned.status_code == 302
    return str(returned["Location"])


def pdf_text(data: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


# --- choosing -----------------------------------------------------------------------------------


def test_the_pay_page_offers_everything_past_due_first(client: Client) -> None:
    response = client.get(PAY)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'value="past_due" id="mode-past-due" checked' in body
    text = text_of(body)
    assert "Everything past due: $150.00 (2 invoices)" in text
    assert all(number in text for number in ("INV-1", "INV-2", "INV-3"))
    assert "Card" in text and "Bank account (ACH)" in text


def test_review_of_everything_past_due(client: Client) -> None:
    response = review(client, mode="past_due")

    assert response.status_code == 200
    text = text_of(response.content)
    assert "INV-1" in text and "INV-2" in text and "INV-3" not in text
    assert "Invoices $150.00" in text and "Total to pay $150.00" in text
    assert re.search(r'name="checkout_token" value="[A-Za-z0-9_-]{32}"', response.content.decode())


def test_review_of_chosen_invoices(client: Client, invoices: dict[str, Invoice]) -> None:
    response = review(client, mode="invoices", invoice=[invoices["next"].pk, invoices["late"].pk])

    text = text_of(response.content)
    assert response.status_code == 200
    assert "INV-1" in text and "INV-3" in text and "INV-2" not in text
    assert "Total to pay $180.00" in text


def test_an_amount_pays_the_oldest_invoices_first(client: Client) -> None:
    response = review(client, mode="amount", amount="120")

    text = text_of(response.content)
    assert response.status_code == 200
    assert "INV-1 Due 20 Jun 2025 20 Jun 2025 $100.00 $0.00" in text  # paid in full, nothing left
    assert "INV-2 Due 25 Jun 2025 25 Jun 2025 $20.00 Part $30.00" in text  # the rest of the amount
    assert "Total to pay $120.00" in text


def test_no_invoice_chosen_is_a_clear_400(client: Client) -> None:
    response = review(client, mode="invoices")

    assert response.status_code == 400
    assert "Choose at least one invoice to pay." in text_of(response.content)


def test_an_amount_above_what_is_open_is_refused_next_to_the_field(client: Client) -> None:
    response = review(client, mode="amount", amount="1000")

    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="amount-error">That is more than the $230.00 you can pay now.' in body
    assert review(client, mode="amount", amount="ten dollars").status_code == 400


def test_part_of_an_invoice_where_the_organization_allows_it(
    client: Client, invoices: dict[str, Invoice]
) -> None:
    late = invoices["late"]
    assert f'name="amount_{late.pk}"' in client.get(PAY).content.decode()  # the amount is editable

    response = review(client, mode="invoices", invoice=[late.pk], **{f"amount_{late.pk}": "40.00"})

    assert response.status_code == 200
    text = text_of(response.content)
    assert "Part" in text and "Total to pay $40.00" in text


def test_part_of_an_invoice_where_the_organization_wants_it_in_full(
    client: Client, invoices: dict[str, Invoice], supplier: Organization
) -> None:
    pay_settings(supplier, allow_partial=False)
    late = invoices["late"]
    assert f'name="amount_{late.pk}"' not in client.get(PAY).content.decode()

    response = review(client, mode="invoices", invoice=[late.pk], **{f"amount_{late.pk}": "40.00"})
    by_amount = review(client, mode="amount", amount="120")

    assert response.status_code == 400
    assert "Acme Supplies asks for invoices to be paid in full." in text_of(response.content)
    assert by_amount.status_code == 400
    assert (
        'id="amount-error">Acme Supplies asks for invoices to be paid in full.' in by_amount.content.decode()
    )
    assert review(client, mode="amount", amount="150").status_code == 200  # two whole invoices


def test_a_reason_is_asked_for_part_payments_when_codes_are_configured(
    client: Client, invoices: dict[str, Invoice], supplier: Organization
) -> None:
    pay_settings(supplier, short_pay_reasons=[["price", "Price is wrong"], ["damaged", "Goods damaged"]])
    late = invoices["late"]
    part = {"mode": "invoices", "invoice": [late.pk], f"amount_{late.pk}": "40.00"}
    assert "If you pay part of an invoice, why?" in text_of(client.get(PAY).content)

    refused = review(client, **part)
    reviewed = review(client, **part, short_pay_reason="damaged")
    in_full = review(client, mode="past_due")  # nothing partial: no reason needed

    assert refused.status_code == 400
    assert (
        'id="short_pay_reason-error">Tell us why you are paying part of an invoice.'
        in refused.content.decode()
    )
    assert reviewed.status_code == 200 and "Why you are paying part: Goods damaged" in text_of(
        reviewed.content
    )
    assert in_full.status_code == 200
    checkout_path(confirm(client, reviewed))
    assert (only_payment().short_pay_reason, only_payment().amount) == ("damaged", dec("40.00"))


def test_the_review_shows_the_methods_fee_or_discount(client: Client, supplier: Organization) -> None:
    pay_settings(supplier, fees={"card": {"percent": "3"}, "ach": {"percent": "-1"}})
    assert "A fee of 3% applies." in text_of(client.get(PAY).content)

    card = text_of(review(client, mode="past_due").content)
    bank = text_of(review(client, mode="past_due", method="ach").content)

    assert "Invoices $150.00 Card fee $4.50 Total to pay $154.50" in card
    assert "Pay $154.50" in card
    assert "Discount for paying by Bank account (ACH) -$1.50 Total to pay $148.50" in bank


# --- confirming ---------------------------------------------------------------------------------


def test_confirm_records_one_payment_and_goes_to_the_sandbox(
    client: Client, invoices: dict[str, Invoice]
) -> None:
    reviewed = review(client, mode="past_due")

    first = confirm(client, reviewed)
    again = confirm(client, reviewed)  # a double click, a reload

    path = checkout_path(first)
    assert again.status_code == 302 and again["Location"] == first["Location"]
    payment = only_payment()
    assert (payment.state, payment.amount, payment.method) == ("pending", dec("150.00"), "card")
    assert payment.provider_payment_id in path
    sandbox_page = client.get(path)
    assert sandbox_page.status_code == 200
    text = text_of(sandbox_page.content)
    assert "Sandbox payments" in text and "Pay Acme Supplies" in text and "$150.00 USD" in text
    assert "4242 4242 4242 4242" in text and "Card number" in text
    assert Client().get(path).status_code == 200  # the provider's page: no portal sign-in needed
    assert Client().get("/sandbox/pay/sbx_000000000000000000000000/").status_code == 404
    assert [fresh(i).open_amount for i in invoices.values()] == [dec("100.00"), dec("50.00"), dec("80.00")]


def test_paying_with_the_test_card_pays_the_invoices_and_sends_the_receipt(
    client: Client,
    invoices: dict[str, Invoice],
    contact: Contact,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    path = start(client, mode="past_due")

    with django_capture_on_commit_callbacks(execute=True):
        paid = pay_card(client, path)

    payment = only_payment()
    assert back_at(client, paid) == f"/portal/pay/{payment.pk}/"
    assert payment.state == "succeeded"
    assert fresh(invoices["late"]).open_amount == 0 and fresh(invoices["later"]).open_amount == 0
    assert fresh(invoices["next"]).open_amount == dec("80.00")
    assert ledger_check() == []
    text = page(client, paid["Location"])
    assert "Paid, thank you" in text and "INV-1 $100.00 $0.00" in text
    assert "Download the receipt (PDF)" in text
    # The receipt: kept for the customer and emailed, with the PDF, to the contact.
    with scopes_disabled():
        message = Message.objects.get(subject__startswith="Receipt")
        (document,) = message.attachments.all()
    assert (message.to_address, message.contact_id) == ("dana@bolt.example", contact.pk)
    assert (document.kind, document.title, document.visible_to_customer) == (
        Document.Kind.ATTACHMENT,
        "Receipt 2025-06-30",
        True,
    )
    assert message.subject == "Receipt: your payment of $150.00 to Acme Supplies"
    assert "It paid:\n- INV-1: $100.00 (paid in full)\n- INV-2: $50.00 (paid in full)" in message.body_text
    assert "still open" not in message.body_text.replace("(paid in full)", "")
    (email,) = mail.outbox
    assert email.to == ["dana@bolt.example"]
    ((filename, content, mimetype),) = email.attachments  # type: ignore[misc]
    assert mimetype == "application/pdf" and filename.endswith(".pdf")
    assert "INV-2" in pdf_text(content) and "Payment receipt" in pdf_text(content)
    # The receipt PDF from the payment's page: a download, never inline.
    pdf = client.get(f"/portal/pay/{payment.pk}/receipt.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"].startswith("attachment;")
    assert pdf["X-Content-Type-Options"] == "nosniff"
    receipt = pdf_text(pdf.content)
    assert "Acme Supplies" in receipt and "Bolt Hardware" in receipt and "$150.00" in receipt
    assert "INV-1" in receipt and "Card" in receipt


def test_paying_part_says_what_is_still_open_with_a_link_to_pay_the_rest(
    client: Client, invoices: dict[str, Invoice], django_capture_on_commit_callbacks: Capture
) -> None:
    late = invoices["late"]
    path = start(client, mode="invoices", invoice=[late.pk], **{f"amount_{late.pk}": "40.00"})

    with django_capture_on_commit_callbacks(execute=True):
        pay_card(client, path)

    assert fresh(late).open_amount == dec("60.00")
    with scopes_disabled():
        message = Message.objects.get(subject__startswith="Receipt")
        link = MagicLink.objects.get()
    assert "- INV-1: $40.00 ($60.00 still open)" in message.body_text
    assert "Still open on INV-1: $60.00. To pay the rest, sign in here:\nhttp" in message.body_text
    assert (link.scope, link.invoice_id, link.target) == ("invoice", late.pk, "/portal/pay/")
    assert message.links and message.links[0] in message.body_text
    assert ledger_check() == []
    # The link signs the contact in on the pay page, with the rest of the invoice ticked.
    payer = Client()
    opened = payer.get(urlsplit(message.links[0]).path)
    assert opened["Location"] == "/l/confirm/"
    assert payer.post("/l/confirm/")["Location"] == "/portal/pay/"
    rest = payer.get(PAY).content.decode()
    assert f'id="invoice-{late.pk}" checked' in rest and 'value="60.00"' in rest
    assert "INV-2" not in text_of(rest)


def test_a_receipt_that_cannot_be_written_does_not_undo_the_payment(
    client: Client,
    invoices: dict[str, Invoice],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    def broken(receipt: object) -> bytes:
        raise RuntimeError("no fonts today")

    monkeypatch.setattr(receipts, "render_receipt_pdf", broken)
    path = start(client, mode="past_due")

    with django_capture_on_commit_callbacks(execute=True):
        paid = pay_card(client, path)

    assert paid.status_code == 302
    assert only_payment().state == "succeeded"
    assert fresh(invoices["late"]).open_amount == 0
    assert mail.outbox == []


def test_a_declined_card_pays_nothing_and_the_page_says_why(
    client: Client, invoices: dict[str, Invoice]
) -> None:
    path = start(client, mode="past_due")

    declined = pay_card(client, path, CARD_DECLINED)

    text = page(client, declined["Location"])
    assert "Not paid: Your card was declined." in text
    assert [fresh(i).open_amount for i in invoices.values()] == [dec("100.00"), dec("50.00"), dec("80.00")]
    assert "Everything past due: $150.00" in text_of(client.get(PAY).content)  # free to pay again
    assert "no longer waiting" in text_of(client.get(path).content)
    assert ledger_check() == []


def test_a_card_that_asks_for_authentication(client: Client, invoices: dict[str, Invoice]) -> None:
    path = start(client, mode="past_due")
    assert client.post(f"{path}challenge/", {"answer": "approve"}).status_code == 404  # not asked yet

    asked = pay_card(client, path, CARD_CHALLENGE)
    assert asked.status_code == 200 and "Confirm it is you" in text_of(asked.content)
    approved = client.post(f"{path}challenge/", {"answer": "approve"})

    assert back_at(client, approved) == f"/portal/pay/{only_payment().pk}/"
    assert only_payment().state == "succeeded"
    assert fresh(invoices["late"]).open_amount == 0


def test_the_sandbox_form_checks_what_is_typed_and_never_shows_the_number(client: Client) -> None:
    path = start(client, mode="past_due")

    response = client.post(path, {"number": "4242 4242", "expiry": "13/30", "cvc": "12", "name": ""})

    assert response.status_code == 400
    text = text_of(response.content)
    assert "Enter the card number" in text and "MM/YY" in text and "3 or 4 digits" in text
    assert '4242 4242"' not in response.content.decode() and 'value="4242' not in response.content.decode()
    assert only_payment().state == "pending"


def test_cancelling_at_the_sandbox_frees_the_invoices(client: Client, invoices: dict[str, Invoice]) -> None:
    path = start(client, mode="past_due")

    cancelled = client.post(path, {"action": "cancel"})

    assert "Not paid: You cancelled the payment." in page(client, cancelled["Location"])
    assert only_payment().state == "failed"
    assert "Payment processing" not in text_of(client.get("/portal/invoices/").content)


def test_a_payment_left_at_the_provider_can_be_resumed(client: Client) -> None:
    path = start(client, mode="past_due")
    payment = only_payment()

    back = client.get(f"{PAY}?checkout={payment.checkout_token}")  # the provider's return address
    text = page(client, back["Location"])
    resumed = client.post(PAY, {"step": "confirm", "checkout_token": payment.checkout_token})

    assert back["Location"] == f"/portal/pay/{payment.pk}/"
    assert "Not finished yet" in text and "Continue paying" in text
    assert checkout_path(resumed) == path


# --- bank payments: in flight for days ----------------------------------------------------------


def test_a_bank_payment_is_processing_until_the_money_arrives(
    client: Client, invoices: dict[str, Invoice], clock: time_machine.Traveller
) -> None:
    late = invoices["late"]
    path = start(client, mode="invoices", invoice=[late.pk], method="ach")
    assert "Routing number" in text_of(client.get(path).content)

    returned_to = pay_bank(client, path, "000123456789")

    text = page(client, returned_to["Location"])
    assert "Bank payment in progress" in text and "3 business days" in text
    assert fresh(late).open_amount == dec("100.00")
    rows = client.get("/portal/invoices/").content.decode().split("<tr>")
    assert [text_of(row).split()[0] for row in rows if "Payment processing" in row] == ["INV-1"]
    assert "Payment processing" in text_of(client.get("/portal/").content)
    # "Everything past due" still works: it leaves out what is already on its way.
    assert "Everything past due: $50.00 (1 invoice)" in text_of(client.get(PAY).content)
    refused = review(client, mode="invoices", invoice=[late.pk])
    assert refused.status_code == 400 and "INV-1 already has a payment on its way." in text_of(
        refused.content
    )

    clock.shift(datetime.timedelta(days=3))
    assert deliver_due() == 1

    assert fresh(late).open_amount == 0
    assert only_payment().state == "succeeded"
    assert "Payment processing" not in text_of(client.get("/portal/invoices/?status=all").content)
    assert ledger_check() == []


def test_a_returned_bank_payment_opens_the_invoice_again(
    client: Client,
    invoices: dict[str, Invoice],
    customer: Customer,
    users: Users,
    clock: time_machine.Traveller,
) -> None:
    late = invoices["late"]
    path = start(client, mode="invoices", invoice=[late.pk], method="ach")
    pay_bank(client, path, "000111111113")

    clock.shift(datetime.timedelta(days=3))
    deliver_due()
    assert fresh(late).open_amount == 0
    clock.shift(datetime.timedelta(days=2))
    deliver_due()

    assert fresh(late).open_amount == dec("100.00")
    payment = only_payment()
    assert payment.state == "returned"
    client = signed_in(users.customer)  # days later: a new sign-in
    text = page(client, f"/portal/pay/{payment.pk}/")
    assert "Returned" in text and "insufficient funds (R01)" in text
    with scope(organization=customer.organization):
        summaries = list(Activity.objects.filter(customer=customer).values_list("summary", flat=True))
    assert any("was returned" in summary for summary in summaries)
    assert client.get(f"/portal/pay/{payment.pk}/receipt.pdf").status_code == 404
    assert ledger_check() == []


# --- who may pay, and see which payment --------------------------------------------------------


def test_another_customers_payment_is_a_404(
    client: Client, customer_2: Customer, users: Users, clock: time_machine.Traveller
) -> None:
    issue_invoice(customer_2, "INV-9", "70.00", due_date=TODAY - datetime.timedelta(days=3))
    theirs = signed_in(
        make_member(customer_2.organization, Role.CUSTOMER, "ap@anvil-user.example", customer=customer_2)
    )
    start(theirs, mode="past_due")
    payment = only_payment()
    assert payment.customer_id == customer_2.pk

    for path in (f"/portal/pay/{payment.pk}/", f"/portal/pay/{payment.pk}/receipt.pdf"):
        assert client.get(path).status_code == 404
    assert (
        client.get(f"{PAY}?checkout={payment.checkout_token}").status_code == 200
    )  # not theirs: no redirect


def test_a_magic_link_session_pays_what_its_link_shows(
    contact: Contact, invoices: dict[str, Invoice], django_capture_on_commit_callbacks: Capture
) -> None:
    with scope(organization=contact.customer.organization):
        issued = magic_link_create(contact=contact, scope_=MagicLink.Scope.PAST_DUE)
    client = Client()
    client.get(f"/l/{issued.token}/")
    assert client.post("/l/confirm/").status_code == 302

    text = text_of(client.get(PAY).content)
    beyond = review(client, mode="invoices", invoice=[invoices["next"].pk])
    too_much = review(client, mode="amount", amount="200")
    path = start(client, mode="past_due")
    with django_capture_on_commit_callbacks(execute=True):
        paid = pay_card(client, path)

    assert "INV-1" in text and "INV-2" in text and "INV-3" not in text
    assert beyond.status_code == 400
    assert too_much.status_code == 400
    assert "From this sign-in link you can pay up to $150.00." in text_of(too_much.content)
    payment = only_payment()
    assert (payment.state, payment.contact_id) == ("succeeded", contact.pk)
    assert "Paid, thank you" in page(client, paid["Location"])
    assert fresh(invoices["late"]).open_amount == 0 and fresh(invoices["next"]).open_amount == dec("80.00")


def test_staff_viewing_as_the_customer_may_look_but_not_pay(
    users: Users, customer: Customer, invoices: dict[str, Invoice]
) -> None:
    client = signed_in(users.collector)
    client.post(f"/desk/customers/{customer.pk}/view-as/")

    looked = client.get(PAY)
    reviewed = review(client, mode="past_due")
    refused = confirm(client, reviewed)

    assert looked.status_code == 200 and "nothing can be paid" in text_of(looked.content)
    assert reviewed.status_code == 200
    assert re.search(r'data-testid="pay-confirm" disabled', reviewed.content.decode())
    assert refused.status_code == 403
    with scopes_disabled():
        assert not Payment.objects.filter(provider="sandbox").exists()


def test_the_amounts_are_checked_again_when_paying(
    client: Client, invoices: dict[str, Invoice], customer: Customer
) -> None:
    reviewed = review(client, mode="past_due")
    issue_invoice(customer, "INV-4", "10.00", due_date=TODAY - datetime.timedelta(days=1))

    changed = confirm(client, reviewed)

    assert changed.status_code == 409
    assert "The amounts changed since you reviewed them" in text_of(changed.content)
    assert "Total to pay $160.00" in text_of(changed.content)
    with scopes_disabled():
        assert not Payment.objects.filter(provider="sandbox").exists()


def test_the_invoice_page_offers_to_pay_it(client: Client, invoices: dict[str, Invoice]) -> None:
    late = invoices["late"]
    detail = client.get(f"/portal/invoices/{late.pk}/").content.decode()
    chosen = client.get(f"{PAY}?invoice={late.pk}").content.decode()

    assert f'href="/portal/pay/?invoice={late.pk}"' in detail
    assert (
        f'id="invoice-{late.pk}" checked' in chosen
        and 'value="invoices" id="mode-invoices" checked' in chosen
    )


def test_without_a_provider_or_the_sandbox_the_pay_page_says_how_else_to_pay(
    settings: Any, users: Users, customer: Customer
) -> None:
    settings.OPENAR_SANDBOX_PAYMENTS = False
    response = signed_in(users.customer).get("/portal/pay/")
    assert response.status_code == 503
    assert "does not take payments online yet" in text_of(response.content)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("12,50", "Use a point before the decimals, and commas only between thousands"),
        ("10.005", "decimals"),
        ("-20", ""),
    ],
)
def test_amounts_are_read_like_the_desk_reads_them(client: Client, typed: str, message: str) -> None:
    refused = review(client, mode="amount", amount=typed)
    assert refused.status_code == 400
    assert message in text_of(refused.content)


def test_an_amount_with_thousands_and_a_sign_is_taken(client: Client) -> None:
    reviewed = review(client, mode="amount", amount="$150.00")
    assert reviewed.status_code == 200 and "Total to pay $150.00" in text_of(reviewed.content)
