"""Ending one session: a person sees where they are signed in and ends exactly the session
they choose (someone else's id ends nothing and answers 404), ending the one they are using
signs them out, and the audit records which browser was signed out, never the session key.

Sessions are made through the real sign-in form, one test client per browser; "ended" is
checked in the session store itself and by the next request of the browser that held it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import time_machine
from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session
from django.test import Client
from django_scopes import scopes_disabled

from factories import Users, text_of
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.identity.models import User
from openar.identity.services import session_end
from openar.tenants.models import Organization

from .test_mfa import NOON, events, sign_in, signed_in_user_id
from .test_sessions import SESSIONS, browser, live_sessions, session_keys, shut_out

ENDED = "openar.identity.session_ended"
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
EDGE_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
)


@pytest.fixture(autouse=True)
def frozen() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


def end_url(session_id: int) -> str:
    return f"/accounts/sessions/{session_id}/end/"


def session_of(client: Client) -> UserSession:
    """The ``UserSession`` recorded for the browser ``client``."""
    return UserSession.objects.get(session_key=client.session.session_key)


def in_store(key: str | None) -> bool:
    """Whether the session store still holds the session ``key`` (a client's own, or one noted
    before the client lost it)."""
    return key is not None and Session.objects.filter(session_key=key).exists()


def three_browsers(user: User) -> tuple[Client, Client, Client]:
    """``user`` signed in on a laptop (the browser the tests act from), a phone and a tablet."""
    laptop = browser(CHROME_LINUX, "198.51.100.60")
    phone = browser(SAFARI_IPHONE, "198.51.100.61")
    tablet = browser(FIREFOX_WINDOWS, "198.51.100.62")
    for client in (laptop, phone, tablet):
        sign_in(client, user.email)
    return laptop, phone, tablet


def test_ending_one_other_session_leaves_this_one_and_the_third(users: Users) -> None:
    user = users.collector
    laptop, phone, tablet = three_browsers(user)
    phone_key = phone.session.session_key

    response = laptop.post(end_url(session_of(phone).pk))
    assert (response.status_code, response["Location"]) == (302, SESSIONS)
    assert "Session ended" in text_of(laptop.get(SESSIONS).content)

    # The session store: the phone's session is gone, the other two are there.
    assert not in_store(phone_key)
    assert in_store(laptop.session.session_key) and in_store(tablet.session.session_key)
    assert live_sessions(user) == 2
    assert session_keys(user) == {laptop.session.session_key, tablet.session.session_key}
    # The phone is signed out at its next request; the laptop and the tablet carry on.
    assert shut_out(phone)
    assert signed_in_user_id(phone) is None
    assert laptop.get("/desk/").status_code == 200
    assert tablet.get("/desk/").status_code == 200


def test_ending_someone_elses_session_answers_404_and_ends_nothing(users: Users) -> None:
    laptop, _, _ = three_browsers(users.collector)
    manager = browser(EDGE_MAC, "198.51.100.70")
    sign_in(manager, users.manager.email)
    theirs = session_of(manager)
    before = set(Session.objects.values_list("session_key", flat=True))

    assert laptop.post(end_url(theirs.pk)).status_code == 404
    assert laptop.post(end_url(theirs.pk + 1000)).status_code == 404  # no such session at all

    assert set(Session.objects.values_list("session_key", flat=True)) == before
    assert UserSession.objects.filter(pk=theirs.pk).exists()
    assert manager.get("/desk/").status_code == 200
    assert laptop.get("/desk/").status_code == 200
    assert events(ENDED) == []
    with pytest.raises(ServiceError):
        session_end(user=users.collector, session_id=theirs.pk, actor=users.collector, ip=None)
    assert in_store(manager.session.session_key)


def test_only_a_signed_in_post_with_a_csrf_token_ends_a_session(users: Users) -> None:
    laptop, phone, _ = three_browsers(users.collector)
    phone_session = session_of(phone)

    assert laptop.get(end_url(phone_session.pk)).status_code == 405
    assert laptop.head(end_url(phone_session.pk)).status_code == 405
    stranger = Client().post(end_url(phone_session.pk))
    assert stranger.status_code == 302 and stranger["Location"].startswith("/accounts/login/")
    assert in_store(phone.session.session_key)

    # A browser that checks CSRF as a real one does: refused without the page's token...
    checked = Client(enforce_csrf_checks=True)
    checked.force_login(users.collector)
    assert checked.post(end_url(phone_session.pk)).status_code == 403
    assert in_store(phone.session.session_key)
    # ...and accepted with the token of the sessions page's own form.
    page = checked.get(SESSIONS).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    response = checked.post(end_url(phone_session.pk), {"csrfmiddlewaretoken": token.group(1)})
    assert (response.status_code, response["Location"]) == (302, SESSIONS)
    assert not in_store(phone.session.session_key)
    assert shut_out(phone)


def test_ending_the_current_session_signs_out(users: Users) -> None:
    laptop, phone, _ = three_browsers(users.collector)
    laptop_key = laptop.session.session_key

    response = laptop.post(end_url(session_of(laptop).pk))
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/")
    assert "signed out" in text_of(laptop.get(response["Location"]).content)
    assert signed_in_user_id(laptop) is None
    assert not in_store(laptop_key)
    assert shut_out(laptop)
    assert laptop_key not in session_keys(users.collector)
    assert phone.get("/desk/").status_code == 200  # the others carry on
    assert live_sessions(users.collector) == 2
    [event] = events(ENDED, users.collector)
    assert event.data["current"] is True


def test_the_audit_names_the_browser_and_never_the_session_key(users: Users, supplier: Organization) -> None:
    laptop, phone, _ = three_browsers(users.collector)
    phone_session = session_of(phone)
    phone_key = phone_session.session_key
    laptop.post(end_url(phone_session.pk))

    [event] = events(ENDED, users.collector)
    assert (event.organization_id, event.actor_id, event.ip) == (
        supplier.pk,
        users.collector.pk,
        "198.51.100.60",  # who ended it, from where
    )
    assert event.data == {
        "session": phone_session.pk,
        "ip": "198.51.100.61",
        "user_agent": SAFARI_IPHONE[:120],
        "current": False,
    }
    with scopes_disabled():
        rows = [json.dumps([e.action, e.data, e.object_id, e.request_id]) for e in AuditEvent.objects.all()]
    assert rows and not [row for row in rows if phone_key in row]


def test_a_session_that_already_ended_is_tidied_away_without_an_audit(users: Users) -> None:
    laptop, phone, _ = three_browsers(users.collector)
    phone_session = session_of(phone)
    Session.objects.filter(session_key=phone_session.session_key).delete()  # expired, say

    alive = session_end(user=users.collector, session_id=phone_session.pk, actor=users.collector, ip=None)
    assert alive is False
    assert not UserSession.objects.filter(pk=phone_session.pk).exists()
    assert events(ENDED) == []
    assert laptop.get("/desk/").status_code == 200


def test_the_page_lists_each_session_with_its_own_end_button(users: Users) -> None:
    laptop, phone, tablet = three_browsers(users.collector)
    sign_in(browser(EDGE_MAC, "198.51.100.80"), users.manager.email)
    mine = {client: session_of(client) for client in (laptop, phone, tablet)}

    content = laptop.get(SESSIONS).content.decode()
    text = text_of(content)
    # One form per session of this person, posting to end exactly that one.
    actions = re.findall(r'<form method="post" action="(/accounts/sessions/\d+/end/)"', content)
    assert sorted(actions) == sorted(end_url(s.pk) for s in mine.values())
    # Readable devices, the addresses, and the marker on this one.
    for label in ("Chrome on Linux", "Safari on iPhone", "Firefox on Windows"):
        assert label in text
    for ip in ("198.51.100.60", "198.51.100.61", "198.51.100.62"):
        assert ip in text
    assert text.count("This device") == 1
    # Each button says which session it ends (visually hidden text, read by screen readers).
    assert "End session: Safari on iPhone, 198.51.100.61" in text
    assert "End session: Chrome on Linux, 198.51.100.60 (this device: ending it signs you out)" in text
    # Allauth's form for all the others is still there; nobody else's session, no keys.
    assert 'action="/accounts/sessions/"' in content and "Sign out of all other sessions" in text
    assert "Edg/" not in content and "198.51.100.80" not in content
    assert not [s for s in mine.values() if s.session_key in content]
    assert "<table" not in content  # stacked cards: nothing to scroll sideways on a phone
