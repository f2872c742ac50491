"""The desk's payments, through the real URLs: the list (states as staff read them, filters,
the total of unapplied credit, pages of 50), one payment whole (targets, allocations with
the reversed ones struck through, the provider's events, refunds), refunding, applying
unapplied credit, recording a cheque (oldest first or per invoice), the CSV export for the
ERP, who may do what, and other organizations' ids.

Every test ends with the ledger checked (conftest); the ones that move money check it
themselves too, at the point that matters."""

from __future__ import annotations

import csv
import datetime
import io
import re
import uuid
from decimal import Decimal
from html.parser import HTMLParser

import pytest
import time_machine
from django.http.response import HttpResponseBase
from django.test import Client
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from factories import (
    NOON_ON_TODAY,
    TODAY,
    TORONTO,
    Users,
    assert_ledger_clean,
    dec,
    fresh,
    issue_invoice,
    make_customer,
    make_member,
    record_payment,
    row_counts,
    signed_in,
    text_of,
)
from openar.billing.models import Invoice
from openar.customers.models import Customer
from openar.desk.payments import EXPORT_COLUMNS, credit_of, with_credit
from openar.payments.models import Allocation, Payment, PaymentSettings, Refund
from openar.payments.online import choose_lines, payment_refund, payment_start, unapplied
from openar.payments.sandbox import (
    BANK_RETURNED,
    BANK_SETTLES,
    CARD_PAID,
    bank_outcome,
    card_outcome,
    deliver_due,
)
from openar.tenants.models import Creditor, Organization, Role

LIST = "/desk/payments/"
EXPORT = "/desk/payments/export.csv"
UTC = datetime.UTC


# --- helpers ------------------------------------------------------------------------------------


def url(payment: Payment, action: str = "") -> str:
    return f"/desk/payments/{payment.pk}/{action + '/' if action else ''}"


def record_url(customer: Customer) -> str:
    return f"/desk/customers/{customer.pk}/payments/new/"


def current(payment: Payment) -> Payment:
    with scopes_disabled():
        return Payment.objects.get(pk=payment.pk)


def credit(payment: Payment) -> Decimal:
    with scope(organization=payment.organization):
        return unapplied(current(payment))


def active_allocations(payment: Payment) -> list[tuple[str, Decimal]]:
    with scopes_disabled():
        return [
            (a.invoice.number, a.amount)
            for a in Allocation.objects.filter(payment=payment, reversed_at__isnull=True)
            .select_related("invoice")
            .order_by("pk")
        ]


def refund_count() -> int:
    with scopes_disabled():
        return Refund.objects.count()


def listed(client: Client, query: str = "") -> list[int]:
    """The ids of the payments the list shows, in its order."""
    response = client.get(LIST + query)
    assert response.status_code == 200
    return [int(pk) for pk in re.findall(r'href="/desk/payments/(\d+)/"', response.content.decode())]


def online(customer: Customer, invoices: list[Invoice], *, method: str = "card") -> Payment:
    """A payment started from the portal's pay page for ``invoices`` (pending at the sandbox)."""
    with scope(organization=customer.organization):
        lines = choose_lines(customer, TODAY, invoice_ids=[invoice.pk for invoice in invoices])
        started = payment_start(
            customer=customer,
            lines=lines,
            method=method,
            provider_name="sandbox",
            checkout_token=uuid.uuid4().hex,
            return_url="http://testserver/portal/pay/",
            cancel_url="http://testserver/portal/pay/",
        )
    return started.payment


def paid_by_card(customer: Customer, invoices: list[Invoice]) -> Payment:
    payment = online(customer, invoices)
    with scope(organization=customer.organization):
        assert card_outcome(payment, CARD_PAID) == "paid"
    return current(payment)


def csv_rows(response: HttpResponseBase) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    return list(csv.reader(io.StringIO(body)))


def as_dicts(rows: list[list[str]]) -> list[dict[str, str]]:
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def field_error(response: HttpResponseBase, field_id: str) -> str:
    """The text of the error list Django ties to the field (``{id}_error``), '' without one."""
    html = response.content.decode()  # type: ignore[attr-defined]
    match = re.search(rf'id="{re.escape(field_id)}_error">(.*?)</ul>', html, re.S)
    return text_of(match.group(1)) if match else ""


class _Outline(HTMLParser):
    """Headings inside <main>, and the form controls without a label."""

    def __init__(self) -> None:
        super().__init__()
        self.in_main = False
        self.levels: list[int] = []
        self.labelled: set[str] = set()
        self.controls: list[tuple[str, dict[str, str | None]]] = []
        self.label_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "main":
            self.in_main = True
        if self.in_main and re.fullmatch(r"h[1-6]", tag):
            self.levels.append(int(tag[1]))
        if tag == "label":
            self.label_depth += 1
            if found.get("for"):
                self.labelled.add(str(found["for"]))
        control = tag in ("input", "select", "textarea") and found.get("type") not in ("hidden", "submit")
        if control and not (self.label_depth or found.get("aria-label") or found.get("aria-labelledby")):
            self.controls.append((tag, found))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.label_depth -= 1
        if tag == "main":
            self.in_main = False


def accessibility_problems(response: HttpResponseBase) -> list[str]:
    outline = _Outline()
    outline.feed(response.content.decode())  # type: ignore[attr-defined]
    problems = []
    if not outline.levels or outline.levels[0] != 1 or outline.levels.count(1) != 1:
        problems.append(f"one h1 first: {outline.levels}")
    for before, after in zip(outline.levels, outline.levels[1:], strict=False):
        if after > before + 1:
            problems.append(f"heading h{after} after h{before}")
    for tag, attrs in outline.controls:
        if attrs.get("id") not in outline.labelled:
            problems.append(f"{tag} {attrs.get('name')} has no label")
    return problems


@pytest.fixture
def manager_client(users: Users) -> Client:
    return signed_in(users.manager)


@pytest.fixture
def collector_client(users: Users) -> Client:
    return signed_in(users.collector)


