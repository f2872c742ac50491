"""MFA through django-allauth: enrolment forced by the organization's policy, sign-in with an
authenticator app (each code once), recovery codes (each once), a password reset that keeps
MFA, and the audit of all of it (never a secret in it).

Sign-ins go through the real forms with Django's test client; TOTP codes are computed from
the secret with allauth's own HOTP helper, at a clock pinned by time-machine (so a code never
straddles two 30-second periods).
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from allauth.mfa.webauthn.internal.auth import WebAuthn
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client
from django_scopes import scopes_disabled
from fido2.cose import ES256
from fido2.utils import sha256, websafe_decode, websafe_encode
from fido2.webauthn import AttestationObject, AttestedCredentialData, AuthenticatorData, CollectedClientData
from pytest_django.fixtures import Settings

from factories import PASSWORD, Users
from openar.core.models import AuditEvent
from openar.identity.mfa import ENROLMENT_MESSAGE
from openar.identity.models import User
from openar.tenants.models import Organization, Role, SecurityPolicy, policy_for

LOGIN = "/accounts/login/"
MFA_AUTHENTICATE = "/accounts/2fa/authenticate/"
TOTP_ACTIVATE = "/accounts/2fa/totp/activate/"
REAUTHENTICATE = "/accounts/reauthenticate/"
# A moment well inside a 30-second TOTP period.
NOON = datetime.datetime(2025, 6, 30, 12, 0, 10, tzinfo=datetime.UTC)


# --- helpers (test_bruteforce and test_sessions use them too) ----------------------------------


def totp_code(secret: str, *, at: datetime.datetime | None = None) -> str:
    """The code an authenticator app shows for ``secret`` now (allauth's own HOTP math)."""
    moment = (at or datetime.datetime.now(datetime.UTC)).timestamp()
    return format_hotp_value(hotp_value(secret, int(moment) // 30))


def add_totp(user: User) -> str:
    """Give ``user`` an authenticator app (and recovery codes, as enrolment does); returns
    the TOTP secret."""
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    RecoveryCodes.activate(user)
    return secret


class SoftKey:
    """A security key in software (P-256), answering as a browser's WebAuthn API would."""

    def __init__(self, rp_id: str = "testserver") -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(16)
        self.rp_id = rp_id
        self.counter = 0

    def _b64(self, data: bytes) -> str:
        return websafe_encode(data)

    def registration(self) -> dict[str, Any]:
        """The credential ``navigator.credentials.create()`` returns (attestation "none")."""
        public_key = ES256.from_cryptography_key(self.private.public_key())
        credential = AttestedCredentialData.create(bytes(16), self.credential_id, public_key)
        flags = AuthenticatorData.FLAG.UP | AuthenticatorData.FLAG.UV | AuthenticatorData.FLAG.AT
        auth_data = AuthenticatorData.create(sha256(self.rp_id.encode()), flags, 0, credential)
        client_data = CollectedClientData.create(
            "webauthn.create", secrets.token_bytes(16), f"http://{self.rp_id}"
        )
        return {
            "id": self._b64(self.credential_id),
            "rawId": self._b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": self._b64(bytes(client_data)),
                "attestationObject": self._b64(bytes(AttestationObject.create("none", auth_data, {}))),
            },
            "clientExtensionResults": {"credProps": {"rk": False}},
        }

    def assertion(self, challenge: bytes) -> dict[str, Any]:
        """The answer of ``navigator.credentials.get()`` to ``challenge``, touched and verified."""
        self.counter += 1
        flags = AuthenticatorData.FLAG.UP | AuthenticatorData.FLAG.UV
        auth_data = bytes(AuthenticatorData.create(sha256(self.rp_id.encode()), flags, self.counter))
        client_data = CollectedClientData.create("webauthn.get", challenge, f"http://{self.rp_id}")
        signature = self.private.sign(auth_data + client_data.hash, ec.ECDSA(hashes.SHA256()))
        return {
            "id": self._b64(self.credential_id),
            "rawId": self._b64(self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": self._b64(auth_data),
                "clientDataJSON": self._b64(bytes(client_data)),
                "signature": self._b64(signature),
                "userHandle": None,
            },
            "clientExtensionResults": {},
        }


def challenge_of(page: Any) -> bytes:
    """The WebAuthn challenge the code page hands to the browser's script."""
    challenge = page.context["js_data"]["request_options"]["publicKey"]["challenge"]
    return challenge if isinstance(challenge, bytes) else websafe_decode(challenge)


def recovery_codes_of(user: User) -> list[str]:
    authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    codes: list[str] = authenticator.wrap().get_unused_codes()
    return codes


def post_password(client: Client, email: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(LOGIN, {"login": email, "password": password}, **extra)


def signed_in_user_id(client: Client) -> str | None:
    if settings.SESSION_COOKIE_NAME not in client.cookies:
        return None  # (reading client.session would make a session)
    value = client.session.get(SESSION_KEY)
    return str(value) if value is not None else None


def sign_in(client: Client, email: str, *, password: str = PASSWORD, secret: str | None = None) -> None:
    """Through the real sign-in form, then the code step when the person has MFA."""
    response = post_password(client, email, password)
    assert response.status_code == 302, response.content[:500]
    if secret is not None:
        assert response["Location"] == MFA_AUTHENTICATE
        response = client.post(MFA_AUTHENTICATE, {"code": totp_code(secret)})
        assert response.status_code == 302, response.content[:500]
    assert signed_in_user_id(client) is not None, f"{email} is not signed in"


def reauthenticate(client: Client, password: str = PASSWORD) -> None:
    """allauth asks for the password again before any change of authenticators."""
    response = client.post(REAUTHENTICATE, {"password": password})
    assert response.status_code == 302, response.content[:500]


def activate_totp(client: Client) -> str:
    """Set up an authenticator app through the real pages; returns its secret."""
    client.get(TOTP_ACTIVATE)
    secret: str = client.session["mfa.totp.secret"]
    response = client.post(TOTP_ACTIVATE, {"code": totp_code(secret)})
    assert response.status_code == 302, response.content[:500]
    return secret


def events(action: str, user: User | None = None) -> list[AuditEvent]:
    with scopes_disabled():
        queryset = AuditEvent.objects.filter(action=action)
        if user is not None:
            queryset = queryset.filter(object_type="identity.user", object_id=str(user.pk))
        return list(queryset.order_by("pk"))


def assert_no_secret_in_audit(*secrets: str) -> None:
    """No audit row carries any of ``secrets`` (passwords, TOTP secrets, codes, tokens)."""
    with scopes_disabled():
        rows = [json.dumps([e.action, e.data, e.object_id]) for e in AuditEvent.objects.all()]
    assert rows, "no audit event at all: the check would pass vacuously"
    leaks = [(secret, row) for secret in secrets if secret for row in rows if secret in row]
    assert leaks == []


def set_policy(organization: Organization, **values: Any) -> SecurityPolicy:
    policy = policy_for(organization)
    for name, value in values.items():
        setattr(policy, name, value)
    policy.save()
    return policy


@pytest.fixture
def enforce(settings: Settings) -> None:
    """The policy is enforced (tests about other things switch it off; see settings/test.py)."""
    settings.OPENAR_MFA_ENFORCE = True


@pytest.fixture
def frozen() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


# --- forced enrolment ---------------------------------------------------------------------------


OPEN_WHILE_ENROLLING = [
    "/accounts/2fa/",
    TOTP_ACTIVATE,
    "/accounts/sessions/",
    "/accounts/password/change/",
    "/static/openar/app.css",
    "/healthz",
]
CLOSED_WHILE_ENROLLING = ["/", "/desk/", "/desk/customers/", "/portal/", "/welcome/", "/nowhere/"]


@pytest.mark.usefixtures("enforce", "frozen")
def test_staff_are_sent_to_set_up_an_authenticator_until_they_have_one(users: Users) -> None:
    client = Client()
    sign_in(client, users.collector.email)

    redirected = client.get("/desk/")
    assert (redirected.status_code, redirected["Location"]) == (302, TOTP_ACTIVATE)
    # allauth asks for the password again before an authenticator is added.
    asked = client.get(TOTP_ACTIVATE)
    assert (asked.status_code, asked["Location"]) == (
        302,
        f"{REAUTHENTICATE}?next={TOTP_ACTIVATE.replace('/', '%2F')}",
    )
    reauthenticate(client)
    page = client.get(TOTP_ACTIVATE)
    assert page.status_code == 200
    assert ENROLMENT_MESSAGE in page.content.decode()  # says why
    for path in CLOSED_WHILE_ENROLLING:
        response = client.get(path)
        assert (response.status_code, response.get("Location")) == (302, TOTP_ACTIVATE), path
    assert client.post("/desk/customers/").status_code == 302  # not only GETs
    htmx = client.get("/desk/customers/", HTTP_HX_REQUEST="true")
    assert (htmx.status_code, htmx["HX-Redirect"]) == (204, TOTP_ACTIVATE)
    for path in OPEN_WHILE_ENROLLING:
        response = client.get(path)
        assert response.get("Location") != TOTP_ACTIVATE, path
        assert response.status_code in (200, 302), path

    # Activation: the secret is the one the page showed (kept in the session by allauth).
    client.get(TOTP_ACTIVATE)
    secret = client.session["mfa.totp.secret"]
    wrong = client.post(TOTP_ACTIVATE, {"code": "000000" if totp_code(secret) != "000000" else "111111"})
    assert wrong.status_code == 200 and "Incorrect code" in wrong.content.decode()
    assert not Authenticator.objects.filter(user=users.collector).exists()
    activated = client.post(TOTP_ACTIVATE, {"code": totp_code(secret)})
    assert (activated.status_code, activated["Location"]) == (302, "/accounts/2fa/recovery-codes/")
    assert set(Authenticator.objects.filter(user=users.collector).values_list("type", flat=True)) == {
        Authenticator.Type.TOTP,
        Authenticator.Type.RECOVERY_CODES,
    }
    codes_page = client.get("/accounts/2fa/recovery-codes/").content.decode()
    assert all(code in codes_page for code in recovery_codes_of(users.collector))
    assert client.get("/desk/").status_code == 200


@pytest.mark.usefixtures("enforce", "frozen")
@pytest.mark.parametrize(
    ("role", "forced"),
    [
        (Role.ADMIN, True),
        (Role.MANAGER, True),
        (Role.COLLECTOR, True),
        (Role.CREDITOR, True),
        (Role.CUSTOMER, False),
    ],
)
def test_the_default_policy_forces_staff_and_creditor_clients_but_not_customers(
    users: Users, role: str, forced: bool
) -> None:
    user: User = getattr(users, str(role))
    client = Client()
    sign_in(client, user.email)
    response = client.get("/")
    assert (response.get("Location") == TOTP_ACTIVATE) is forced


@pytest.mark.usefixtures("enforce", "frozen")
def test_nobody_is_forced_when_the_policy_is_off_and_customers_are_when_it_is_on(
    users: Users, supplier: Organization
) -> None:
    set_policy(supplier, mfa_staff=False, mfa_customers=True)
    staff, customer = Client(), Client()
    sign_in(staff, users.collector.email)
    sign_in(customer, users.customer.email)

    assert staff.get("/desk/").status_code == 200
    assert customer.get("/portal/")["Location"] == TOTP_ACTIVATE


@pytest.mark.usefixtures("frozen")
def test_the_switch_for_other_tests_is_the_only_way_off(users: Users, settings: Settings) -> None:
    """With the enforcement switched off (settings/test.py, for tests about other things) the
    desk opens; base settings keep it on."""
    from openar.settings import base

    settings.OPENAR_MFA_ENFORCE = False
    client = Client()
    sign_in(client, users.collector.email)
    assert client.get("/desk/").status_code == 200
    assert base.OPENAR_MFA_ENFORCE is True


# --- signing in with a second factor ------------------------------------------------------------


@pytest.mark.usefixtures("enforce")
def test_signing_in_asks_for_the_code_and_each_code_works_once(
    users: Users, frozen: time_machine.Traveller
) -> None:
    user = users.collector
    secret = add_totp(user)

    client = Client()
    response = post_password(client, user.email)
    assert (response.status_code, response["Location"]) == (302, MFA_AUTHENTICATE)
    assert signed_in_user_id(client) is None  # the password alone signs nobody in
    assert client.get("/desk/")["Location"].startswith(LOGIN)
    page = client.get(MFA_AUTHENTICATE)
    assert page.status_code == 200 and b"Two-step verification" in page.content

    wrong = client.post(
        MFA_AUTHENTICATE, {"code": totp_code(secret, at=NOON - datetime.timedelta(minutes=5))}
    )
    assert wrong.status_code == 200 and "Incorrect code" in wrong.content.decode()
    assert signed_in_user_id(client) is None

    code = totp_code(secret)
    response = client.post(MFA_AUTHENTICATE, {"code": code})
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(user.pk)
    assert client.get("/desk/").status_code == 200

    # The same code, again, within its 30 seconds: refused (someone looking over a shoulder).
    again = Client()
    assert post_password(again, user.email)["Location"] == MFA_AUTHENTICATE
    replay = again.post(MFA_AUTHENTICATE, {"code": code})
    assert replay.status_code == 200 and "Incorrect code" in replay.content.decode()
    assert signed_in_user_id(again) is None

    # The next period's code works.
    frozen.shift(datetime.timedelta(seconds=30))
    response = again.post(MFA_AUTHENTICATE, {"code": totp_code(secret)})
    assert response.status_code == 302 and signed_in_user_id(again) == str(user.pk)


@pytest.mark.usefixtures("enforce", "frozen")
def test_recovery_codes_work_once_each(users: Users) -> None:
    user = users.manager
    add_totp(user)
    first, second = recovery_codes_of(user)[:2]

    client = Client()
    post_password(client, user.email)
    assert client.post(MFA_AUTHENTICATE, {"code": first}).status_code == 302
    assert signed_in_user_id(client) == str(user.pk)
    assert first not in recovery_codes_of(user)

    reuse = Client()
    post_password(reuse, user.email)
    response = reuse.post(MFA_AUTHENTICATE, {"code": first})
    assert response.status_code == 200 and "Incorrect code" in response.content.decode()
    assert signed_in_user_id(reuse) is None
    assert reuse.post(MFA_AUTHENTICATE, {"code": second}).status_code == 302
    assert signed_in_user_id(reuse) == str(user.pk)
    assert len(recovery_codes_of(user)) == 8


@pytest.mark.usefixtures("enforce", "frozen")
def test_a_security_key_is_a_second_factor(users: Users) -> None:
    user = users.collector
    key = SoftKey()
    WebAuthn.add(user, "Desk key", key.registration())

    client = Client()
    assert client.get("/desk/")["Location"].startswith(LOGIN)
    assert post_password(client, user.email)["Location"] == MFA_AUTHENTICATE
    page = client.get(MFA_AUTHENTICATE)
    assert b'id="mfa_webauthn_authenticate"' in page.content  # offered to people who have a key

    stranger = SoftKey()
    stranger.credential_id = secrets.token_bytes(16)
    wrong = client.post(MFA_AUTHENTICATE, {"credential": json.dumps(stranger.assertion(challenge_of(page)))})
    assert wrong.status_code == 200 and signed_in_user_id(client) is None

    page = client.get(MFA_AUTHENTICATE)
    response = client.post(MFA_AUTHENTICATE, {"credential": json.dumps(key.assertion(challenge_of(page)))})
    assert response.status_code == 302, response.content[:500]
    assert signed_in_user_id(client) == str(user.pk)
    assert client.get("/desk/").status_code == 200  # a key satisfies the policy
    assert [e.data["mfa"] for e in events("openar.identity.signed_in", user)] == [["webauthn"]]


@pytest.mark.usefixtures("enforce", "frozen")
def test_people_without_a_key_are_not_offered_one(users: Users) -> None:
    add_totp(users.collector)
    client = Client()
    post_password(client, users.collector.email)
    assert b"mfa_webauthn_authenticate" not in client.get(MFA_AUTHENTICATE).content


@pytest.mark.usefixtures("enforce", "frozen")
def test_a_password_reset_keeps_mfa(users: Users) -> None:
    user = users.admin
    secret = add_totp(user)
    new_password = "a brand new passphrase for acme"

    client = Client()
    assert client.post("/accounts/password/reset/", {"email": user.email}).status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+/)", mail.outbox[0].body)
    assert link is not None, mail.outbox[0].body
    opened = client.get(link.group(1))
    assert opened.status_code == 302  # allauth moves the key out of the address
    form = opened["Location"]
    done = client.post(form, {"password1": new_password, "password2": new_password})
    assert done.status_code == 302, done.content[:500]

    assert signed_in_user_id(client) is None  # a reset signs nobody in
    assert client.get("/desk/")["Location"].startswith(LOGIN)
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).count() == 1
    response = post_password(client, user.email, new_password)
    assert (response.status_code, response["Location"]) == (302, MFA_AUTHENTICATE)
    assert signed_in_user_id(client) is None
    assert client.post(MFA_AUTHENTICATE, {"code": totp_code(secret)}).status_code == 302
    assert signed_in_user_id(client) == str(user.pk)
    assert len(events("openar.identity.password_reset", user)) == 1
    assert_no_secret_in_audit(new_password, PASSWORD, secret, link.group(1))


# --- audit ----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("enforce")
def test_sign_ins_failures_and_authenticator_changes_are_audited_without_secrets(
    users: Users,
    supplier: Organization,
    frozen: time_machine.Traveller,
    django_capture_on_commit_callbacks: Any,
) -> None:
    user = users.collector
    client = Client()
    assert post_password(client, user.email, "not the password").status_code == 200
    assert post_password(client, "nobody@nowhere.example", "not the password").status_code == 200
    sign_in(client, user.email)
    reauthenticate(client)
    with django_capture_on_commit_callbacks(execute=True):  # allauth signals after the commit
        secret = activate_totp(client)
    first_code = totp_code(secret)
    codes = recovery_codes_of(user)

    # Sign in again with the code; one wrong code first.
    frozen.shift(datetime.timedelta(seconds=30))
    other = Client()
    post_password(other, user.email)
    assert other.post(MFA_AUTHENTICATE, {"code": "12345678"}).status_code == 200
    second_code = totp_code(secret)
    assert other.post(MFA_AUTHENTICATE, {"code": second_code}).status_code == 302

    # Turn the app off (allauth asks for the password again first).
    reauthenticate(other)
    with django_capture_on_commit_callbacks(execute=True):
        removed = other.post("/accounts/2fa/totp/deactivate/")
    assert removed.status_code == 302, removed.content[:300]
    assert not Authenticator.objects.filter(user=user).exists()

    failed = events("openar.identity.sign_in_failed")
    assert [(e.object_id, e.data["factor"], e.organization_id) for e in failed] == [
        (str(user.pk), "password", supplier.pk)  # the unknown address is in no organization
    ]
    assert failed[0].ip == "127.0.0.1"
    signed_in = events("openar.identity.signed_in", user)
    assert [e.data["methods"] for e in signed_in] == [["password"], ["mfa", "password"]]
    assert signed_in[1].data["mfa"] == ["totp"]
    assert all(e.actor_id == user.pk and e.organization_id == supplier.pk for e in signed_in)
    assert [e.data["reauthentication"] for e in events("openar.identity.mfa_failed", user)] == [False]
    assert sorted(e.data["type"] for e in events("openar.identity.authenticator_added", user)) == [
        "recovery_codes",
        "totp",
    ]
    assert sorted(e.data["type"] for e in events("openar.identity.authenticator_removed", user)) == [
        "recovery_codes",
        "totp",
    ]
    assert_no_secret_in_audit(
        PASSWORD,
        "not the password",
        secret,
        first_code,
        second_code,
        "12345678",
        *codes,
        client.session.session_key or "",
        other.session.session_key or "",
    )


# --- the pages, in our layout ---------------------------------------------------------------------


@pytest.mark.usefixtures("enforce", "frozen")
def test_the_mfa_pages_render_in_our_layout(users: Users) -> None:
    client = Client()
    sign_in(client, users.admin.email)
    reauthenticate(client)
    activate = client.get(TOTP_ACTIVATE).content.decode()
    assert '<link rel="stylesheet" href="/static/openar/app.css">' in activate
    assert 'class="card card--narrow allauth"' in activate
    assert client.session["mfa.totp.secret"] in activate  # for people who cannot scan
    assert 'src="data:image/svg+xml;base64,' in activate
    assert 'autocomplete="one-time-code"' in activate

    security = client.get("/accounts/2fa/").content.decode()
    for link in ("/accounts/2fa/totp/activate/", "/accounts/sessions/", "/accounts/password/change/"):
        assert f'href="{link}"' in security
    # WebAuthn (security keys, passkeys) is offered; its page carries the creation options.
    add_key = client.get("/accounts/2fa/webauthn/add/")
    assert add_key.status_code == 200
    assert "publicKey" in add_key.content.decode()


@pytest.mark.usefixtures("enforce", "frozen")
def test_every_account_and_mfa_page_renders_in_our_layout(users: Users) -> None:
    user = users.admin
    add_totp(user)
    WebAuthn.add(user, "Desk key", SoftKey().registration())
    anonymous = Client()
    for path in ("/accounts/login/", "/accounts/password/reset/"):
        response = anonymous.get(path)
        assert response.status_code == 200, path
    client = Client()
    client.force_login(user)
    reauthenticate(client)
    problems = []
    for path in (
        "/accounts/2fa/",
        "/accounts/2fa/totp/deactivate/",
        "/accounts/2fa/recovery-codes/",
        "/accounts/2fa/recovery-codes/generate/",
        "/accounts/2fa/webauthn/",
        "/accounts/2fa/webauthn/add/",
        "/accounts/2fa/reauthenticate/",
        "/accounts/reauthenticate/",
        "/accounts/sessions/",
        "/accounts/password/change/",
        "/accounts/logout/",
    ):
        response = client.get(path)
        page = response.content.decode()
        if response.status_code != 200:
            problems.append(f"{path}: {response.status_code}")
        elif 'href="/static/openar/app.css"' not in page or "<h1>" not in page:
            problems.append(f"{path}: not in our layout")
    assert problems == []


@pytest.mark.usefixtures("frozen")
def test_the_top_bar_links_signed_in_people_to_their_security_page(users: Users) -> None:
    client = Client()
    sign_in(client, users.customer.email)
    page = client.get("/portal/").content.decode()
    assert '<a class="link-button" href="/accounts/2fa/">Security</a>' in page
    assert "Security</a>" not in Client().get(LOGIN).content.decode()
