"""Contracts in the portal, through the real URLs: a sign-in link must step up with an
emailed code before signing; a full session that used a second factor in the last 15
minutes signs at once, one whose second factor is older uses it again (or an emailed code),
one with a password alone confirms with an emailed code first; the PDF is only ever a download;
a file can be checked against the contract without being kept; another customer's contract,
or a draft, is a 404; staff viewing as the customer cannot sign."""

from __future__ import annotations

import datetime
import hashlib
import time
from collections.abc import Callable
from urllib.parse import urlencode

import pytest
import time_machine
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_scopes import scopes_disabled

from factories import Users, signed_in, text_of
from openar.billing.models import Document
from openar.contracts.models import Contract, Signature
from openar.identity.models import User

from .conftest import emailed_code, events, fresh, full_client, narrow_client, pdf_bytes

pytestmark = pytest.mark.usefixtures("clock")
MakeContract = Callable[..., Contract]


def page_of(contract: Contract) -> str:
    return f"/portal/contracts/{contract.pk}/"


def sign_form(contract: Contract, client: Client, typed_name: str = "Dana Payables") -> dict[str, str]:
    """What the page's form sends: the hash and consent text it shows, the name, the box."""
    page = client.get(page_of(contract))
    assert page.status_code == 200
    consent = page.context["consent"]
    assert "I have read" in consent and contract.sha256 in consent
    return {"typed_name": typed_name, "consent": "yes", "consent_text": consent, "sha256": contract.sha256}


def signatures() -> list[Signature]:
    with scopes_disabled():
        return list(Signature.objects.order_by("pk"))


def test_a_sign_in_link_must_step_up_with_an_emailed_code_before_signing(
    make_contract: MakeContract, contact, django_capture_on_commit_callbacks
) -> None:
    contract = make_contract(contact.customer)
    client = narrow_client(contact, target=page_of(contract))
    page = client.get(page_of(contract))
    text = text_of(page.content)
    assert "Confirm it is you to sign" in text and "because you opened a sign-in link" in text
    assert 'name="typed_name"' not in page.content.decode()
    step_up = f"/portal/step-up/?next=%2Fportal%2Fcontracts%2F{contract.pk}%2F"
    assert step_up.replace("&", "&amp;") in page.content.decode()

    refused = client.post(
        page_of(contract), {"typed_name": "Dana Payables", "consent": "yes", "sha256": contract.sha256}
    )
    assert (refused.status_code, refused["Location"]) == (302, step_up)
    assert signatures() == [] and fresh(contract).state == "sent"

    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/portal/step-up/", {"send": "1", "next": page_of(contract)}).status_code == 200
    entered = client.post("/portal/step-up/", {"code": emailed_code(), "next": page_of(contract)})
    assert (entered.status_code, entered["Location"]) == (302, page_of(contract))

    form = sign_form(contract, client)
    assert "You confirmed it is you: sign-in link + emailed code." in text_of(
        client.get(page_of(contract)).content
    )
    signed = client.post(page_of(contract), form)
    assert (signed.status_code, signed["Location"]) == (302, page_of(contract))
    (signature,) = signatures()
    assert (signature.auth_method, signature.contact_id, signature.signer_user_id) == (
        "sign-in link + emailed code",
        contact.pk,
        None,
    )
    assert (signature.ip, signature.user_agent) == ("127.0.0.1", "Mozilla/5.0 (Narrow) Safari/605.1")
    after = text_of(client.get(page_of(contract)).content)
    assert "Dana Payables signed it on" in after and fresh(contract).signed_sha256 in after


def test_a_full_session_with_a_second_factor_signs_at_once(
    make_contract: MakeContract, users: Users, linked
) -> None:
    contract = make_contract(linked.customer)
    client = full_client(users.customer, mfa="totp")
    signed = client.post(page_of(contract), sign_form(contract, client))
    assert (signed.status_code, signed["Location"]) == (302, page_of(contract))
    (signature,) = signatures()
    assert (signature.auth_method, signature.signer_user_id, signature.contact_id) == (
        "password + authenticator app",
        users.customer.pk,
        linked.pk,
    )
    assert signature.user_agent == "Mozilla/5.0 (Full) Chrome/129.0"
    download = client.get(f"/portal/contracts/{contract.pk}/signed/")
    body = download.getvalue()
    assert hashlib.sha256(body).hexdigest() == fresh(contract).signed_sha256
    assert download["Content-Disposition"] == 'attachment; filename="service-agreement-signed.pdf"'