@pytest.fixture
def invoices(customer: Customer) -> list[Invoice]:
    """INV-1 (100.00, due first) and INV-2 (50.00)."""
    return [
        issue_invoice(customer, "INV-1", "100.00", due_date=TODAY - datetime.timedelta(days=20)),
        issue_invoice(customer, "INV-2", "50.00", due_date=TODAY - datetime.timedelta(days=5)),
    ]


# --- the list -----------------------------------------------------------------------------------


def test_the_list_shows_payments_newest_first_as_staff_read_them(
    clock: time_machine.Traveller, manager_client: Client, customer: Customer, invoices: list[Invoice]
) -> None:
    extra = issue_invoice(customer, "INV-3", "80.00", due_date=TODAY)
    cheque = record_payment(
        customer,
        "130.00",
        allocations=[(invoices[0], "100.00")],
        reference="CHK-500",
        received_at=datetime.datetime(2025, 6, 1, 15, tzinfo=UTC),
    )
    card = paid_by_card(customer, [invoices[1]])
    with scope(organization=customer.organization):
        payment_refund(payment=card, amount=dec("20.00"), reason="Damaged", actor=None)
    clock.shift(datetime.timedelta(minutes=5))
    bank = online(customer, [extra], method="ach")
    with scope(organization=customer.organization):
        assert bank_outcome(bank, BANK_SETTLES) == "processing"

    response = manager_client.get(LIST)

    assert response.status_code == 200
    assert listed(manager_client) == [bank.pk, card.pk, cheque.pk]
    text = text_of(response.content)
    assert "Bank payment in progress" in text
    assert "Partly refunded" in text and "Refunded $20.00" in text
    assert "Bolt Hardware" in text and "Ref. CHK-500" in text
    assert "Cheque · recorded by staff" in text and "Card · online" in text
    assert "Unapplied credit $30.00" in text  # the cheque's 130.00 paid 100.00
    assert accessibility_problems(response) == []


def test_the_list_filters(
    clock: time_machine.Traveller,
    manager_client: Client,
    customer: Customer,
    customer_2: Customer,
    invoices: list[Invoice],
) -> None:
    issue_invoice(customer_2, "INV-9", "60.00")
    cheque = record_payment(customer, "100.00", reference="CHK-1")  # pays INV-1: no credit
    wire = record_payment(customer_2, "75.00", method=Payment.Method.WIRE, reference="W-77")  # 15.00 credit
    card = paid_by_card(customer, [invoices[1]])
    with scope(organization=customer.organization):
        payment_refund(payment=card, amount=dec("5.00"), reason="Late", actor=None)
    pending = online(customer, [issue_invoice(customer, "INV-4", "10.00")], method="ach")
    with scope(organization=customer.organization):
        bank_outcome(pending, BANK_SETTLES)

    assert listed(manager_client, "?state=processing") == [pending.pk]
    assert listed(manager_client, "?state=partly_refunded") == [card.pk]
    assert set(listed(manager_client, "?state=succeeded")) == {cheque.pk, wire.pk}
    assert listed(manager_client, "?method=wire") == [wire.pk]
    assert set(listed(manager_client, "?source=online")) == {card.pk, pending.pk}
    assert set(listed(manager_client, "?source=staff")) == {cheque.pk, wire.pk}
    assert listed(manager_client, "?q=w-77") == [wire.pk]
    assert listed(manager_client, "?q=Anvil") == [wire.pk]
    assert set(listed(manager_client, "?q=C-1001")) == {cheque.pk, card.pk, pending.pk}
    assert listed(manager_client, "?credit=on") == [wire.pk]
    assert listed(manager_client, "?credit=on&source=online") == []
    assert set(listed(manager_client, "?state=nonsense&method=bitcoin")) == {  # not applied
        cheque.pk,
        wire.pk,
        card.pk,
        pending.pk,
    }


def test_the_total_of_unapplied_credit_and_its_filter(
    manager_client: Client, customer: Customer, customer_2: Customer, invoices: list[Invoice]
) -> None:
    first = record_payment(customer, "180.00")  # 150.00 open: 30.00 credit
    second = record_payment(customer_2, "20.50")  # nothing open: all of it
    record_payment(customer_2, "0.01", method=Payment.Method.CASH)  # a cent is credit too
    applied = record_payment(customer, "1.00")  # nothing open any more: 1.00 credit
    with scope(organization=customer.organization):
        payment_refund(payment=current(applied), amount=dec("1.00"), reason="Sent back", actor=None)

    response = manager_client.get(LIST)

    text = text_of(response.content)
    assert "Unapplied credit $50.51 on 3 payments" in text
    holding = listed(manager_client, "?credit=on")
    assert len(holding) == 3 and {first.pk, second.pk} < set(holding)
    assert applied.pk not in holding  # refunded in full: no credit


def test_the_list_has_pages_of_50(manager_client: Client, customer: Customer) -> None:
    start = datetime.datetime(2025, 1, 1, 12, tzinfo=UTC)
    made = [
        record_payment(customer, "1.00", received_at=start + datetime.timedelta(hours=n)) for n in range(51)
    ]
    assert listed(manager_client) == [p.pk for p in reversed(made)][:50]
    assert listed(manager_client, "?page=2") == [made[0].pk]
    assert "Page 1 of 2 · 51 in all" in text_of(manager_client.get(LIST).content)


