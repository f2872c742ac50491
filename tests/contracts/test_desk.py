"""Contracts at the desk, through the real URLs: a draft from an uploaded PDF (anything
else refused with the upload check's message, nothing kept) or from a template, sent and
withdrawn; the list and its state filter; the customer page's card; read-only staff see
but cannot act; another organization's contract or customer is a 404."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django_scopes import scopes_disabled

from factories import TODAY, Users, signed_in, text_of
from openar.contracts.models import Contract

from .conftest import events, fresh, pdf_bytes

pytestmark = pytest.mark.usefixtures("clock")
MakeContract = Callable[..., Contract]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def contracts() -> list[Contract]:
    with scopes_disabled():
        return list(Contract.objects.order_by("pk"))


def test_staff_upload_a_pdf_send_it_and_withdraw_it(
    users: Users, customer, contact, django_capture_on_commit_callbacks
) -> None:
    client = signed_in(users.collector)
    new = f"/desk/customers/{customer.pk}/contracts/new/"
    assert client.get(new).status_code == 200
    content = pdf_bytes()
    created = client.post(
        new,
        {
            "source": "upload",
            "title": "Supply agreement",
            "summary": "Net 30",
            "expires_on": (TODAY + datetime.timedelta(days=14)).isoformat(),
            "file": SimpleUploadedFile("supply.pdf", content, "application/pdf"),
        },
    )
    (contract,) = contracts()
    assert (created.status_code, created["Location"]) == (302, f"/desk/contracts/{contract.pk}/")
    assert (contract.state, contract.title, contract.expires_on) == (
        "draft",
        "Supply agreement",
        TODAY + datetime.timedelta(days=14),
    )
    page = text_of(client.get(created["Location"]).content)
    assert "Download to check (preview)" in page and contract.sha256 in page and "Send for signature" in page
    preview = client.get(f"/desk/contracts/{contract.pk}/document/")
    assert preview.getvalue() == content

    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(f"/desk/contracts/{contract.pk}/send/")
    assert sent.status_code == 302 and fresh(contract).state == "sent"
    flash = text_of(client.get(sent["Location"]).content)
    assert "Emailed a link to Dana Payables (dana@bolt.example)." in flash
    assert [m.subject for m in mail.outbox] == ["Please sign: Supply agreement"]

    no_reason = client.post(f"/desk/contracts/{contract.pk}/withdraw/", {"reason": ""})
    assert no_reason.status_code == 400 and "Say why the contract is withdrawn." in text_of(no_reason.content)
    withdrawn = client.post(f"/desk/contracts/{contract.pk}/withdraw/", {"reason": "Wrong prices"})
    assert withdrawn.status_code == 302 and fresh(contract).state == "withdrawn"
    assert [e.data["reason"] for e in events("openar.contract.withdrawn")] == ["Wrong prices"]


@pytest.mark.parametrize(
    ("name", "content", "message", "status"),
    [
        ("scan.png", PNG, "This file is a PNG image, but only PDF files can be signed.", 400),
        ("empty.pdf", b"", "This file is empty.", 400),
        ("broken.pdf", b"%PDF-1.7\nnot really", "This PDF cannot be read: it may be damaged.", 400),
    ],
)
def test_an_upload_that_is_not_a_pdf_is_refused_with_a_message(
    users: Users, customer, name: str, content: bytes, message: str, status: int
) -> None:
    client = signed_in(users.collector)
    response = client.post(
        f"/desk/customers/{customer.pk}/contracts/new/",
        {"source": "upload", "title": "Supply agreement", "file": SimpleUploadedFile(name, content)},
    )
    assert response.status_code == status
    assert message in text_of(response.content)
    assert 'value="Supply agreement"' in response.content.decode()  # nothing typed is lost
    assert contracts() == []
    assert events("openar.contract.created") == []


def test_a_credit_application_refused_keeps_what_was_typed_then_is_made(users: Users, customer) -> None:
    client = signed_in(users.collector)
    new = f"/desk/customers/{customer.pk}/contracts/new/"
    form = {
        "source": "credit_application",
        "legal_name": "Bolt Hardware Ltd.",
        "address": "1 Main St",
        "credit_limit": "12,50",
        "terms_days": "30",
        "contact_email": "",
    }
    refused = client.post(new, form)
    assert refused.status_code == 400
    assert "Use a point before the decimals" in text_of(refused.content)
    assert (
        'value="12,50"' in refused.content.decode()
        and 'value="Bolt Hardware Ltd."' in refused.content.decode()
    )
    assert contracts() == []
    made = client.post(new, {**form, "credit_limit": "5,000.00"})
    (contract,) = contracts()
    assert made.status_code == 302
    assert (contract.template, contract.fields["credit_limit"]) == ("credit_application", "$5,000.00")


def test_the_list_filters_by_state_and_the_customer_page_has_the_card(
    make_contract: MakeContract, users: Users, customer
) -> None:
    draft = make_contract(customer, send=False, title="Draft terms")
    sent = make_contract(customer, title="Sent terms")
    client = signed_in(users.manager)
    everything = text_of(client.get("/desk/contracts/").content)
    assert "Draft terms" in everything and "Sent terms" in everything
    only_sent = text_of(client.get("/desk/contracts/?state=sent").content)
    assert "Sent terms" in only_sent and "Draft terms" not in only_sent
    card = client.get(f"/desk/customers/{customer.pk}/")
    html = card.content.decode()
    assert f'href="/desk/contracts/{draft.pk}/"' in html and f'href="/desk/contracts/{sent.pk}/"' in html
    assert "New contract" not in text_of(card.content)  # a manager reads only
    assert "New contract" in text_of(
        signed_in(users.collector).get(f"/desk/customers/{customer.pk}/").content
    )


def test_read_only_staff_cannot_make_send_or_withdraw(
    make_contract: MakeContract, users: Users, customer
) -> None:
    draft = make_contract(customer, send=False)
    client = signed_in(users.manager)
    assert client.get(f"/desk/contracts/{draft.pk}/").status_code == 200
    assert client.get(f"/desk/customers/{customer.pk}/contracts/new/").status_code == 403
    assert client.post(f"/desk/contracts/{draft.pk}/send/").status_code == 403
    assert client.post(f"/desk/contracts/{draft.pk}/withdraw/", {"reason": "x"}).status_code == 403
    assert fresh(draft).state == "draft"
    assert events("openar.contract.sent") == []


def test_another_organizations_contract_and_customer_are_404(
    make_contract: MakeContract, users: Users, other_customer
) -> None:
    theirs = make_contract(other_customer)
    client = signed_in(users.collector)
    for url in ("", "document/", "signed/"):
        assert client.get(f"/desk/contracts/{theirs.pk}/{url}").status_code == 404
    for url in ("send/", "withdraw/", "verify/"):
        assert client.post(f"/desk/contracts/{theirs.pk}/{url}", {"reason": "x"}).status_code == 404
    assert client.get(f"/desk/customers/{other_customer.pk}/contracts/new/").status_code == 404
    refused = client.post(
        f"/desk/customers/{other_customer.pk}/contracts/new/",
        {"source": "upload", "title": "x", "file": SimpleUploadedFile("a.pdf", pdf_bytes())},
    )
    assert refused.status_code == 404
    assert fresh(theirs).state == "sent" and len(contracts()) == 1
    assert "Service agreement" not in text_of(client.get("/desk/contracts/").content)


def test_staff_see_the_evidence_and_verify_a_copy(
    make_contract: MakeContract, sign, users: Users, contact
) -> None:
    contract = sign(make_contract(contact.customer), contact)
    client = signed_in(users.manager)
    page = text_of(client.get(f"/desk/contracts/{contract.pk}/").content)
    for expected in (
        "Dana Payables",
        "password + authenticator app",
        "203.0.113.7",
        "Mozilla/5.0 (Test) Firefox/130.0",
        contract.signed_sha256,
    ):
        assert expected in page, expected
    with contract.signed_file.open("rb") as handle:
        signed = handle.read()
    checked = client.post(
        f"/desk/contracts/{contract.pk}/verify/", {"file": SimpleUploadedFile("s.pdf", signed)}
    )
    assert "This file matches the signed copy." in text_of(checked.content)
