"""The desk's dispute pages through the real URLs: the queue (filters, ageing, SLA badges,
sorted by SLA), the dispute page, starting the review, assigning, replying with a file, and
resolving (a refusal next to its field, then a credit note issued and shown); the invoice
and customer pages list the disputes and the nav counts the open ones. A manager (no
``desk.collect``) sees but cannot act; another organization's dispute is a 404."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django_scopes import scopes_disabled

from factories import fresh, make_member, signed_in, text_of
from openar.billing.models import CreditNote
from openar.customers.models import Customer
from openar.disputes.models import Dispute, DisputeAttachment, DisputeLine
from openar.notifications.models import Message
from openar.tenants.models import Organization, Role

from .conftest import Account, open_dispute, png_upload, reload

pytestmark = pytest.mark.django_db


def lines_of(dispute: Dispute) -> list[DisputeLine]:
    with scopes_disabled():
        return list(DisputeLine.objects.filter(dispute=dispute).order_by("invoice_line__position"))


def test_the_queue_filters_and_shows_ageing(account: Account, clock: time_machine.Traveller) -> None:
    damaged = open_dispute(account, (0, "damaged", "50.00"))  # SLA 7 days
    clock.shift(datetime.timedelta(days=3))
    price = open_dispute(account, (1, "price", "10.00"))  # SLA 10 days: due later
    clock.shift(datetime.timedelta(days=6))  # damaged: 9 days open, 2 days overdue
    client = signed_in(account.users.collector)
    page = client.get("/desk/disputes/")
    assert page.status_code == 200
    body = page.content.decode()
    text = text_of(body)
    assert body.index(f"/desk/disputes/{damaged.pk}/") < body.index(f"/desk/disputes/{price.pk}/")
    assert "Open 9 days SLA 2 days overdue" in text
    assert "Open 6 days SLA due in 4 days" in text
    assert "Disputes (2)" in text  # the nav: open ones
    overdue = client.get("/desk/disputes/?overdue=1").content.decode()
    assert f"/desk/disputes/{damaged.pk}/" in overdue and f"/desk/disputes/{price.pk}/" not in overdue
    by_reason = client.get("/desk/disputes/?reason=price").content.decode()
    assert f"/desk/disputes/{price.pk}/" in by_reason and f"/desk/disputes/{damaged.pk}/" not in by_reason
    assert "No dispute matches." in text_of(client.get("/desk/disputes/?q=Nobody+Inc").content)
    assert f"/desk/disputes/{damaged.pk}/" in client.get("/desk/disputes/?q=bolt").content.decode()
    assert "No dispute matches." in text_of(client.get("/desk/disputes/?assigned=nobody").content)
    mine = client.get("/desk/disputes/?assigned=me").content.decode()
    assert f"/desk/disputes/{damaged.pk}/" in mine
    assert "No dispute matches." in text_of(client.get("/desk/disputes/?state=resolved").content)


def test_review_reply_and_resolve_with_a_credit_note(
    account: Account, django_capture_on_commit_callbacks
) -> None:
    dispute = open_dispute(account, (0, "damaged", "120.00"), (1, "price", "40.00"))
    first, second = lines_of(dispute)
    client = signed_in(account.users.collector)
    page = text_of(client.get(f"/desk/disputes/{dispute.pk}/").content)
    assert "Dispute on INV-1 Open" in page and "Please check these." in page
    assert client.post(f"/desk/disputes/{dispute.pk}/review/").status_code == 302
    assert reload(dispute).state == Dispute.State.IN_REVIEW
    with django_capture_on_commit_callbacks(execute=True):
        replied = client.post(
            f"/desk/disputes/{dispute.pk}/reply/",
            {"body": "Our label photo.", "attachments": png_upload("label.png")},
        )
    assert replied.status_code == 302
    with scopes_disabled():
        staff_file = DisputeAttachment.objects.get(dispute=dispute, by_staff=True)
        reply = Message.objects.get(thread=reload(dispute).thread, created_by=account.users.collector)
        assert list(reply.attachments.all()) == [staff_file.document]
    assert any(m.subject == "Re: Dispute on invoice INV-1" and m.attachments for m in mail.outbox)
    # Refused: a partial acceptance without a reason; what was typed is kept.
    refused = client.post(
        f"/desk/disputes/{dispute.pk}/resolve/",
        {f"accepted_{first.pk}": "120.00", f"accepted_{second.pk}": "0", "rejection_reason": ""},
    )
    assert refused.status_code == 400
    body = refused.content.decode()
    assert re.search(r'id="rejection_reason-error">Say why the dispute is rejected in part.</p>', body)
    assert f'id="accepted-{second.pk}" value="0"' in body
    bad = client.post(
        f"/desk/disputes/{dispute.pk}/resolve/",
        {f"accepted_{first.pk}": "12,0", f"accepted_{second.pk}": "0", "rejection_reason": "x"},
    )
    assert bad.status_code == 400 and f'id="accepted-{first.pk}-error"' in bad.content.decode()
    with scopes_disabled():
        assert not CreditNote.objects.exists()
    resolved = client.post(
        f"/desk/disputes/{dispute.pk}/resolve/",
        {
            f"accepted_{first.pk}": "120.00",
            f"accepted_{second.pk}": "0",
            "rejection_reason": "Price as quoted.",
        },
        follow=True,
    )
    text = text_of(resolved.content)
    assert f"Credit note CN-D{dispute.pk:05d} of $120.00 is issued." in text
    assert f"CN-D{dispute.pk:05d} · $120.00" in text and "Rejected because: Price as quoted." in text
    assert fresh(account.invoice).open_amount == Decimal("280.00")
    invoice_page = text_of(
        client.get(f"/desk/customers/{account.customer.pk}/invoices/{account.invoice.pk}/").content
    )
    assert "INV-1: $160.00 Resolved Partly accepted" in invoice_page
    customer_page = text_of(client.get(f"/desk/customers/{account.customer.pk}/").content)
    assert "INV-1: $160.00 Resolved Partly accepted" in customer_page
    assert "Disputes (" not in customer_page  # nothing open any more


def test_assign_to_staff_only(account: Account) -> None:
    dispute = open_dispute(account, (0, "price", "5.00"))
    client = signed_in(account.users.collector)
    refused = client.post(
        f"/desk/disputes/{dispute.pk}/assign/", {"assignee": str(account.users.customer.pk)}
    )
    assert refused.status_code == 400 and "Choose someone on the organization's staff." in text_of(
        refused.content
    )
    assert (
        client.post(
            f"/desk/disputes/{dispute.pk}/assign/", {"assignee": str(account.users.admin.pk)}
        ).status_code
        == 302
    )
    assert reload(dispute).assigned_to_id == account.users.admin.pk
    assert client.post(f"/desk/disputes/{dispute.pk}/assign/", {"assignee": ""}).status_code == 302
    assert reload(dispute).assigned_to_id is None


def test_a_manager_sees_but_cannot_act(account: Account) -> None:
    dispute = open_dispute(account, (0, "price", "5.00"))
    first = lines_of(dispute)[0]
    client = signed_in(account.users.manager)
    page = client.get(f"/desk/disputes/{dispute.pk}/")
    assert page.status_code == 200 and "Resolve" not in text_of(page.content)
    for url, data in (
        ("review/", {}),
        ("assign/", {"assignee": str(account.users.manager.pk)}),
        ("reply/", {"body": "Manager reply 4711"}),
        ("resolve/", {f"accepted_{first.pk}": "5.00"}),
    ):
        assert client.post(f"/desk/disputes/{dispute.pk}/{url}", data).status_code == 403
    after = reload(dispute)
    assert (after.state, after.assigned_to_id) == (Dispute.State.OPEN, account.users.collector.pk)
    with scopes_disabled():
        assert not CreditNote.objects.exists()
        assert not Message.objects.filter(body_text__contains="Manager reply 4711").exists()


def test_another_organizations_dispute_is_404(
    account: Account, other_supplier: Organization, other_customer: Customer
) -> None:
    dispute = open_dispute(account, (0, "price", "5.00"))
    first = lines_of(dispute)[0]
    stranger = make_member(other_supplier, Role.ADMIN, "admin@globex.example")
    client = signed_in(stranger)
    assert client.get(f"/desk/disputes/{dispute.pk}/").status_code == 404
    assert client.post(f"/desk/disputes/{dispute.pk}/review/").status_code == 404
    assert (
        client.post(f"/desk/disputes/{dispute.pk}/resolve/", {f"accepted_{first.pk}": "5.00"}).status_code
        == 404
    )
    assert "No dispute matches." in text_of(client.get("/desk/disputes/").content)
    assert reload(dispute).state == Dispute.State.OPEN
    del other_customer


def test_an_admin_edits_and_adds_reasons(account: Account) -> None:
    client = signed_in(account.users.admin)
    page = client.get("/desk/disputes/reasons/")
    assert page.status_code == 200 and "Goods arrived damaged" in text_of(page.content)
    damaged = account.reasons["damaged"]
    refused = client.post(
        "/desk/disputes/reasons/",
        {"reason": str(damaged.pk), "label": "Damaged", "sla_days": "3", "notify_emails": "not-an-address"},
    )
    assert refused.status_code == 400 and "not-an-address is not an email address." in text_of(
        refused.content
    )
    saved = client.post(
        "/desk/disputes/reasons/",
        {"reason": str(damaged.pk), "label": "Damaged", "sla_days": "3", "notify_emails": "wh@acme.example"},
    )
    assert saved.status_code == 302
    added = client.post(
        "/desk/disputes/reasons/",
        {"reason": "new", "label": "Late delivery", "sla_days": "4", "notify_emails": ""},
    )
    assert added.status_code == 302
    with scopes_disabled():
        damaged.refresh_from_db()
        assert (damaged.label, damaged.sla_days, damaged.notify_emails, damaged.active) == (
            "Damaged",
            3,
            ["wh@acme.example"],
            False,  # the box was not ticked: no longer offered
        )
        from openar.disputes.models import DisputeReason

        assert (
            DisputeReason.objects.get(
                organization=account.customer.organization, code="late_delivery"
            ).sla_days
            == 4
        )
    assert signed_in(account.users.collector).get("/desk/disputes/reasons/").status_code == 403