def test_the_credit_the_list_computes_is_the_services_own(
    customer: Customer, customer_2: Customer, invoices: list[Invoice], supplier: Organization
) -> None:
    """``with_credit`` (SQL, for lists and the export) against ``online.unapplied``: fees,
    refunds of credit and of invoices, returns, payments not settled."""
    with scope(organization=supplier):
        PaymentSettings.objects.update_or_create(
            organization=supplier, defaults={"fees": {"card": {"fixed": "1.50"}}}
        )
    over = record_payment(customer, "170.00")
    with scope(organization=supplier):
        payment_refund(payment=current(over), amount=dec("5.00"), reason="x", actor=None)
    more = issue_invoice(customer, "INV-5", "40.00")
    card = paid_by_card(customer, [more])  # 41.50 with the fee
    with scope(organization=supplier):
        payment_refund(payment=card, amount=dec("10.00"), reason="y", actor=None)
    nothing_open = record_payment(customer_2, "33.33")
    bank = online(customer, [issue_invoice(customer, "INV-6", "12.00")], method="ach")
    returned = online(customer, [issue_invoice(customer, "INV-7", "15.00")], method="ach")
    with scope(organization=supplier):
        bank_outcome(returned, BANK_RETURNED)
    assert deliver_due(timezone.now() + datetime.timedelta(days=6)) == 2  # settled, then returned
    assert current(returned).state == "returned"
    made = [over, card, nothing_open, bank, returned]

    with scope(organization=supplier):
        annotated = {
            p.pk: credit_of(p) for p in with_credit(Payment.objects.filter(pk__in=[m.pk for m in made]))
        }
        expected = {p.pk: unapplied(current(p)) for p in made}
    assert annotated == expected
    assert expected == {
        over.pk: dec("15.00"),
        card.pk: Decimal(0),
        nothing_open.pk: dec("33.33"),
        bank.pk: Decimal(0),
        returned.pk: Decimal(0),
    }


# --- one payment --------------------------------------------------------------------------------


def test_a_payment_shows_its_targets_allocations_events_and_refunds(
    clock: time_machine.Traveller, manager_client: Client, customer: Customer, invoices: list[Invoice]
) -> None:
    bank = online(customer, invoices, method="ach")
    with scope(organization=customer.organization):
        bank_outcome(bank, BANK_SETTLES)
    assert "Bank payment in progress" in text_of(manager_client.get(url(bank)).content)
    assert deliver_due(NOON_ON_TODAY + datetime.timedelta(days=3, minutes=1)) == 1
    with scope(organization=customer.organization):
        payment_refund(payment=current(bank), amount=dec("30.00"), reason="Short shipment", actor=None)

    response = manager_client.get(url(bank))

    assert response.status_code == 200
    text = text_of(response.content)
    assert "Payment of $150.00 Partly refunded" in text
    assert "still has open. INV-1 $100.00 INV-2 $50.00 What it paid" in text  # the targets
    # INV-2's 50.00 gave back 30.00: the allocation is struck through with when, 20.00 stays.
    html = response.content.decode()
    assert re.search(
        r"<del><span class=\"visually-hidden\">Reversed: </span>INV-2 · applied [^<]*</del>", html
    )
    assert "reversed 30 Jun 2025" in text
    assert re.search(r"INV-2</a> <span class=\"muted small\">applied", html)
    assert "$20.00" in text and "Applied to invoices $120.00" in text
    assert "Provider sandbox" in text and bank.provider_payment_id in text
    assert "payment.processing · processing" in text and "payment.succeeded · succeeded" in text
    assert text.count("processed") >= 2
    assert "$30.00 Succeeded Short shipment" in text
    assert "Refund this payment" not in text  # a manager sees, but does not act
    assert accessibility_problems(response) == []


def test_a_collector_sees_the_refund_form_with_the_full_amount(
    collector_client: Client, customer: Customer, invoices: list[Invoice]
) -> None:
    payment = record_payment(customer, "180.00")

    response = collector_client.get(url(payment))

    html = response.content.decode()
    assert 'name="refund-amount" value="180.00"' in html
    assert "Apply the unapplied credit" in text_of(html)  # 30.00, but nothing open to take it
    assert "has no open invoice in USD" in text_of(html)
    assert accessibility_problems(response) == []


# --- refunds ------------------------------------------------------------------------------------


def test_a_refund_from_the_desk_reopens_the_right_invoices(
    collector_client: Client, users: Users, customer: Customer, invoices: list[Invoice]
) -> None:
    """180.00 paid INV-1 (100.00) and INV-2 (50.00), 30.00 is credit. A refund of 40.00 gives
    the credit back first, then 10.00 of the latest allocation: INV-2 owes 10.00 again."""
    payment = record_payment(customer, "180.00", reference="CHK-180")
    assert credit(payment) == dec("30.00")

    response = collector_client.post(
        url(payment, "refund"), {"refund-amount": "40.00", "refund-reason": "Returned goods"}
    )

    assert response.status_code == 302 and response["Location"] == url(payment)
    after = current(payment)
    assert (after.state, after.refunded_amount) == ("succeeded", dec("40.00"))
    assert [fresh(i).open_amount for i in invoices] == [Decimal(0), dec("10.00")]
    assert credit(payment) == 0
    assert active_allocations(payment) == [("INV-1", dec("100.00")), ("INV-2", dec("40.00"))]
    with scopes_disabled():
        refund = Refund.objects.get(payment=payment)
    assert (refund.amount, refund.state, refund.reason, refund.created_by) == (
        dec("40.00"),
        "succeeded",
        "Returned goods",
        users.collector,
    )
    assert "Refunded $40.00." in text_of(collector_client.get(url(payment)).content)
    assert_ledger_clean()

    # The rest, by default the full amount the form offers: every invoice is due again.
    page = collector_client.get(url(payment)).content.decode()
    assert 'name="refund-amount" value="140.00"' in page
    collector_client.post(url(payment, "refund"), {"refund-amount": "140.00", "refund-reason": "All of it"})
    after = current(payment)
    assert (after.state, after.refunded_amount) == ("refunded", dec("180.00"))
    assert [fresh(i).open_amount for i in invoices] == [dec("100.00"), dec("50.00")]
    assert_ledger_clean()


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        ("180.01", "Refund at most $180.00."),
        ("1000", "Refund at most $180.00."),
        ("0", "Enter an amount above zero."),
        ("-5", "Enter the amount without a minus sign."),
        ("12,50", "Use a point before the decimals, and commas only between thousands, like 1,234.50."),
        ("1e2", "Enter the amount in digits, like 1,234.50."),
        ("10.005", "Enter at most 2 decimals for USD."),
        ("€10", "Enter the amount in USD."),
        ("", "This field is required."),
    ],
)
def test_a_refund_above_what_is_refundable_or_malformed_is_refused(
    collector_client: Client, customer: Customer, invoices: list[Invoice], amount: str, error: str
) -> None:
    payment = record_payment(customer, "180.00")
    before = row_counts()

    response = collector_client.post(url(payment, "refund"), {"refund-amount": amount, "refund-reason": "x"})

    assert response.status_code == 400
    assert field_error(response, "id_refund-amount") == error
    assert 'aria-invalid="true"' in response.content.decode()
    assert row_counts() == before and refund_count() == 0
    assert current(payment).refunded_amount == 0
    assert [fresh(i).open_amount for i in invoices] == [Decimal(0), Decimal(0)]


