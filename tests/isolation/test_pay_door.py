"""The isolation harness for the login-free pay page (``/pay/``): a pay-page link's session
sees what is past due on its own account and nothing else, neither of another customer or
organization, nor of its own account beyond the pay page (its invoices not yet due, staff
notes, documents, the portal and the desk)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client
from django_scopes import scope

from factories import NOON_ON_TODAY, row_counts
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink

from .conftest import FILLERS, Account, Route, World, _walk, door_routes
from .test_isolation import body_of, expect_404, fetch, foreign_paths, leaked


def pay_routes() -> list[Route]:
    """The pay page's routes, but the link's own address (``/pay/<token>/``: it opens a
    session, it shows nothing)."""
    from openar import urls

    routes = []
    for template, namespaces, entry in _walk(urls.urlpatterns, "/", ()):
        if namespaces[:1] != ("pay",) or entry.name == "open":
            continue
        names = [part.split(">")[0].split(":")[-1] for part in template.split("<")[1:]]
        assert all(name in FILLERS for name in names), f"{template}: add a filler"
        routes.append(Route("pay", f"pay:{entry.name}", template, tuple(names), ()))
    return routes


ROUTES = pay_routes()


def pay_session(account: Account) -> Client:
    with scope(organization=account.organization):
        issued = magic_link_create(contact=account.contact, scope_=MagicLink.Scope.PAY)
    client = Client()
    client.get(urlsplit(issued.url).path)
    assert client.post("/l/confirm/")["Location"] == "/pay/"
    return client


def test_the_harness_knows_the_pay_pages() -> None:
    names = {route.name for route in ROUTES}
    assert names >= {"pay:home", "pay:checkout", "pay:promise", "pay:plan", "pay:payment"}


@pytest.mark.parametrize(
    "target",
    ["B", "X", "D"],
    ids=["same-organization customer", "other organization", "agency debtor"],
)
def test_another_customers_ids_are_404(world: World, target: str) -> None:
    me, them = world.account("A"), world.account(target)
    client = pay_session(me)
    secrets = world.secrets_outside([me])
    before = row_counts()
    problems = [
        problem
        for route in ROUTES
        if route.params
        for path in foreign_paths(route, own=me.ids, foreign=them.ids)
        for problem in expect_404(client, path, secrets)
    ]
    assert problems == []
    assert row_counts() == before


def test_the_pay_pages_show_only_what_is_past_due_on_the_account(world: World) -> None:
    me = world.account("A")
    upcoming = me.invoices[1]  # due ten days after factories.TODAY: not the pay page's business
    forbidden = world.secrets_outside([me]) | {
        me.internal_note.summary,
        me.hidden_document.title,
        me.document.title,
        upcoming.number,
        me.membership.user.email,
    }
    problems = []
    with time_machine.travel(NOON_ON_TODAY, tick=False):
        assert upcoming.due_date > me.organization.today()
        client = pay_session(me)
        for route in ROUTES:
            if route.params:
                continue
            response = client.get(route.fill(me.ids))
            if response.status_code != 200:
                problems.append(f"{route.template}: {response.status_code}")
            elif found := leaked(body_of(response), forbidden):
                problems.append(f"{route.template}: shows {found}")
        assert me.invoices[0].number in body_of(client.get("/pay/"))  # the harness is not vacuous
    assert problems == []


def test_a_pay_session_opens_no_page_of_the_portal_the_client_portal_or_the_desk(world: World) -> None:
    me = world.account("A")
    client = pay_session(me)
    before = row_counts()
    problems = []
    for route in door_routes():
        if route.unfillable:  # (that one fails test_every_object_route_can_be_filled)
            continue
        path = route.fill(me.ids)
        response = fetch(client, path)
        if response.status_code not in (302, 403, 404):
            problems.append(f"{path}: {response.status_code}")
        if response.status_code == 302 and not response["Location"].startswith("/accounts/login/"):
            problems.append(f"{path}: redirects to {response['Location']}")
        if found := leaked(body_of(response), me.secrets - {me.invoices[0].number, me.contact.name}):
            problems.append(f"{path}: shows {found}")
    assert problems == []
    assert row_counts() == before
