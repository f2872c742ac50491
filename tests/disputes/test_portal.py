"""The portal's dispute pages through the real URLs: the invoice's "Dispute lines" form
(with a photo), refusals next to their field with what was typed kept, the dispute page
with its conversation, a message with a file, withdrawal; a sign-in link for one invoice
disputes that invoice only; staff viewing as the customer cannot; another customer's or
organization's ids are 404."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import TODAY, Users, issue_invoice, signed_in, text_of
from openar.billing.models import Document
from openar.customers.models import Customer
from openar.disputes.models import Dispute, DisputeAttachment
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink
from openar.notifications.models import Message

from .conftest import Account, open_dispute, png_upload, reload

pytestmark = pytest.mark.django_db


def form_for(account: Account, **extra: object) -> dict[str, object]:
    first, second = account.lines
    data: dict[str, object] = {
        "form_token": "form-token-0123456789abcd",
        "line": [str(first.pk), str(second.pk)],
        f"reason_{first.pk}": str(account.reasons["damaged"].pk),
        f"amount_{first.pk}": "150.00",
        f"comment_{first.pk}": "One rack bent",
        f"reason_{second.pk}": str(account.reasons["price"].pk),
        f"amount_{second.pk}": "25.00",
        f"comment_{second.pk}": "",
        "message": "Photos attached.",
    }
    data.update(extra)
    return data


def test_the_invoice_page_offers_to_dispute_lines_and_the_form_lists_them(account: Account) -> None:
    client = signed_in(account.users.customer)
    page = client.get(f"/portal/invoices/{account.invoice.pk}/")
    assert page.status_code == 200
    assert f'href="/portal/invoices/{account.invoice.pk}/dispute/"' in page.content.decode()
    assert "No disputes on this invoice." in text_of(page.content)
    form = client.get(f"/portal/invoices/{account.invoice.pk}/dispute/")
    body = form.content.decode()
    assert form.status_code == 200
    assert 'accept="image/*,application/pdf"' in body and 'enctype="multipart/form-data"' in body
    assert f'name="amount_{account.lines[0].pk}" id="amount-{account.lines[0].pk}" value="300.00"' in body
    assert "Goods arrived damaged" in body and "Billed twice" in body


def test_dispute_two_lines_with_a_photo(account: Account, django_capture_on_commit_callbacks) -> None:
    client = signed_in(account.users.customer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/portal/invoices/{account.invoice.pk}/dispute/",
            {**form_for(account), "attachments": png_upload()},
        )
    with scopes_disabled():
        dispute = Dispute.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/portal/disputes/{dispute.pk}/"
    assert dispute.disputed_total == Decimal("175.00")
    assert dispute.opened_by_id == account.users.customer.pk
    page = client.get(response["Location"])
    text = text_of(page.content)
    assert "Dispute on invoice INV-1 Open" in text
    assert "Pallet racking “One rack bent” Goods arrived damaged $150.00" in text
    assert "damage.png" in text and "Photos attached." in text
    with scopes_disabled():
        document = DisputeAttachment.objects.get(dispute=dispute).document
    download = client.get(f"/portal/documents/{document.pk}/download")
    assert download.status_code == 200
    # The invoice page shows it, and what can be paid now.
    invoice_page = text_of(client.get(f"/portal/invoices/{account.invoice.pk}/").content)
    assert "Disputed and paused: $175.00" in invoice_page and "You can pay the rest, $225.00" in invoice_page
    assert "Pay the undisputed $225.00" in invoice_page
    # Both lines are in the dispute: the action is gone.
    assert "Dispute lines" not in invoice_page
    assert "Your disputes" in text_of(client.get("/portal/invoices/").content)
    listing = text_of(client.get("/portal/disputes/").content)
    assert "INV-1" in listing and "$175.00" in listing
    # The conversation is in Messages too.
    assert f'href="/portal/messages/{dispute.thread_id}/"' in client.get("/portal/messages/").content.decode()


def test_pay_the_undisputed_part_opens_the_pay_page_with_it(account: Account) -> None:
    open_dispute(account, (0, "price", "100.00"))
    client = signed_in(account.users.customer)
    page = client.get(f"/portal/invoices/{account.invoice.pk}/").content.decode()
    form = page[
        page.index('action="/portal/pay/"') : page.index("</form>", page.index('action="/portal/pay/"'))
    ]
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form))
    assert fields[f"amount_{account.invoice.pk}"] == "300.00"
    pay = client.post("/portal/pay/", {k: v for k, v in fields.items()})
    assert pay.status_code == 200
    assert f'name="amount_{account.invoice.pk}"' in pay.content.decode()
    assert 'value="300.00"' in pay.content.decode()


@pytest.mark.parametrize(
    ("change", "element", "message"),
    [
        ({"line": []}, "lines-error", "Choose at least one line to dispute."),
        ({"amount_X": "1,00"}, "amount-X-error", "Use a point before the decimals"),
        ({"amount_X": "301.00"}, "amount-X-error", "“Pallet racking” can be disputed for at most $300.00."),
        ({"reason_X": ""}, "reason-X-error", "Choose a reason for each line you dispute."),
    ],
)
def test_refusals_are_shown_next_to_their_field_and_keep_what_was_typed(
    account: Account, change: dict[str, object], element: str, message: str
) -> None:
    first = str(account.lines[0].pk)
    data = form_for(account, **{key.replace("X", first): value for key, value in change.items()})
    response = signed_in(account.users.customer).post(f"/portal/invoices/{account.invoice.pk}/dispute/", data)
    assert response.status_code == 400
    body = response.content.decode()
    found = re.search(rf'<p class="field__error" id="{element.replace("X", first)}">(.*?)</p>', body, re.S)
    assert found and message in found.group(1).replace("&ldquo;", "“").replace("&rdquo;", "”")
    assert "One rack bent" in body and "Photos attached." in body
    with scopes_disabled():
        assert not Dispute.objects.exists() and not Message.objects.exists() and not Document.objects.exists()


def test_a_file_that_is_not_a_photo_or_pdf_is_refused(account: Account) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    script = SimpleUploadedFile("photo.png", b"#!/bin/sh\necho hi\n", content_type="image/png")
    response = signed_in(account.users.customer).post(
        f"/portal/invoices/{account.invoice.pk}/dispute/", {**form_for(account), "attachments": script}
    )
    assert response.status_code == 400
    assert 'id="attachments-error"' in response.content.decode()
    with scopes_disabled():
        assert not Dispute.objects.exists() and not Document.objects.exists()


def test_a_message_with_a_file_then_withdraw(account: Account, django_capture_on_commit_callbacks) -> None:
    dispute = open_dispute(account, (1, "price", "20.00"))
    client = signed_in(account.users.customer)
    empty = client.post(f"/portal/disputes/{dispute.pk}/", {"action": "message", "body": ""})
    assert empty.status_code == 400 and "Write a message or attach a file." in text_of(empty.content)
    added = client.post(
        f"/portal/disputes/{dispute.pk}/",
        {"action": "message", "body": "Delivery note.", "attachments": png_upload("note.png")},
    )
    assert added.status_code == 302
    with scopes_disabled():
        assert DisputeAttachment.objects.filter(dispute=dispute, by_staff=False).count() == 1
        thread = reload(dispute).thread
        assert thread is not None and thread.unread_by_staff == 2
    with django_capture_on_commit_callbacks(execute=True):
        withdrawn = client.post(
            f"/portal/disputes/{dispute.pk}/", {"action": "withdraw", "note": "Sorted by phone"}
        )
    assert withdrawn.status_code == 302
    assert reload(dispute).state == Dispute.State.WITHDRAWN
    page = text_of(client.get(f"/portal/disputes/{dispute.pk}/").content)
    assert "Withdrawn" in page and "Withdraw the dispute" not in page
    again = client.post(f"/portal/disputes/{dispute.pk}/", {"action": "withdraw"})
    assert again.status_code == 400 and "withdrawn: it cannot be withdrawn" in text_of(again.content)


def test_a_sign_in_link_for_one_invoice_disputes_that_invoice_only(account: Account) -> None:
    with scope(organization=account.customer.organization):
        issued = magic_link_create(
            contact=account.contact, scope_=MagicLink.Scope.INVOICE, invoice=account.later
        )
    client = Client()
    client.get(f"/l/{issued.token}/")
    assert client.post("/l/confirm/").status_code == 302
    assert client.get(f"/portal/invoices/{account.later.pk}/dispute/").status_code == 200
    assert client.get(f"/portal/invoices/{account.invoice.pk}/dispute/").status_code == 404
    other = open_dispute(account, (0, "price", "5.00"))
    assert client.get(f"/portal/disputes/{other.pk}/").status_code == 404
    assert client.post(f"/portal/disputes/{other.pk}/", {"action": "withdraw"}).status_code == 404
    with scope(organization=account.customer.organization):
        line = account.later.lines.get()
    response = client.post(
        f"/portal/invoices/{account.later.pk}/dispute/",
        {
            "line": [str(line.pk)],
            f"reason_{line.pk}": str(account.reasons["duplicate"].pk),
            f"amount_{line.pk}": "50.00",
        },
    )
    assert response.status_code == 302
    with scopes_disabled():
        made = Dispute.objects.get(invoice=account.later)
    assert made.opened_by_contact_id == account.contact.pk and made.opened_by_id is None


def test_another_customers_and_another_organizations_disputes_are_404(
    account: Account, customer_2: Customer, users: Users, other_customer: Customer
) -> None:
    dispute = open_dispute(account, (0, "price", "5.00"))
    from factories import make_member
    from openar.tenants.models import Role

    anvil_user = make_member(
        account.customer.organization, Role.CUSTOMER, "ap@anvil.example", customer=customer_2
    )
    anvil_invoice = issue_invoice(customer_2, "INV-9", "10.00", due_date=TODAY)
    client = signed_in(anvil_user)
    assert client.get(f"/portal/disputes/{dispute.pk}/").status_code == 404
    assert (
        client.post(f"/portal/disputes/{dispute.pk}/", {"action": "message", "body": "hi"}).status_code == 404
    )
    assert client.post(f"/portal/disputes/{dispute.pk}/", {"action": "withdraw"}).status_code == 404
    assert client.get(f"/portal/invoices/{account.invoice.pk}/dispute/").status_code == 404
    assert "INV-1" not in text_of(client.get("/portal/disputes/").content)
    assert client.get(f"/portal/invoices/{anvil_invoice.pk}/dispute/").status_code == 200
    assert reload(dispute).state == Dispute.State.OPEN
    with scopes_disabled():
        assert Message.objects.filter(body_text="hi").count() == 0
    del other_customer, users


def test_staff_viewing_as_the_customer_cannot_dispute(account: Account) -> None:
    dispute = open_dispute(account, (1, "price", "5.00"))
    client = signed_in(account.users.collector)
    assert client.post(f"/desk/customers/{account.customer.pk}/view-as/").status_code == 302
    page = client.get(f"/portal/disputes/{dispute.pk}/")
    assert page.status_code == 200 and "nothing can be added from here" in text_of(page.content)
    response = client.post(f"/portal/invoices/{account.invoice.pk}/dispute/", form_for(account))
    assert response.status_code == 403
    assert client.post(f"/portal/disputes/{dispute.pk}/", {"action": "withdraw"}).status_code == 403
    assert (
        client.post(
            f"/portal/disputes/{dispute.pk}/", {"action": "message", "body": "staff as customer"}
        ).status_code
        == 403
    )
    assert reload(dispute).state == Dispute.State.OPEN
    with scopes_disabled():
        assert Dispute.objects.count() == 1
        assert not Message.objects.filter(body_text="staff as customer").exists()