def test_a_refund_needs_a_reason_and_a_settled_payment(
    collector_client: Client, customer: Customer, invoices: list[Invoice]
) -> None:
    payment = record_payment(customer, "50.00")
    no_reason = collector_client.post(
        url(payment, "refund"), {"refund-amount": "10.00", "refund-reason": " "}
    )
    assert no_reason.status_code == 400
    assert field_error(no_reason, "id_refund-reason") == "This field is required."

    bank = online(customer, [invoices[1]], method="ach")
    refused = collector_client.post(url(bank, "refund"), {"refund-amount": "10.00", "refund-reason": "x"})
    assert refused.status_code == 400
    assert "Only a payment that went through can be refunded." in text_of(refused.content)
    assert refund_count() == 0


def test_a_refund_still_pending_at_the_provider_counts_against_the_next(
    collector_client: Client, customer: Customer, invoices: list[Invoice], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider has not confirmed the first refund yet: a second one may ask only for
    what is left, else the customer could get back more than was paid."""
    from openar.payments.providers import base
    from openar.payments.providers.sandbox import SandboxProvider

    card = paid_by_card(customer, invoices)
    monkeypatch.setattr(
        SandboxProvider,
        "refund",
        lambda self, request, credentials: base.RefundResult(
            provider_refund_id=f"sbr_{uuid.uuid4().hex}", succeeded=False
        ),
    )
    first = collector_client.post(
        url(card, "refund"), {"refund-amount": "100.00", "refund-reason": "Cancelled"}
    )
    assert first.status_code == 302
    assert current(card).refunded_amount == 0  # pending until the provider's event

    second = collector_client.post(url(card, "refund"), {"refund-amount": "100.00", "refund-reason": "Again"})

    assert second.status_code == 400
    assert (
        field_error(second, "id_refund-amount") == "Refund at most $50.00: $100.00 is already being refunded."
    )
    assert refund_count() == 1
    assert "$100.00 pending" in text_of(collector_client.get(url(card)).content)


def test_a_refund_the_provider_never_got_is_sent_again_from_the_desk(
    collector_client: Client, customer: Customer, invoices: list[Invoice], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call to the provider failed: the refund stays pending without the provider's id.
    The page offers to send that refund again; it goes with the same idempotency key (the
    first call may have reached the provider) and makes no second refund row, although the
    refundable amount, which counts it as pending, is below it."""
    from openar.payments.providers import base
    from openar.payments.providers.sandbox import SandboxProvider

    card = paid_by_card(customer, invoices)  # 150.00
    keys: list[str] = []

    def refund(self: SandboxProvider, request: base.RefundRequest, credentials: object) -> base.RefundResult:
        keys.append(request.idempotency_key)
        if len(keys) == 1:
            raise base.ProviderUnavailable("The sandbox is down.")
        return base.RefundResult(provider_refund_id=f"sbr_{request.idempotency_key[:8]}", succeeded=True)

    monkeypatch.setattr(SandboxProvider, "refund", refund)
    failed = collector_client.post(
        url(card, "refund"), {"refund-amount": "100.00", "refund-reason": "Cancelled order"}
    )
    assert failed.status_code == 502
    assert "The sandbox is down." in text_of(failed.content)
    with scopes_disabled():
        (unsent,) = Refund.objects.filter(payment=card)
    assert (unsent.state, unsent.provider_refund_id, current(card).refunded_amount) == ("pending", "", 0)

    page = collector_client.get(url(card))
    html = page.content.decode()
    assert "A refund of $100.00 could not be sent to sandbox: send it again." in text_of(html)
    assert 'name="refund-amount" value="100.00"' in html
    assert 'name="refund-reason" value="Cancelled order"' in html
    assert "Refund this payment" not in text_of(html)  # no other refund meanwhile
    assert accessibility_problems(page) == []
    retry = {
        "refund-amount": "100.00",
        "refund-reason": "Cancelled order",
        "refund-once": once_token(collector_client, url(card), "refund-once"),
    }

    # Another amount is refused by the service, next to the amount: that one first.
    other = collector_client.post(
        url(card, "refund"), {"refund-amount": "20.00", "refund-reason": "Something else"}
    )
    assert other.status_code == 400
    assert field_error(other, "id_refund-amount") == (
        "A refund of $100.00 could not be sent yet: send that one again first."
    )

    again = collector_client.post(url(card, "refund"), retry)

    assert again.status_code == 302 and again["Location"] == url(card)
    assert "Refunded $100.00." in text_of(collector_client.get(url(card)).content)
    assert keys == [str(unsent.idempotency_key)] * 2
    with scopes_disabled():
        (refund,) = Refund.objects.filter(payment=card)
    assert (refund.pk, refund.state, refund.amount) == (unsent.pk, "succeeded", dec("100.00"))
    after = current(card)
    assert (after.state, after.refunded_amount) == ("succeeded", dec("100.00"))
    assert [fresh(i).open_amount for i in invoices] == [dec("50.00"), dec("50.00")]
    assert "could not be sent" not in text_of(collector_client.get(url(card)).content)
    assert_ledger_clean()


# --- applying credit ----------------------------------------------------------------------------


def test_credit_from_an_overpayment_is_applied_to_other_invoices(
    collector_client: Client, customer: Customer
) -> None:
    first = issue_invoice(customer, "INV-1", "100.00", due_date=TODAY - datetime.timedelta(days=30))
    payment = record_payment(customer, "150.00")  # 50.00 over
    later = [issue_invoice(customer, "INV-2", "40.00"), issue_invoice(customer, "INV-3", "30.00")]
    page = collector_client.get(url(payment))
    assert 'name="apply-invoice_' in page.content.decode()
    assert accessibility_problems(page) == []

    response = collector_client.post(
        url(payment, "apply-credit"),
        {f"apply-invoice_{later[0].pk}": "40.00", f"apply-invoice_{later[1].pk}": "10", "apply-other": ""},
    )

    assert response.status_code == 302
    assert fresh(first).open_amount == 0
    assert [fresh(i).open_amount for i in later] == [Decimal(0), dec("20.00")]
    assert credit(payment) == 0
    assert active_allocations(payment) == [
        ("INV-1", dec("100.00")),
        ("INV-2", dec("40.00")),
        ("INV-3", dec("10.00")),
    ]
    assert "Applied to INV-2 ($40.00), INV-3 ($10.00)." in text_of(collector_client.get(url(payment)).content)
    assert_ledger_clean()


def test_applying_more_than_the_credit_or_the_invoice_is_refused(
    collector_client: Client, customer: Customer
) -> None:
    issue_invoice(customer, "INV-1", "100.00", due_date=TODAY - datetime.timedelta(days=30))
    payment = record_payment(customer, "150.00")
    big = issue_invoice(customer, "INV-2", "80.00")
    small = issue_invoice(customer, "INV-3", "30.00")
    before = row_counts()

    too_much = collector_client.post(
        url(payment, "apply-credit"),
        {f"apply-invoice_{big.pk}": "45.00", f"apply-invoice_{small.pk}": "10.00"},
    )
    over_invoice = collector_client.post(url(payment, "apply-credit"), {f"apply-invoice_{small.pk}": "30.01"})
    nothing = collector_client.post(url(payment, "apply-credit"), {f"apply-invoice_{small.pk}": ""})

    assert too_much.status_code == 400
    assert "Only $50.00 of this payment is unapplied." in text_of(too_much.content)
    assert over_invoice.status_code == 400
    assert field_error(over_invoice, f"id_apply-invoice_{small.pk}") == "Invoice INV-3 has $30.00 open."
    assert nothing.status_code == 400
    assert "Enter an amount for at least one invoice." in text_of(nothing.content)
    assert row_counts() == before
    assert [fresh(big).open_amount, fresh(small).open_amount] == [dec("80.00"), dec("30.00")]


def test_an_amount_for_an_invoice_paid_meanwhile_is_not_dropped_silently(
    collector_client: Client, customer: Customer
) -> None:
    issue_invoice(customer, "INV-1", "100.00", due_date=TODAY - datetime.timedelta(days=30))
    payment = record_payment(customer, "150.00")
    later = issue_invoice(customer, "INV-2", "40.00")
    record_payment(customer, "40.00", allocations=[(later, "40.00")])  # paid after the form was shown

    response = collector_client.post(url(payment, "apply-credit"), {f"apply-invoice_{later.pk}": "40.00"})

    assert response.status_code == 400
    assert field_error(response, f"id_apply-invoice_{later.pk}") == "Invoice INV-2 has $0.00 open."
    assert credit(payment) == dec("50.00")


# --- recording a payment ------------------------------------------------------------------------


def test_a_cheque_recorded_oldest_first(
    clock: time_machine.Traveller,
    collector_client: Client,
    users: Users,
    customer: Customer,
    invoices: list[Invoice],
) -> None:
    page = collector_client.get(record_url(customer))
    assert page.status_code == 200
    assert accessibility_problems(page) == []
    assert (
        f'href="{record_url(customer)}"'
        in collector_client.get(f"/desk/customers/{customer.pk}/").content.decode()
    )

    response = collector_client.post(
        record_url(customer),
        {
            "amount": "120.00",
            "method": "check",
            "received_on": "2025-06-27",
            "reference": " CHK-4471 ",
            "apply": "oldest",
        },
    )

    assert response.status_code == 302
    with scopes_disabled():
        payment = Payment.objects.get(reference="CHK-4471")
    assert response["Location"] == url(payment)
    assert (payment.amount, payment.method, payment.state, payment.provider) == (
        dec("120.00"),
        "check",
        "succeeded",
        "",
    )
    assert payment.recorded_by == users.collector
    assert payment.received_at == datetime.datetime(2025, 6, 27, 12, tzinfo=TORONTO)
    assert active_allocations(payment) == [("INV-1", dec("100.00")), ("INV-2", dec("20.00"))]
    assert [fresh(i).open_amount for i in invoices] == [Decimal(0), dec("30.00")]
    message = text_of(collector_client.get(url(payment)).content)
    assert "Recorded the cheque of $120.00, applied to INV-1 ($100.00), INV-2 ($20.00)." in message
    assert_ledger_clean()


def test_a_cheque_recorded_with_amounts_per_invoice(
    clock: time_machine.Traveller, collector_client: Client, customer: Customer, invoices: list[Invoice]
) -> None:
    response = collector_client.post(
        record_url(customer),
        {
            "amount": "100.00",
            "method": "eft",
            "received_on": TODAY.isoformat(),
            "reference": "LBX-9",
            "apply": "invoices",
            f"invoice_{invoices[1].pk}": "50.00",
            f"invoice_{invoices[0].pk}": "25",
        },
    )

    assert response.status_code == 302
    with scopes_disabled():
        payment = Payment.objects.get(reference="LBX-9")
    assert payment.received_at == NOON_ON_TODAY  # today: the moment it was recorded
    assert sorted(active_allocations(payment)) == [("INV-1", dec("25.00")), ("INV-2", dec("50.00"))]
    assert [fresh(i).open_amount for i in invoices] == [dec("75.00"), Decimal(0)]
    assert credit(payment) == dec("25.00")
    assert "$25.00 is kept as unapplied credit." in text_of(collector_client.get(url(payment)).content)
    assert_ledger_clean()


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"amount": ""}, "id_amount", "This field is required."),
        ({"amount": "0.00"}, "id_amount", "Enter an amount above zero."),
        (
            {"amount": "1.000,00"},
            "id_amount",
            "Use a point before the decimals, and commas only between thousands, like 1,234.50.",
        ),
        ({"received_on": "2025-07-01"}, "id_received_on", "A payment cannot be received in the future."),
        ({"received_on": "yesterday"}, "id_received_on", "Enter a valid date."),
        ({"method": "card"}, "id_method", "Select a valid choice. card is not one of the available choices."),
        (
            {"apply": "invoices"},
            "id_apply",
            "Enter an amount for at least one invoice, or apply it oldest first.",
        ),
        (
            {"apply": "oldest", "invoice_1": "10.00"},
            "id_apply",
            "You entered amounts for invoices: choose “The amounts I enter for each invoice”.",
        ),
        ({"apply": "invoices", "invoice_1": "100.01"}, "id_invoice_1", "Invoice INV-1 has $100.00 open."),
        (
            {"amount": "60.00", "apply": "invoices", "invoice_1": "40.00", "invoice_2": "30.00"},
            "id_apply",
            "The amounts for the invoices add up to $70.00, more than the $60.00 received.",
        ),
    ],
)
def test_recording_refuses_what_is_wrong_next_to_the_field(
    clock: time_machine.Traveller,
    collector_client: Client,
    customer: Customer,
    invoices: list[Invoice],
    data: dict[str, str],
    field: str,
    error: str,
) -> None:
    ids = {"invoice_1": f"invoice_{invoices[0].pk}", "invoice_2": f"invoice_{invoices[1].pk}"}
    posted = {
        "amount": "100.00",
        "method": "check",
        "received_on": "2025-06-30",
        "reference": "",
        "apply": "oldest",
    }
    posted |= {ids.get(key, key): value for key, value in data.items()}
    before = row_counts()

    response = collector_client.post(record_url(customer), posted)

    assert response.status_code == 400
    wanted = field.replace("invoice_1", ids["invoice_1"])
    if wanted == "id_apply":
        assert error in text_of(response.content)
    else:
        assert field_error(response, wanted) == error
    assert row_counts() == before