def test_a_password_alone_confirms_with_an_emailed_code_first(
    make_contract: MakeContract, users: Users, linked, django_capture_on_commit_callbacks
) -> None:
    contract = make_contract(linked.customer)
    client = full_client(users.customer, mfa=None)
    confirm = f"/portal/contracts/{contract.pk}/confirm/"
    refused = client.post(page_of(contract), {"typed_name": "Dana Payables", "consent": "yes"})
    assert (refused.status_code, refused["Location"]) == (302, confirm)
    assert "You signed in with a password only" in text_of(client.get(confirm).content)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(confirm, {"send": "1"})
    assert mail.outbox[-1].to == ["dana@bolt.example"]
    wrong = client.post(confirm, {"code": f"{(int(emailed_code()) + 1) % 1_000_000:06d}"})
    assert wrong.status_code == 400 and "That code is not right" in text_of(wrong.content)
    assert (client.post(confirm, {"code": emailed_code()})["Location"]) == page_of(contract)
    client.post(page_of(contract), sign_form(contract, client))
    (signature,) = signatures()
    assert signature.auth_method == "password + emailed code"


def test_a_refused_signature_shows_the_message_and_keeps_the_name(
    make_contract: MakeContract, users: Users, linked
) -> None:
    contract = make_contract(linked.customer)
    client = full_client(users.customer)
    form = {**sign_form(contract, client, typed_name="Dana P."), "consent": ""}
    response = client.post(page_of(contract), form)
    assert response.status_code == 400
    assert "Tick the box to agree to sign electronically." in text_of(response.content)
    assert 'value="Dana P."' in response.content.decode()
    assert signatures() == []


def test_the_pdf_is_a_download_and_a_copy_can_be_checked_without_being_kept(
    make_contract: MakeContract, users: Users, linked
) -> None:
    content = pdf_bytes()
    contract = make_contract(linked.customer, content=content)
    client = full_client(users.customer)
    download = client.get(f"/portal/contracts/{contract.pk}/document/")
    assert download.getvalue() == content
    assert download["Content-Disposition"] == 'attachment; filename="service-agreement.pdf"'
    assert download["Content-Security-Policy"] == "default-src 'none'; sandbox"
    with scopes_disabled():
        documents_before = Document.objects.count()
    verify = f"/portal/contracts/{contract.pk}/verify/"
    same = client.post(verify, {"file": SimpleUploadedFile("copy.pdf", content, "application/pdf")})
    assert "This file matches the original as sent for signature." in text_of(same.content)
    changed = content[:100] + bytes([content[100] ^ 1]) + content[101:]
    other = client.post(verify, {"file": SimpleUploadedFile("copy.pdf", changed, "application/pdf")})
    assert other.status_code == 200
    assert "This file does not match this contract" in text_of(other.content)
    assert hashlib.sha256(changed).hexdigest() in other.content.decode()
    nothing = client.post(verify, {})
    assert nothing.status_code == 400 and "Choose the PDF file to check." in text_of(nothing.content)
    with scopes_disabled():
        assert Document.objects.count() == documents_before
        assert Contract.objects.count() == 1


def test_another_customers_contract_and_drafts_are_404(
    make_contract: MakeContract, users: Users, linked, customer_2, other_customer
) -> None:
    theirs = make_contract(customer_2)
    other_org = make_contract(other_customer)
    draft = make_contract(linked.customer, send=False)
    client = full_client(users.customer)
    for contract in (theirs, other_org, draft):
        for suffix in ("", "document/", "signed/", "confirm/"):
            assert client.get(f"{page_of(contract)}{suffix}").status_code == 404, (contract, suffix)
        assert client.post(page_of(contract), {"typed_name": "X", "consent": "yes"}).status_code == 404
        assert client.post(f"{page_of(contract)}verify/", {}).status_code == 404
    listing = text_of(client.get("/portal/contracts/").content)
    assert "No contracts yet." in listing
    assert signatures() == []


def test_the_nav_shows_contracts_once_one_is_sent(make_contract: MakeContract, users: Users, linked) -> None:
    client = full_client(users.customer)
    assert 'href="/portal/contracts/"' not in client.get("/portal/").content.decode()
    contract = make_contract(linked.customer)
    assert 'href="/portal/contracts/"' in client.get("/portal/").content.decode()
    listing = client.get("/portal/contracts/")
    assert "Service agreement 2025" in text_of(listing.content) and "Waiting for signature" in text_of(
        listing.content
    )
    assert f'href="{page_of(contract)}"' in listing.content.decode()


