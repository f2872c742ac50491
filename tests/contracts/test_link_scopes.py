"""Which contracts a sign-in link's session sees. The link emailed with a contract (scope
"contract") sees that contract's pages and no other contract; a link to the whole account
sees all of the account's contracts, as a full sign-in does; a link to one invoice, or to
what is past due, sees none: every contract page is a 404, the nav has no "Contracts", and
nothing can be downloaded or signed."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import Users, days_ago, issue_invoice, make_contact, text_of
from openar.billing.models import Invoice
from openar.contracts.models import Contract, Signature
from openar.contracts.services import contract_send
from openar.core.errors import ServiceError
from openar.customers.models import Contact
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink

from .conftest import emailed_code, events, fresh, pdf_bytes

pytestmark = pytest.mark.usefixtures("clock")
MakeContract = Callable[..., Contract]
NAV = 'href="/portal/contracts/"'


def page_of(contract: Contract) -> str:
    return f"/portal/contracts/{contract.pk}/"


def signed_in_with(
    contact: Contact, scope_: str, *, invoice: Invoice | None = None, contract: Contract | None = None
) -> Client:
    """A browser that opened and confirmed a sign-in link of ``scope_``."""
    with scope(organization=contact.customer.organization):
        issued = magic_link_create(contact=contact, scope_=scope_, invoice=invoice, contract=contract)
    return opened(issued.url)


def opened(url: str) -> Client:
    client = Client()
    assert client.get(urlsplit(url).path).status_code == 302
    confirmed = client.post("/l/confirm/")
    assert confirmed.status_code == 302
    client.landed = confirmed["Location"]  # type: ignore[attr-defined]
    return client


def contract_pages(contract: Contract) -> list[str]:
    page = page_of(contract)
    return [page, f"{page}document/", f"{page}confirm/", f"{page}signed/"]


def step_up(client: Client, page: str, django_capture_on_commit_callbacks: Callable[..., object]) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[attr-defined]
        assert client.post("/portal/step-up/", {"send": "1", "next": page}).status_code == 200
    entered = client.post("/portal/step-up/", {"code": emailed_code(), "next": page})
    assert (entered.status_code, entered["Location"]) == (302, page)


def sign_form(client: Client, contract: Contract) -> dict[str, str]:
    consent = client.get(page_of(contract)).context["consent"]
    return {
        "typed_name": "Dana Payables",
        "consent": "yes",
        "consent_text": consent,
        "sha256": contract.sha256,
    }


def signatures() -> list[Signature]:
    with scopes_disabled():
        return list(Signature.objects.order_by("pk"))


# --- the link a contract is sent with ----------------------------------------------------------


def test_sending_a_contract_emails_each_contact_a_link_to_that_contract_only(
    make_contract: MakeContract, users: Users, contact: Contact, django_capture_on_commit_callbacks
) -> None:
    second = make_contact(contact.customer, "Sam Buyer", "sam@bolt.example", is_primary=False)
    other = make_contract(contact.customer, title="Credit application (confidential)")
    draft = make_contract(contact.customer, send=False, title="Supply agreement 2026")
    mail.outbox.clear()
    with scopes_disabled():
        MagicLink.objects.all().delete()
    with scope(organization=contact.organization), django_capture_on_commit_callbacks(execute=True):
        contract_send(contract=draft, actor=users.collector)
    with scopes_disabled():
        links = list(
            MagicLink.objects.order_by("contact_id").values_list(
                "contact_id", "scope", "contract_id", "target"
            )
        )
    assert links == [
        (contact.pk, "contract", draft.pk, page_of(draft)),
        (second.pk, "contract", draft.pk, page_of(draft)),
    ]
    created = [e.data for e in events("openar.magic_link.created")][-2:]
    assert created == [
        {"contact": contact.pk, "scope": "contract", "contract": draft.pk, "bulk": True},
        {"contact": second.pk, "scope": "contract", "contract": draft.pk, "bulk": True},
    ]
    message = next(m for m in mail.outbox if m.to == ["dana@bolt.example"])
    url = re.search(r"https?://\S+/l/\S+/", str(message.body))
    assert url is not None
    client = opened(url.group(0))
    assert client.landed == page_of(draft)  # type: ignore[attr-defined]
    listing = client.get("/portal/contracts/")
    assert listing.status_code == 200
    assert "Supply agreement 2026" in text_of(listing.content)
    assert "Credit application" not in text_of(listing.content)
    for path in contract_pages(other):
        assert client.get(path).status_code == 404, path


def test_a_contract_link_sees_its_contract_and_signs_it_but_no_other(
    make_contract: MakeContract, contact: Contact, sign, django_capture_on_commit_callbacks
) -> None:
    mine = make_contract(contact.customer, title="Service agreement 2025")
    other = make_contract(contact.customer, title="Personal guarantee")
    signed_other = sign(make_contract(contact.customer, title="Old lease"), contact)
    client = signed_in_with(contact, MagicLink.Scope.CONTRACT, contract=mine)

    overview = client.get("/portal/")
    assert overview.status_code == 200 and NAV in overview.content.decode()
    listing = text_of(client.get("/portal/contracts/").content)
    assert "Service agreement 2025" in listing
    assert "Personal guarantee" not in listing and "Old lease" not in listing
    page = client.get(page_of(mine))
    assert page.status_code == 200 and mine.sha256 in page.content.decode()
    assert client.get(f"{page_of(mine)}document/").getvalue() == pdf_bytes()
    verified = client.post(
        f"{page_of(mine)}verify/", {"file": SimpleUploadedFile("copy.pdf", pdf_bytes(), "application/pdf")}
    )
    assert "This file matches the original as sent for signature." in text_of(verified.content)
    for contract in (other, signed_other):
        for path in contract_pages(contract):
            assert client.get(path).status_code == 404, path
        assert client.post(f"{page_of(contract)}verify/", {}).status_code == 404

    # After the emailed code, it signs its own contract, and still nothing else.
    step_up(client, page_of(mine), django_capture_on_commit_callbacks)
    assert client.get(f"{page_of(mine)}confirm/").status_code == 302  # a link steps up on the portal's page
    refused = client.post(
        page_of(other), {"typed_name": "Dana Payables", "consent": "yes", "sha256": other.sha256}
    )
    assert refused.status_code == 404
    signed = client.post(page_of(mine), sign_form(client, mine))
    assert (signed.status_code, signed["Location"]) == (302, page_of(mine))
    assert [s.contract_id for s in signatures()] == [signed_other.pk, mine.pk]
    assert (fresh(mine).state, fresh(other).state) == ("signed", "sent")
    assert client.get(f"{page_of(mine)}signed/").status_code == 200


def test_a_contract_link_sees_no_invoice(make_contract: MakeContract, contact: Contact) -> None:
    invoice = issue_invoice(contact.customer, "INV-77", "250.00", due_date=days_ago(10))
    contract = make_contract(contact.customer)
    client = signed_in_with(contact, MagicLink.Scope.CONTRACT, contract=contract)
    overview = client.get("/portal/")
    assert overview.status_code == 200
    assert "INV-77" not in text_of(overview.content)
    assert client.get(f"/portal/invoices/{invoice.pk}/").status_code == 404
    assert "INV-77" not in text_of(client.get("/portal/invoices/").content)


@pytest.mark.parametrize("scope_", [MagicLink.Scope.INVOICE, MagicLink.Scope.PAST_DUE])
def test_a_link_to_invoices_sees_no_contract(
    make_contract: MakeContract, contact: Contact, scope_: str, django_capture_on_commit_callbacks
) -> None:
    invoice = issue_invoice(contact.customer, "INV-9", "10.00", due_date=days_ago(5))
    contract = make_contract(contact.customer, title="Credit application (confidential)")
    client = signed_in_with(contact, scope_, invoice=invoice if scope_ == MagicLink.Scope.INVOICE else None)
    overview = client.get("/portal/")
    assert overview.status_code == 200 and "INV-9" in text_of(overview.content)
    assert NAV not in overview.content.decode()
    assert client.get("/portal/contracts/").status_code == 404
    for path in contract_pages(contract):
        assert client.get(path).status_code == 404, path
    assert client.post(f"{page_of(contract)}verify/", {}).status_code == 404
    # Even after stepping up, there is nothing to sign.
    step_up(client, page_of(contract), django_capture_on_commit_callbacks)
    refused = client.post(
        page_of(contract), {"typed_name": "Dana Payables", "consent": "yes", "sha256": contract.sha256}
    )
    assert refused.status_code == 404
    assert "Credit application" not in text_of(refused.content)
    assert signatures() == [] and fresh(contract).state == "sent"


def test_a_link_to_the_whole_account_sees_every_contract(
    make_contract: MakeContract, contact: Contact
) -> None:
    first = make_contract(contact.customer, title="Service agreement 2025")
    second = make_contract(contact.customer, title="Personal guarantee")
    client = signed_in_with(contact, MagicLink.Scope.ACCOUNT)
    assert NAV in client.get("/portal/").content.decode()
    listing = text_of(client.get("/portal/contracts/").content)
    assert "Service agreement 2025" in listing and "Personal guarantee" in listing
    for contract in (first, second):
        assert client.get(page_of(contract)).status_code == 200
        assert client.get(f"{page_of(contract)}document/").status_code == 200


def test_a_revoked_contract_link_sees_nothing(make_contract: MakeContract, contact: Contact) -> None:
    contract = make_contract(contact.customer)
    client = signed_in_with(contact, MagicLink.Scope.CONTRACT, contract=contract)
    assert client.get(page_of(contract)).status_code == 200
    with scopes_disabled():
        MagicLink.objects.update(revoked_at=contract.created_at)
    gone = client.get(page_of(contract))
    assert gone.status_code == 302 and gone["Location"].startswith("/accounts/login/")


# --- making such a link ------------------------------------------------------------------------


def test_a_contract_link_needs_one_of_the_contacts_own_contracts(
    make_contract: MakeContract, contact: Contact, customer_2
) -> None:
    theirs = make_contract(customer_2)
    with scope(organization=contact.organization):
        for contract in (None, theirs):
            with pytest.raises(ServiceError) as refused:
                magic_link_create(contact=contact, scope_=MagicLink.Scope.CONTRACT, contract=contract)
            assert (refused.value.message, refused.value.field) == (
                "A link to one contract needs one of the contact's own contracts.",
                "contract",
            )
        # Another scope never keeps a contract.
        mine = make_contract(contact.customer)
        issued = magic_link_create(contact=contact, scope_=MagicLink.Scope.ACCOUNT, contract=mine)
        assert (issued.link.scope, issued.link.contract_id, issued.link.target) == (
            "account",
            None,
            "/portal/",
        )
        default = magic_link_create(contact=contact, scope_=MagicLink.Scope.CONTRACT, contract=mine)
        assert default.link.target == page_of(mine)
    with scopes_disabled():
        assert MagicLink.objects.filter(scope="contract", contract=mine).count() == 2  # sent, and this one
        # The database refuses a contract link without its contract.
        with pytest.raises(IntegrityError), transaction.atomic():
            MagicLink.objects.filter(pk=default.link.pk).update(contract=None)