def test_the_same_cheque_twice_asks_before_it_is_recorded_again(
    clock: time_machine.Traveller, collector_client: Client, customer: Customer, invoices: list[Invoice]
) -> None:
    posted = {
        "amount": "70.00",
        "method": "check",
        "received_on": "2025-06-30",
        "reference": "CHK-1",
        "apply": "oldest",
    }
    assert collector_client.post(record_url(customer), posted).status_code == 302
    before = row_counts()

    again = collector_client.post(record_url(customer), posted)

    assert again.status_code == 400
    assert "A cheque of $70.00 received that day is already recorded with reference CHK-1." in text_of(
        again.content
    )
    assert 'name="again"' in again.content.decode()
    assert row_counts() == before
    assert collector_client.post(record_url(customer), posted | {"again": "on"}).status_code == 302
    with scopes_disabled():
        assert Payment.objects.filter(reference="CHK-1").count() == 2
    assert_ledger_clean()


# --- forms sent twice ---------------------------------------------------------------------------


def once_token(client: Client, path: str, name: str) -> str:
    """The one-time token of the form ``name`` on the page at ``path``."""
    found = re.search(rf'name="{name}" value="([0-9a-f]{{32}})"', client.get(path).content.decode())
    assert found, f"no {name} on {path}"
    return found.group(1)