def test_staff_viewing_as_the_customer_cannot_sign(
    make_contract: MakeContract, users: Users, customer, contact
) -> None:
    contract = make_contract(customer)
    staff = signed_in(users.collector)
    assert staff.post(f"/desk/customers/{customer.pk}/view-as/").status_code == 302
    page = staff.get(page_of(contract))
    assert "Staff cannot sign for the customer." in text_of(page.content)
    refused = staff.post(
        page_of(contract), {"typed_name": "Collector", "consent": "yes", "sha256": contract.sha256}
    )
    assert refused.status_code == 403
    assert signatures() == [] and fresh(contract).state == "sent"
    assert events("openar.contract.signed") == []


# --- a second factor counts for 15 minutes ---------------------------------------------------


def authenticator_app(user: User) -> str:
    """Give ``user`` an authenticator app; returns its secret."""
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def app_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


@pytest.mark.parametrize(("minutes", "at_once"), [(14, True), (16, False)])
def test_a_second_factor_counts_for_15_minutes_after_it_was_used(
    make_contract: MakeContract,
    users: Users,
    linked,
    clock: time_machine.Traveller,
    minutes: int,
    at_once: bool,
) -> None:
    contract = make_contract(linked.customer)
    authenticator_app(users.customer)
    client = full_client(users.customer, mfa="totp")
    clock.shift(datetime.timedelta(minutes=minutes))
    page = client.get(page_of(contract))
    assert ('name="typed_name"' in page.content.decode()) is at_once
    form = {"typed_name": "Dana Payables", "consent": "yes", "consent_text": page.context["consent"]}
    response = client.post(page_of(contract), {**form, "sha256": contract.sha256})
    if at_once:
        assert (response.status_code, response["Location"]) == (302, page_of(contract))
        assert [s.auth_method for s in signatures()] == ["password + authenticator app"]
    else:
        assert (response.status_code, response["Location"]) == (302, f"{page_of(contract)}confirm/")
        assert signatures() == [] and fresh(contract).state == "sent"


def test_a_stale_second_factor_confirms_again_with_the_app_then_signs(
    make_contract: MakeContract, users: Users, linked, clock: time_machine.Traveller
) -> None:
    contract = make_contract(linked.customer)
    secret = authenticator_app(users.customer)
    client = full_client(users.customer, mfa="totp")
    for _ in range(6):  # three hours of use, a page every half hour: the session lives on
        clock.shift(datetime.timedelta(minutes=30))
        assert client.get("/portal/").status_code == 200
    confirm = client.get(f"{page_of(contract)}confirm/")
    text = text_of(confirm.content)
    assert "Signing needs your second factor, used in the last 15 minutes." in text
    again = "/accounts/2fa/reauthenticate/?" + urlencode({"next": page_of(contract)})
    assert f'href="{again.replace("&", "&amp;")}"' in confirm.content.decode()
    assert "You signed in with a password only" not in text

    wrong = client.post(again, {"code": f"{(int(app_code(secret)) + 1) % 1_000_000:06d}"})
    assert wrong.status_code == 200 and signatures() == []
    assert 'name="typed_name"' not in client.get(page_of(contract)).content.decode()
    confirmed = client.post(again, {"code": app_code(secret)})
    assert (confirmed.status_code, confirmed["Location"]) == (302, page_of(contract))
    signed = client.post(page_of(contract), sign_form(contract, client))
    assert (signed.status_code, signed["Location"]) == (302, page_of(contract))
    (signature,) = signatures()
    assert signature.auth_method == "password + authenticator app"


def test_a_stale_second_factor_may_confirm_with_an_emailed_code_instead(
    make_contract: MakeContract,
    users: Users,
    linked,
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks,
) -> None:
    contract = make_contract(linked.customer)
    authenticator_app(users.customer)
    client = full_client(users.customer, mfa="totp")
    clock.shift(datetime.timedelta(minutes=20))
    confirm = f"{page_of(contract)}confirm/"
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(confirm, {"send": "1"}).status_code == 200
    assert mail.outbox[-1].to == ["dana@bolt.example"]
    assert client.post(confirm, {"code": emailed_code()})["Location"] == page_of(contract)
    ready = text_of(client.get(page_of(contract)).content)
    assert "You confirmed it is you: password + emailed code." in ready
    # The emailed code counts for 15 minutes too.
    clock.shift(datetime.timedelta(minutes=16))
    assert client.post(page_of(contract), sign_form(contract, client))["Location"] == confirm
    assert signatures() == [] and fresh(contract).state == "sent"
