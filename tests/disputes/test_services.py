"""The dispute services end to end: opening (what is refused, and that a refusal writes
nothing), review, comments, partial acceptance with its credit note, rejection,
withdrawal, and every email sent (to the customer in the dispute's thread, to the
collector and to the reasons' people)."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
from django.core import mail
from django_scopes import scope, scopes_disabled

from factories import fresh, record_payment, row_counts
from openar.billing.models import CreditNote, Document
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.disputes.models import Dispute, DisputeAttachment, DisputeLine, DisputeReason
from openar.disputes.reasons import DEFAULT_REASONS, dispute_reason_save
from openar.disputes.services import (
    LineClaim,
    dispute_assign,
    dispute_comment,
    dispute_open,
    dispute_resolve,
    dispute_review_start,
    dispute_withdraw,
)
from openar.notifications.models import Message
from openar.tenants.models import Organization

from .conftest import Account, checked_png, customer_emails, open_dispute, reload

pytestmark = pytest.mark.django_db


def audit(dispute: Dispute) -> list[str]:
    with scopes_disabled():
        return list(
            AuditEvent.objects.filter(object_type="disputes.dispute", object_id=str(dispute.pk))
            .order_by("pk")
            .values_list("action", flat=True)
        )


def test_every_organization_has_the_default_reasons(
    supplier: Organization, other_supplier: Organization
) -> None:
    for organization in (supplier, other_supplier):
        with scope(organization=organization):
            codes = list(DisputeReason.objects.order_by("position").values_list("code", flat=True))
        assert codes == [reason.code for reason in DEFAULT_REASONS]


def test_a_partial_dispute_with_a_photo_notifies_everyone(
    account: Account, django_capture_on_commit_callbacks
) -> None:
    organization = account.customer.organization
    with scope(organization=organization):
        dispute_reason_save(
            organization=organization,
            reason=account.reasons["damaged"],
            label="Goods arrived damaged",
            sla_days=5,
            notify_emails="warehouse@acme.example, sales.rep@acme.example",
        )
    with django_capture_on_commit_callbacks(execute=True):
        dispute = open_dispute(account, (0, "damaged", "120.00"), (1, "price", "40.00"), files=1)
    dispute = reload(dispute)
    assert dispute.state == Dispute.State.OPEN
    assert dispute.disputed_total == Decimal("160.00")
    assert dispute.assigned_to_id == account.users.collector.pk
    assert dispute.due_at - dispute.created_at == datetime.timedelta(days=5)  # the strictest SLA
    with scopes_disabled():
        lines = list(DisputeLine.objects.filter(dispute=dispute).order_by("invoice_line__position"))
        assert [(line.amount, line.reason.code, line.is_open) for line in lines] == [
            (Decimal("120.00"), "damaged", True),
            (Decimal("40.00"), "price", True),
        ]
        attachment = DisputeAttachment.objects.get(dispute=dispute)
        document = Document.objects.get(pk=attachment.document_id)
        assert (document.kind, document.invoice_id, document.content_type, document.filename) == (
            "attachment",
            account.invoice.pk,
            "image/png",
            "photo-0.png",
        )
        opening = Message.objects.get(thread=dispute.thread, direction=Message.Direction.IN)
        assert "Pallet racking: $120.00 (Goods arrived damaged): comment 0" in opening.body_text
        assert list(opening.attachments.all()) == [document]
    # The invoice is untouched: only dunning pauses.
    assert fresh(account.invoice).open_amount == Decimal("400.00")
    # The customer is told, in the dispute's thread; staff and the reason's people by email.
    assert customer_emails(account.customer) == [("email", "We received your dispute on invoice INV-1")]
    with scopes_disabled():
        told = Message.objects.get(customer=account.customer, direction=Message.Direction.OUT)
    assert told.thread_id == dispute.thread_id and told.to_address == "dana@bolt.example"
    assert "the rest of the invoice ($240.00) can be paid" in told.body_text
    staff = [m for m in mail.outbox if m.subject.startswith("Dispute opened")]
    assert sorted(m.to[0] for m in staff) == [
        "collector@acme.example",
        "sales.rep@acme.example",
        "warehouse@acme.example",
    ]
    assert {m.subject for m in staff} == {"Dispute opened: Bolt Hardware, invoice INV-1, $160.00"}
    assert f"/desk/disputes/{dispute.pk}/" in staff[0].body
    # The customer's confirmation left by email too (the outbox sends it after the commit).
    assert [m.to for m in mail.outbox if m not in staff] == [["dana@bolt.example"]]
    assert audit(dispute) == ["openar.dispute.opened"]


def test_without_a_collector_the_organization_hears(
    account: Account, django_capture_on_commit_callbacks
) -> None:
    with scope(organization=account.customer.organization):
        account.customer.__class__.objects.filter(pk=account.customer.pk).update(assigned_collector=None)
    account.customer.assigned_collector = None
    account.invoice.customer = account.customer
    with django_capture_on_commit_callbacks(execute=True):
        dispute = open_dispute(account, (1, "quantity", "100.00"))
    assert reload(dispute).assigned_to_id is None
    assert [m.to for m in mail.outbox if m.subject.startswith("Dispute opened")] == [["ar@acme.example"]]


@pytest.mark.parametrize(
    ("claims", "field", "message"),
    [
        ([], "lines", "Choose at least one line to dispute."),
        ([(0, "price", "0")], "amount", "Enter an amount above zero for “Pallet racking”."),
        ([(0, "price", "300.01")], "amount", "“Pallet racking” can be disputed for at most $300.00."),
        (
            [(0, "price", "10.001")],
            "amount",
            "Enter the amount for “Pallet racking” in whole USD cents at most.",
        ),
        ([(0, "price", "10"), (0, "price", "10")], "lines", "The line “Pallet racking” is chosen twice."),
    ],
)
def test_bad_claims_are_refused_and_write_nothing(
    account: Account, claims: list[tuple[int, str, str]], field: str, message: str
) -> None:
    before = row_counts()
    with pytest.raises(ServiceError) as refused:
        open_dispute(account, *claims)
    assert refused.value.message == message
    assert (refused.value.field or "").startswith(field)
    assert row_counts() == before
    with scopes_disabled():
        assert not Dispute.objects.exists() and not Message.objects.exists()
    assert mail.outbox == []


def test_a_line_of_another_invoice_and_a_retired_reason_are_refused(account: Account) -> None:
    organization = account.customer.organization
    with scope(organization=organization):
        other_line = account.later.lines.get()
        with pytest.raises(ServiceError, match="not on this invoice"):
            dispute_open(
                invoice=account.invoice,
                lines=[LineClaim(other_line.pk, account.reasons["price"].pk, Decimal("5.00"))],
                contact=account.contact,
                actor=None,
            )
        DisputeReason.objects.filter(code="other").update(active=False)
        with pytest.raises(ServiceError, match="Choose a reason for “Assembly”"):
            dispute_open(
                invoice=account.invoice,
                lines=[LineClaim(account.lines[1].pk, account.reasons["other"].pk, Decimal("5.00"))],
                contact=account.contact,
                actor=None,
            )
        assert not Dispute.objects.exists()


def test_one_open_dispute_per_line_and_never_more_than_is_open(account: Account) -> None:
    open_dispute(account, (0, "price", "100.00"))
    with pytest.raises(ServiceError, match=re.escape("“Pallet racking” is already in an open dispute.")):
        open_dispute(account, (0, "quantity", "10.00"))
    # 400.00 open, 100.00 disputed: after a payment of 250.00, 50.00 is left to dispute.
    record_payment(account.customer, "250.00", allocations=[(account.invoice, "250.00")])
    with pytest.raises(ServiceError) as refused:
        open_dispute(account, (1, "price", "60.00"))
    assert refused.value.message == (
        "Invoice INV-1 has $50.00 open that is not disputed yet; the lines chosen add up to $60.00."
    )
    second = open_dispute(account, (1, "price", "50.00"))
    assert second.disputed_total == Decimal("50.00")
    with scopes_disabled():
        assert Dispute.objects.count() == 2


def test_the_same_form_twice_makes_one_dispute(account: Account) -> None:
    first = open_dispute(account, (0, "price", "10.00"), token="tok-123456789012345")
    again = open_dispute(account, (0, "price", "10.00"), token="tok-123456789012345")
    assert again.pk == first.pk
    with scopes_disabled():
        assert Dispute.objects.count() == 1


def test_review_comment_and_partial_acceptance_credit_the_accepted_amount(
    account: Account, django_capture_on_commit_callbacks
) -> None:
    dispute = open_dispute(account, (0, "damaged", "120.00"), (1, "price", "40.00"))
    organization = account.customer.organization
    collector = account.users.collector
    with django_capture_on_commit_callbacks(execute=True), scope(organization=organization):
        dispute_review_start(dispute=dispute, actor=collector)
        with pytest.raises(ServiceError, match="in review: it cannot be put in review"):
            dispute_review_start(dispute=dispute, actor=collector)
        reply = dispute_comment(
            dispute=dispute, body="Send us the delivery note, please.", actor=collector, by_staff=True
        )
        answer = dispute_comment(
            dispute=dispute,
            body="Here it is.",
            actor=account.users.customer,
            by_staff=False,
            contact=account.contact,
            attachments=[checked_png("delivery.png")],
        )
        rows = {line.invoice_line.position: line for line in DisputeLine.objects.filter(dispute=dispute)}
        with pytest.raises(ServiceError) as refused:
            dispute_resolve(
                dispute=dispute,
                accepted={rows[1].pk: Decimal("120.00"), rows[2].pk: Decimal("0")},
                rejection_reason="",
                actor=collector,
            )
        assert refused.value.field == "rejection_reason"
        with pytest.raises(ServiceError, match=re.escape("accept from 0 to $40.00")):
            dispute_resolve(
                dispute=dispute,
                accepted={rows[1].pk: Decimal("120.00"), rows[2].pk: Decimal("41.00")},
                rejection_reason="x",
                actor=collector,
            )
        assert not CreditNote.objects.exists()
        resolved = dispute_resolve(
            dispute=dispute,
            accepted={rows[1].pk: Decimal("120.00"), rows[2].pk: Decimal("0")},
            rejection_reason="The price is the one quoted on PO 4411.",
            actor=collector,
        )
    assert resolved.state == Dispute.State.RESOLVED
    assert resolved.outcome == Dispute.Outcome.PARTLY_ACCEPTED
    assert resolved.accepted_amount == Decimal("120.00")
    with scopes_disabled():
        note = CreditNote.objects.get()
        assert reload(dispute).credit_note_id == note.pk
        assert (note.number, note.amount, note.invoice_id) == (
            f"CN-D{dispute.pk:05d}",
            Decimal("120.00"),
            account.invoice.pk,
        )
        assert list(
            DisputeLine.objects.filter(dispute=dispute)
            .order_by("invoice_line__position")
            .values_list("accepted_amount", "is_open")
        ) == [(Decimal("120.00"), False), (Decimal("0.00"), False)]
        assert reply.thread_id == answer.thread_id == dispute.thread_id
        assert answer.direction == Message.Direction.IN and answer.attachments.count() == 1
    assert fresh(account.invoice).open_amount == Decimal("280.00")
    assert customer_emails(account.customer) == [
        ("email", "We received your dispute on invoice INV-1"),
        ("email", "Your dispute on invoice INV-1 is in review"),
        ("email", "Re: Dispute on invoice INV-1"),
        ("email", "Your dispute on invoice INV-1: partly accepted"),
    ]
    with scopes_disabled():
        last = Message.objects.filter(customer=account.customer, direction="out").order_by("-pk").first()
    assert last is not None
    assert "We accepted $120.00 of the $160.00 you disputed." in last.body_text
    assert "Why the rest stands: The price is the one quoted on PO 4411." in last.body_text
    assert "Invoice INV-1 now has $280.00 open." in last.body_text
    assert audit(dispute) == [
        "openar.dispute.opened",
        "openar.dispute.review_started",
        "openar.dispute.commented",
        "openar.dispute.commented",
        "openar.dispute.resolved",
    ]
    # Resolved: nothing more can be done to it, and the line can be disputed again, up to
    # what was not credited.
    with (
        scope(organization=organization),
        pytest.raises(ServiceError, match="resolved: it cannot be withdrawn"),
    ):
        dispute_withdraw(dispute=dispute, actor=None)
    with pytest.raises(ServiceError, match=re.escape("at most $180.00")):
        open_dispute(account, (0, "price", "180.01"))


def test_accepted_in_full_and_rejected(account: Account, django_capture_on_commit_callbacks) -> None:
    first = open_dispute(account, (0, "price", "50.00"))
    second = open_dispute(account, (1, "quantity", "100.00"))
    collector = account.users.collector
    with scope(organization=account.customer.organization):
        line = DisputeLine.objects.get(dispute=first)
        accepted = dispute_resolve(
            dispute=first, accepted={line.pk: Decimal("50.00")}, rejection_reason="", actor=collector
        )
        line = DisputeLine.objects.get(dispute=second)
        rejected = dispute_resolve(
            dispute=second,
            accepted={line.pk: Decimal("0")},
            rejection_reason="Delivered as ordered.",
            actor=collector,
        )
        assert CreditNote.objects.count() == 1
    assert (accepted.outcome, accepted.credit_note.amount) == ("accepted", Decimal("50.00"))  # type: ignore[union-attr]
    assert (rejected.outcome, rejected.credit_note, rejected.rejection_reason) == (
        "rejected",
        None,
        "Delivered as ordered.",
    )
    assert fresh(account.invoice).open_amount == Decimal("350.00")


def test_withdraw_and_assign(account: Account, django_capture_on_commit_callbacks) -> None:
    dispute = open_dispute(account, (1, "other", "30.00"))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True), scope(organization=account.customer.organization):
        with pytest.raises(ServiceError, match="staff"):
            dispute_assign(dispute=dispute, assignee=account.users.customer, actor=account.users.admin)
        dispute_assign(dispute=dispute, assignee=account.users.admin, actor=account.users.collector)
        withdrawn = dispute_withdraw(
            dispute=dispute, actor=account.users.customer, contact=account.contact, note="Found it."
        )
    assert withdrawn.state == Dispute.State.WITHDRAWN and withdrawn.outcome == ""
    with scopes_disabled():
        assert not DisputeLine.objects.filter(is_open=True).exists()
    staff = [m for m in mail.outbox if m.to != ["dana@bolt.example"]]
    assert [(m.subject, m.to) for m in staff] == [
        ("Dispute assigned to you: Bolt Hardware, invoice INV-1", ["admin@acme.example"]),
        ("Dispute withdrawn: Bolt Hardware, invoice INV-1", ["admin@acme.example"]),
    ]
    assert customer_emails(account.customer)[-1] == ("email", "Your dispute on invoice INV-1 is withdrawn")
    assert audit(dispute) == ["openar.dispute.opened", "openar.dispute.assigned", "openar.dispute.withdrawn"]


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_disputes_of_the_same_line_at_once_make_one(account: Account) -> None:
    """Two people dispute the same line at the same moment: one dispute, one clear refusal."""
    from factories import in_threads

    def work(n: int) -> object:
        return open_dispute(account, (0, "price", "10.00"), token=f"race-token-{n:02d}-abcdefgh")

    results = in_threads(2, work)
    made = [r for r in results if isinstance(r, Dispute)]
    refused = [r for r in results if isinstance(r, ServiceError)]
    assert len(made) == 1 and len(refused) == 1, results
    assert "already in an open dispute" in refused[0].message or "just disputed" in refused[0].message
    with scopes_disabled():
        assert Dispute.objects.count() == 1
        assert DisputeLine.objects.filter(is_open=True).count() == 1