def test_a_form_sent_twice_moves_money_once(
    clock: time_machine.Traveller, collector_client: Client, customer: Customer
) -> None:
    """A double click, or a page sent again from the browser's history: the second request
    finds the form's token taken, changes nothing and shows what the first did."""
    issue_invoice(customer, "INV-1", "100.00", due_date=TODAY - datetime.timedelta(days=30))
    payment = record_payment(customer, "150.00")  # 50.00 of credit
    later = issue_invoice(customer, "INV-2", "40.00")
    refund = {
        "refund-amount": "5.00",
        "refund-reason": "x",
        "refund-once": once_token(collector_client, url(payment), "refund-once"),
    }
    apply = {
        f"apply-invoice_{later.pk}": "10.00",
        "apply-once": once_token(collector_client, url(payment), "apply-once"),
    }
    record = {
        "amount": "7.00",
        "method": "cash",
        "received_on": "2025-06-30",
        "reference": "",
        "apply": "oldest",
        "again": "on",  # not the duplicate check: the token alone
        "once": once_token(collector_client, record_url(customer), "once"),
    }

    for data, path in (
        (refund, url(payment, "refund")),
        (apply, url(payment, "apply-credit")),
        (record, record_url(customer)),
    ):
        first = collector_client.post(path, data)
        before = row_counts()
        again = collector_client.post(path, data, follow=True)
        assert first.status_code == 302 and again.status_code == 200, path
        assert "That form was already sent (twice clicked?)" in text_of(again.content)
        assert row_counts() == before, path

    assert (current(payment).refunded_amount, refund_count()) == (dec("5.00"), 1)
    assert fresh(later).open_amount == dec("23.00")  # 10.00 of credit, then the cash, once each
    with scopes_disabled():
        assert Payment.objects.filter(amount=dec("7.00")).count() == 1
    assert_ledger_clean()


def test_a_refused_form_can_be_corrected_and_sent_again(collector_client: Client, customer: Customer) -> None:
    """The token is taken only for a change that happens: refused by the form or by the
    service (which then changed nothing), the same form, corrected, goes through."""
    issue_invoice(customer, "INV-1", "100.00", due_date=TODAY - datetime.timedelta(days=30))
    payment = record_payment(customer, "150.00")
    later = issue_invoice(customer, "INV-2", "80.00")
    token = once_token(collector_client, url(payment), "apply-once")

    refused = collector_client.post(
        url(payment, "apply-credit"), {f"apply-invoice_{later.pk}": "60.00", "apply-once": token}
    )
    assert refused.status_code == 400
    assert "Only $50.00 of this payment is unapplied." in text_of(refused.content)
    assert f'value="{token}"' in refused.content.decode()  # the page keeps the form's token

    done = collector_client.post(
        url(payment, "apply-credit"), {f"apply-invoice_{later.pk}": "50.00", "apply-once": token}
    )
    assert done.status_code == 302
    assert fresh(later).open_amount == dec("30.00")


# --- the export ---------------------------------------------------------------------------------


def test_the_export_has_one_row_per_application_of_money(
    clock: time_machine.Traveller, manager_client: Client, customer: Customer, invoices: list[Invoice]
) -> None:
    two = record_payment(
        customer,
        "180.00",
        reference="CHK-2",
        received_at=datetime.datetime(2025, 6, 2, 14, 30, tzinfo=UTC),
    )  # INV-1 100.00, INV-2 50.00, 30.00 credit
    with scope(organization=customer.organization):
        payment_refund(payment=current(two), amount=dec("40.00"), reason="Part", actor=None)
    bank = online(customer, [fresh(invoices[1])], method="ach")  # INV-2 owes 10.00 again

    rows = csv_rows(manager_client.get(EXPORT))

    assert rows[0] == list(EXPORT_COLUMNS)
    assert rows[0] == [
        "payment_id",
        "received_at_utc",
        "settled_at_utc",
        "customer_number",
        "customer_name",
        "amount",
        "fee",
        "refunded",
        "currency",
        "method",
        "state",
        "reference",
        "provider",
        "provider_payment_id",
        "invoice_number",
        "applied_amount",
        "applied_at_utc",
        "reversed_at_utc",
    ]
    found = as_dicts(rows)
    head = {
        "payment_id": str(two.pk),
        "received_at_utc": "2025-06-02T14:30:00+00:00",
        "settled_at_utc": "",
        "customer_number": "C-1001",
        "customer_name": "Bolt Hardware",
        "amount": "180.00",
        "fee": "0.00",
        "refunded": "40.00",
        "currency": "USD",
        "method": "check",
        "state": "succeeded",
        "reference": "CHK-2",
        "provider": "",
        "provider_payment_id": "",
    }
    noon = "2025-06-30T16:00:00+00:00"  # the clock: noon in Toronto
    # 30.00 of credit went back first, then 10.00 of INV-2: its allocation of 50.00 is
    # reversed and one of 40.00 stays. No credit is left: no UNAPPLIED row.
    assert found[:3] == [
        head
        | {
            "invoice_number": "INV-1",
            "applied_amount": "100.00",
            "applied_at_utc": noon,
            "reversed_at_utc": "",
        },
        head
        | {
            "invoice_number": "INV-2",
            "applied_amount": "50.00",
            "applied_at_utc": noon,
            "reversed_at_utc": noon,
        },
        head
        | {
            "invoice_number": "INV-2",
            "applied_amount": "40.00",
            "applied_at_utc": noon,
            "reversed_at_utc": "",
        },
    ]
    # The pending bank payment: one row, its invoice columns empty.
    assert found[3] == {
        "payment_id": str(bank.pk),
        "received_at_utc": noon,
        "settled_at_utc": "",
        "customer_number": "C-1001",
        "customer_name": "Bolt Hardware",
        "amount": "10.00",
        "fee": "0.00",
        "refunded": "0.00",
        "currency": "USD",
        "method": "ach",
        "state": "pending",
        "reference": "",
        "provider": "sandbox",
        "provider_payment_id": bank.provider_payment_id,
        "invoice_number": "",
        "applied_amount": "",
        "applied_at_utc": "",
        "reversed_at_utc": "",
    }
    assert len(found) == 4


def test_the_export_shows_unapplied_credit_fees_and_settlement(
    clock: time_machine.Traveller,
    manager_client: Client,
    customer: Customer,
    customer_2: Customer,
    invoices: list[Invoice],
    supplier: Organization,
) -> None:
    with scope(organization=supplier):
        PaymentSettings.objects.update_or_create(
            organization=supplier, defaults={"fees": {"card": {"fixed": "1.50"}}}
        )
    over = record_payment(customer, "100.25", allocations=[(invoices[0], "60.00")])  # 40.25 credit
    card = paid_by_card(customer, [invoices[1]])
    untouched = record_payment(customer_2, "12.00", method=Payment.Method.CASH)  # nothing open: all credit

    found = as_dicts(csv_rows(manager_client.get(EXPORT)))

    by_payment = {
        pk: [row for row in found if row["payment_id"] == str(pk)] for pk in (over.pk, card.pk, untouched.pk)
    }
    assert [(r["invoice_number"], r["applied_amount"]) for r in by_payment[over.pk]] == [
        ("INV-1", "60.00"),
        ("UNAPPLIED", "40.25"),
    ]
    (card_row,) = by_payment[card.pk]
    assert (card_row["amount"], card_row["fee"], card_row["invoice_number"], card_row["applied_amount"]) == (
        "51.50",
        "1.50",
        "INV-2",
        "50.00",
    )
    assert card_row["settled_at_utc"] == "2025-06-30T16:00:00+00:00"
    assert (card_row["provider"], card_row["provider_payment_id"]) == ("sandbox", card.provider_payment_id)
    assert [(r["invoice_number"], r["applied_amount"], r["method"]) for r in by_payment[untouched.pk]] == [
        ("UNAPPLIED", "12.00", "cash")
    ]
    assert [row["payment_id"] for row in found] == sorted((row["payment_id"] for row in found), key=int)


def test_the_export_since_a_day(manager_client: Client, customer: Customer) -> None:
    old = record_payment(customer, "1.00", received_at=datetime.datetime(2025, 5, 31, 23, 59, 59, tzinfo=UTC))
    new = record_payment(customer, "2.00", received_at=datetime.datetime(2025, 6, 1, 0, 0, tzinfo=UTC))

    since = as_dicts(csv_rows(manager_client.get(EXPORT + "?since=2025-06-01")))
    everything = as_dicts(csv_rows(manager_client.get(EXPORT)))

    assert [row["payment_id"] for row in since] == [str(new.pk)]
    assert [row["payment_id"] for row in everything] == [str(old.pk), str(new.pk)]
    for bad in ("2025-6-1", "20250601", "yesterday", "2025-02-30"):
        response = manager_client.get(EXPORT, {"since": bad})
        assert response.status_code == 400, bad
        assert response.content == b"since must be a date written YYYY-MM-DD.\n"


def test_the_export_guards_text_cells_against_formulas(manager_client: Client, creditor: Creditor) -> None:
    hostile = make_customer(creditor, "=1+2", name='=HYPERLINK("http://evil.example","Pay")')
    payment = record_payment(hostile, "10.00", reference="@SUM(A1:A9)")
    invoice = issue_invoice(hostile, "+INV-1", "4.00")
    with scope(organization=hostile.organization):
        from openar.payments.online import credit_apply

        credit_apply(payment=current(payment), plan=[(invoice, dec("4.00"))], actor=None)

    found = as_dicts(csv_rows(manager_client.get(EXPORT)))

    assert [
        (r["customer_number"], r["customer_name"], r["reference"], r["invoice_number"]) for r in found
    ] == [
        ("'=1+2", '\'=HYPERLINK("http://evil.example","Pay")', "'@SUM(A1:A9)", "'+INV-1"),
        ("'=1+2", '\'=HYPERLINK("http://evil.example","Pay")', "'@SUM(A1:A9)", "UNAPPLIED"),
    ]
    assert [r["applied_amount"] for r in found] == ["4.00", "6.00"]  # amounts are numbers, not text


def test_the_export_in_a_currency_without_cents(manager_client: Client, creditor: Creditor) -> None:
    yen = make_customer(creditor, "JP-1", name="Tanaka KK", currency="JPY")
    issue_invoice(yen, "JP-INV-1", "1000", currency="JPY")
    record_payment(yen, "1500")

    found = as_dicts(csv_rows(manager_client.get(EXPORT)))

    assert [(r["amount"], r["invoice_number"], r["applied_amount"]) for r in found] == [
        ("1500", "JP-INV-1", "1000"),
        ("1500", "UNAPPLIED", "500"),
    ]


# --- who may do what ----------------------------------------------------------------------------


def test_a_manager_sees_payments_but_cannot_refund_record_or_apply(
    manager_client: Client, customer: Customer, invoices: list[Invoice]
) -> None:
    issue_invoice(customer, "INV-3", "10.00")
    payment = record_payment(customer, "200.00", allocations=[(invoices[0], "100.00")])
    before = row_counts()

    assert manager_client.get(LIST).status_code == 200
    assert manager_client.get(url(payment)).status_code == 200
    assert manager_client.get(EXPORT).status_code == 200
    attempts = [
        manager_client.post(url(payment, "refund"), {"refund-amount": "10.00", "refund-reason": "x"}),
        manager_client.post(url(payment, "apply-credit"), {f"apply-invoice_{invoices[1].pk}": "10.00"}),
        manager_client.get(record_url(customer)),
        manager_client.post(
            record_url(customer),
            {
                "amount": "5.00",
                "method": "cash",
                "received_on": "2025-06-01",
                "reference": "",
                "apply": "oldest",
            },
        ),
    ]

    assert [response.status_code for response in attempts] == [403, 403, 403, 403]
    assert row_counts() == before and refund_count() == 0
    page = text_of(manager_client.get(url(payment)).content)
    assert "Refund this payment" not in page and "Apply credit" not in page
    customer_page = manager_client.get(f"/desk/customers/{customer.pk}/").content.decode()
    assert record_url(customer) not in customer_page


def test_people_outside_the_desk_are_kept_out(
    users: Users, customer: Customer, invoices: list[Invoice]
) -> None:
    payment = record_payment(customer, "10.00")
    for user in (users.customer, users.creditor):
        client = signed_in(user)
        for path in (LIST, url(payment), EXPORT, record_url(customer)):
            assert client.get(path).status_code == 403, (user.email, path)
    assert Client().get(EXPORT).status_code == 302


def test_another_organizations_payment_is_not_found(
    users: Users,
    customer: Customer,
    other_customer: Customer,
    other_supplier: Organization,
    invoices: list[Invoice],
) -> None:
    theirs = record_payment(other_customer, "90.00", reference="ZETA-SECRET")
    mine = record_payment(customer, "10.00")
    client = signed_in(users.admin)
    before = row_counts()

    responses = [
        client.get(url(theirs)),
        client.post(url(theirs, "refund"), {"refund-amount": "90.00", "refund-reason": "x"}),
        client.post(url(theirs, "apply-credit"), {}),
        client.get(record_url(other_customer)),
        client.post(
            record_url(other_customer),
            {
                "amount": "5.00",
                "method": "cash",
                "received_on": "2025-06-01",
                "reference": "",
                "apply": "oldest",
            },
        ),
    ]

    assert [r.status_code for r in responses] == [404] * 5
    assert all(b"ZETA-SECRET" not in r.content for r in responses)
    assert listed(client) == [mine.pk]
    assert "ZETA-SECRET" not in text_of(client.get(LIST + "?q=ZETA").content)
    assert [row["payment_id"] for row in as_dicts(csv_rows(client.get(EXPORT)))] == [str(mine.pk)]
    assert row_counts() == before
    # Their own staff see it.
    theirs_admin = signed_in(make_member(other_supplier, Role.ADMIN, "admin@globex.example"))
    assert "ZETA-SECRET" in text_of(theirs_admin.get(url(theirs)).content)
