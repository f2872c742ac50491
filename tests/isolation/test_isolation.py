"""Tenant and customer isolation of the portal and the desk, route by route.

The routes come from the URL conf (``conftest.door_routes``): a page added later is checked
without touching this file, and one whose parameters the harness cannot fill fails here.
For every object route: a foreign id is a 404 that says nothing about the foreign object, and
the signed-in person's own ids give 200 with their own data (so the 404s are not vacuous).
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from django.apps import apps
from django.db.models import Count
from django.http.response import HttpResponseBase
from django.test import Client
from django_scopes import ScopeError, scope, scopes_disabled
from pypdf import PdfReader

from factories import row_counts, signed_in
from openar.core.models import TenantModel
from openar.identity.models import User
from openar.tenants.models import Membership, Organization, Role
from openar.tenants.permissions import ROLE_PERMISSIONS

from .conftest import DOORS, PDF_MARKER, Account, Route, World, door_routes, object_routes

ROUTES = door_routes()
OBJECT_ROUTES = object_routes()
PORTAL_ROUTES = [route for route in ROUTES if route.door == "portal"]
DESK_ROUTES = [route for route in ROUTES if route.door == "desk"]
PORTAL_OBJECT_ROUTES = [route for route in OBJECT_ROUTES if route.door == "portal"]
DESK_OBJECT_ROUTES = [route for route in OBJECT_ROUTES if route.door == "desk"]
DESK_NESTED_ROUTES = [route for route in DESK_OBJECT_ROUTES if len(route.params) > 1]
# (A route the harness cannot fill yet fails test_every_object_route_can_be_filled.)
CLIENT_ROUTES = [route for route in ROUTES if route.door == "client" and not route.unfillable]
CLIENT_OBJECT_ROUTES = [route for route in OBJECT_ROUTES if route.door == "client" and not route.unfillable]

# The object routes that exist today: if the walk stops finding them, the harness is broken.
KNOWN_OBJECT_ROUTES = {
    "portal:invoice",
    "portal:document_download",
    "desk:customer",
    "desk:invoice",
    "desk:statement_pdf",
    "desk:document_download",
    "portal:invoice_pdf",
    "portal:invoice_documents_zip",
    "desk:invoice_pdf",
    "desk:customer_documents",
    "desk:document_upload",
    "desk:document_visibility",
    "client:account",
    "client:document_download",
    "client:contact_edit",
    "client:hold_release",
    "client:thread",
    "client:payment_report",
    "client:placement",
    "desk:client_payment",
}

# Files without a footer that list no account by design (a blank CSV template, figures per
# month): they must answer 200 to their own users, and show nothing of anyone else.
LISTS_NO_ACCOUNT = {"client:placements_template", "client:reports_monthly_csv"}

# What the page of one object must show, per route parameter (own-id requests).
MARKERS: dict[str, Callable[[Account], str]] = {
    "customer_id": lambda a: a.customer.name,
    "invoice_id": lambda a: a.invoices[0].number,
    "line_id": lambda a: a.lines[0].description,
    "invoice_line_id": lambda a: a.lines[0].description,
    "payment_id": lambda a: a.payment.reference,
    "credit_note_id": lambda a: a.credit_note.number,
    "document_id": lambda a: f"{PDF_MARKER}{a.tag}",
    "contact_id": lambda a: a.contact.name,
    "activity_id": lambda a: a.activities[0].summary,
    "note_id": lambda a: a.internal_note.summary,
    "membership_id": lambda a: a.membership.user.email,
    "template_id": lambda a: a.template.name,
    "policy_id": lambda a: a.policy.name,
    "step_id": lambda a: a.step.policy.name,
    "message_id": lambda a: a.message.subject,
    "hold_id": lambda a: a.hold.reason,
    "thread_id": lambda a: a.thread.subject,
    "setup_id": lambda a: a.customer.number,  # the saved card's label is the same everywhere
    "promise_id": lambda a: a.promise.note,  # the desk shows staff the promise's note
    "plan_id": lambda a: a.invoices[0].number,  # the plan's invoice
    "task_id": lambda a: a.task.summary,
    "contract_id": lambda a: a.contract.title,
    "dispute_id": lambda a: f"Dispute comment {a.tag}",
    "conversation_id": lambda a: f"Creditor question {a.tag}",
    "report_id": lambda a: f"DIRECT-{a.tag}",
    "import_id": lambda a: f"placement-{a.tag.lower()}.csv",
}


# --- helpers ------------------------------------------------------------------------------------


ADMIN_PERMS = frozenset(str(perm) for perm in ROLE_PERMISSIONS[Role.ADMIN])


def role_perms(role: str) -> frozenset[str]:
    return frozenset(str(perm) for perm in ROLE_PERMISSIONS[role])


def staff_perms(world: World, slug: str) -> frozenset[str]:
    with scopes_disabled():
        role = Membership.objects.get(user=world.staff[slug]).role
    return role_perms(role)


def body_of(response: HttpResponseBase) -> str:
    """Everything a reader of the response could see: the HTML (escaped and unescaped), the
    raw bytes of a download, and the text of a PDF."""
    raw = (
        b"".join(response.streaming_content)  # type: ignore[attr-defined]
        if response.streaming
        else response.content  # type: ignore[attr-defined]
    )
    text = raw.decode("utf-8", errors="replace")
    parts = [text, html.unescape(text)]
    if raw.startswith(b"%PDF"):
        reader = PdfReader(io.BytesIO(raw))
        parts += [page.extract_text() for page in reader.pages]
        parts.append(str(reader.metadata or ""))
    return "\n".join(parts)


def leaked(body: str, secrets: set[str]) -> list[str]:
    return sorted(secret for secret in secrets if secret in body)


def foreign_paths(route: Route, *, own: dict[str, int], foreign: dict[str, int]) -> Iterator[str]:
    """The route with every id foreign, then (for nested routes) with one id foreign at a time:
    a foreign invoice under one's own customer must 404 as well."""
    yield route.fill(foreign)
    if len(route.params) > 1:
        for param in route.params:
            yield route.fill({**own, param: foreign[param]})


def fetch(client: Client, path: str) -> HttpResponseBase:
    """GET the path; an action that only takes POST (405) is POSTed, empty, instead: it must
    refuse a foreign id just as a page must."""
    response = client.get(path)
    if response.status_code == 405:
        response = client.post(path)
    return response


def expect_404(client: Client, path: str, secrets: set[str], *, forbidden: bool = False) -> list[str]:
    """``forbidden``: the viewer's role lacks what the route requires, so a 403 (which says
    nothing about the id) is right too."""
    response = fetch(client, path)
    problems = []
    if response.status_code != 404 and not (forbidden and response.status_code == 403):
        problems.append(f"{path}: {response.status_code}, expected 404")
    found = leaked(body_of(response), secrets)
    if found:
        problems.append(f"{path}: the response shows {found}")
    return problems


# --- the harness itself -------------------------------------------------------------------------


def test_every_object_route_can_be_filled() -> None:
    """A new portal or desk route with a parameter the harness cannot fill (a new id name, a
    uuid or str converter, a regex route) fails here until FILLERS knows it."""
    unfillable = {route.name: route.unfillable for route in ROUTES if route.unfillable}
    assert unfillable == {}, (
        "routes the isolation harness cannot fill (add a filler to tests/isolation/conftest.py "
        f"FILLERS and the object to the world): {unfillable}"
    )
    found = {route.name for route in OBJECT_ROUTES}
    assert found >= KNOWN_OBJECT_ROUTES, f"the URL walk missed {KNOWN_OBJECT_ROUTES - found}"
    assert {route.name for route in PORTAL_ROUTES} >= {"portal:overview", "portal:invoices"}
    assert {route.name for route in DESK_ROUTES} >= {"desk:customers"}
    assert {route.name for route in CLIENT_ROUTES} >= {"client:accounts", "client:threads"}
    assert all(route.template.startswith(f"/{route.door}/") for route in ROUTES)


def test_the_world_holds_what_the_harness_expects(world: World) -> None:
    for account in world.accounts.values():
        assert len(account.invoices) == 2
        assert len(account.lines) == 3
        assert account.document.file.read() == account.pdf
        assert account.pdf.startswith(b"%PDF") and f"{PDF_MARKER}{account.tag}".encode() in account.pdf
        assert set(account.ids) >= {"customer_id", "invoice_id", "document_id"}
    # every account's ids differ from every other's: a foreign id is never accidentally own
    for param in ("customer_id", "invoice_id", "document_id", "payment_id", "credit_note_id"):
        values = [account.ids[param] for account in world.accounts.values()]
        assert len(set(values)) == len(values), param


# --- foreign ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["B", "X", "Y", "D"],
    ids=["same-organization customer", "other organization", "other organization 2", "agency debtor"],
)
def test_portal_refuses_another_customers_ids(world: World, target: str) -> None:
    me, them = world.account("A"), world.account(target)
    client = signed_in(world.portal_users["A"])
    secrets = world.secrets_outside([me])
    assert them.customer.name in secrets and them.invoices[0].number in secrets
    before = row_counts()

    problems = [
        problem
        for route in PORTAL_OBJECT_ROUTES
        for path in foreign_paths(route, own=me.ids, foreign=them.ids)
        for problem in expect_404(client, path, secrets)
    ]

    assert PORTAL_OBJECT_ROUTES
    assert problems == []
    assert row_counts() == before  # a refused request writes nothing


@pytest.mark.parametrize(
    ("viewer", "own", "target"),
    [
        ("acme", "A", "X"),
        ("acme", "A", "Y"),
        ("acme", "A", "D"),
        ("globex", "X", "A"),
        ("northwind", "D", "B"),
    ],
    ids=[
        "acme-sees-globex",
        "acme-sees-globex-2",
        "acme-sees-agency",
        "globex-sees-acme",
        "agency-sees-acme",
    ],
)
def test_desk_refuses_another_organizations_ids(world: World, viewer: str, own: str, target: str) -> None:
    mine, them = world.account(own), world.account(target)
    client = signed_in(world.staff[viewer])
    secrets = world.secrets_outside(world.of(mine.organization))
    assert them.customer.name in secrets and them.invoices[0].number in secrets
    before = row_counts()

    problems = [
        problem
        for route in DESK_OBJECT_ROUTES
        for path in foreign_paths(route, own=mine.ids, foreign=them.ids)
        for problem in expect_404(
            client, path, secrets, forbidden=not route.open_to(staff_perms(world, viewer))
        )
    ]

    assert DESK_OBJECT_ROUTES
    assert problems == []
    assert row_counts() == before


def test_desk_nested_ids_must_belong_together(world: World) -> None:
    """Customer A's page with customer B's invoice (same organization) is a 404, not B's invoice."""
    a, b = world.account("A"), world.account("B")
    client = signed_in(world.staff["acme"])
    problems = []
    for route in DESK_OBJECT_ROUTES:
        if len(route.params) < 2:
            continue
        for param in route.params:
            path = route.fill({**a.ids, param: b.ids[param]})
            response = fetch(client, path)
            if response.status_code != 404:
                problems.append(f"{path}: {response.status_code}, expected 404")
    assert problems == []


# --- own ids: the harness is not vacuous --------------------------------------------------------


def expect_200_showing(
    client: Client, route: Route, account: Account, perms: frozenset[str] = ADMIN_PERMS
) -> list[str]:
    """Own ids: 200 showing the object; 403 where the role lacks what the route requires."""
    path = route.fill(account.ids)
    if not route.open_to(perms):
        response = fetch(client, path)
        return [] if response.status_code == 403 else [f"{path}: {response.status_code}, expected 403"]
    response = client.get(path)
    if response.status_code == 405:  # an action (POST only): own ids are accepted
        response = client.post(path)  # (empty: a form may answer 400 with its own errors)
        return [] if response.status_code in (200, 302, 400) else [f"POST {path}: {response.status_code}"]
    if response.status_code != 200:
        return [f"{path}: {response.status_code}, expected 200"]
    body = body_of(response)
    wanted = [MARKERS[param](account) for param in route.params]
    if not route.params:
        # A desk page shows the organization's name (its footer); a CSV export has no footer,
        # but lists the organization's customers by number.
        export = response.get("Content-Type", "").startswith("text/csv")
        if route.name not in LISTS_NO_ACCOUNT:
            wanted.append(
                account.customer.number if route.door == "portal" or export else account.organization.name
            )
    missing = [marker for marker in wanted if marker not in body]
    return [f"{path}: the page does not show {missing}"] if missing else []


def test_portal_answers_the_customers_own_ids(world: World) -> None:
    client = signed_in(world.portal_users["A"])
    perms = role_perms(Role.CUSTOMER)
    problems = [
        p for route in PORTAL_ROUTES for p in expect_200_showing(client, route, world.account("A"), perms)
    ]
    assert problems == []


@pytest.mark.parametrize("role", ["admin", "manager", "collector"])
def test_desk_answers_its_own_organizations_ids(world: World, role: str) -> None:
    client = signed_in(getattr(world.users, role))
    problems = [
        problem
        for route in DESK_ROUTES
        for own in ("A", "B")
        for problem in expect_200_showing(client, route, world.account(own), role_perms(role))
    ]
    assert problems == []


def test_desk_of_the_other_tenants_answers_their_own_ids(world: World) -> None:
    problems = [
        problem
        for viewer, own in (("globex", "X"), ("globex", "Y"), ("northwind", "D"), ("northwind", "E"))
        for route in DESK_ROUTES
        for problem in expect_200_showing(
            signed_in(world.staff[viewer]), route, world.account(own), staff_perms(world, viewer)
        )
    ]
    assert problems == []


# --- what each page lists -----------------------------------------------------------------------

QUERIES_TO_LIST_MORE = ("", "?status=all", "?status=paid&page=2", "?sort=-balance", "?status=past_due")


def test_portal_pages_show_nothing_outside_the_account(world: World) -> None:
    """Not another customer's rows, and not the account's own staff-only entries."""
    me = world.account("A")
    forbidden = world.secrets_outside([me]) | {
        me.internal_note.summary,
        me.hidden_document.title,
        me.hidden_document.filename,
    }
    client = signed_in(world.portal_users["A"])
    problems = []
    for route in PORTAL_ROUTES:
        for query in QUERIES_TO_LIST_MORE:
            path = route.fill(me.ids) + query
            response = client.get(path)
            if response.status_code == 405:  # an action, not a page: nothing to list
                break
            if response.status_code != 200:
                problems.append(f"{path}: {response.status_code}")
            elif found := leaked(body_of(response), forbidden):
                problems.append(f"{path}: shows {found}")
    assert problems == []


@pytest.mark.parametrize(("viewer", "own"), [("acme", "A"), ("globex", "X"), ("northwind", "D")])
def test_desk_pages_show_nothing_of_other_organizations(world: World, viewer: str, own: str) -> None:
    mine = world.account(own)
    forbidden = world.secrets_outside(world.of(mine.organization))
    client = signed_in(world.staff[viewer])
    problems = []
    for route in DESK_ROUTES:
        for query in QUERIES_TO_LIST_MORE:
            path = route.fill(mine.ids) + query
            response = client.get(path)
            if response.status_code == 405:  # an action, not a page: nothing to list
                continue
            if response.status_code == 403 and not route.open_to(staff_perms(world, viewer)):
                continue
            if response.status_code != 200:
                problems.append(f"{path}: {response.status_code}")
            elif found := leaked(body_of(response), forbidden):
                problems.append(f"{path}: shows {found}")
    assert problems == []


# --- who may enter which door -------------------------------------------------------------------


@pytest.mark.parametrize("deactivated", [False, True], ids=["anonymous", "deactivated user"])
def test_signed_out_visitors_are_sent_to_sign_in(world: World, deactivated: bool) -> None:
    clients = {"portal": Client(), "desk": Client(), "client": Client()}
    if deactivated:
        for door, user in (
            ("portal", world.portal_users["A"]),
            ("desk", world.users.admin),
            ("client", world.client_users["D"]),
        ):
            clients[door].force_login(user)
            User.objects.filter(pk=user.pk).update(is_active=False)
    problems = []
    for route in ROUTES:
        if route.unfillable:  # (that one fails the harness's own test)
            continue
        path = route.fill(world.account("A").ids)
        response = fetch(clients[route.door], path)
        where = (response.status_code, response.get("Location"), response.content)
        if where != (302, f"/accounts/login/?next={path}", b""):
            problems.append(f"{path}: {where[:2]}, expected a redirect to sign in")
    assert problems == []


def _wrong_door_users(world: World, door: str) -> dict[str, User]:
    users: dict[str, User] = {"no membership": world.stranger}
    if door != "client":
        users["creditor client"] = world.users.creditor
    if door == "client":
        users |= {
            "customer": world.portal_users["A"],
            "agency debtor": world.portal_users["D"],
            "staff admin": world.users.admin,
            "agency staff": world.staff["northwind"],
        }
    elif door == "portal":
        users |= {
            "staff admin": world.users.admin,
            "staff manager": world.users.manager,
            "staff collector": world.users.collector,
            "agency staff": world.staff["northwind"],
        }
    else:
        users |= {"customer": world.portal_users["A"], "agency debtor": world.portal_users["D"]}
    return users


@pytest.mark.parametrize("door", DOORS)
def test_the_wrong_door_is_403_and_shows_nothing(world: World, door: str) -> None:
    a = world.account("D" if door == "client" else "A")
    before = row_counts()
    problems = []
    for who, user in _wrong_door_users(world, door).items():
        client = signed_in(user)
        for route in ROUTES:
            if route.door != door or route.unfillable:  # (that one fails the harness's own test)
                continue
            path = route.fill(a.ids)
            response = fetch(client, path)
            if response.status_code != 403:
                problems.append(f"{who} on {path}: {response.status_code}, expected 403")
            elif "This page is not open to your sign-in" not in response.content.decode():
                problems.append(f"{who} on {path}: not the no-access page")
            if found := leaked(body_of(response), a.secrets | {a.customer.number}):
                problems.append(f"{who} on {path}: shows {found}")
    assert problems == []
    assert row_counts() == before


def test_a_deactivated_customer_membership_closes_the_portal(world: World) -> None:
    a = world.account("A")
    with scopes_disabled():
        assert Membership.objects.filter(user=world.portal_users["A"]).update(is_active=False) == 1
    client = signed_in(world.portal_users["A"])
    problems = []
    for route in PORTAL_ROUTES:
        response = fetch(client, route.fill(a.ids))
        if response.status_code != 403:
            problems.append(f"{route.fill(a.ids)}: {response.status_code}, expected 403")
        if found := leaked(body_of(response), a.secrets | {a.customer.number}):
            problems.append(f"{route.fill(a.ids)}: shows {found}")
    assert problems == []


# --- queries outside a scope --------------------------------------------------------------------

TENANT_MODELS = sorted(
    (model for model in apps.get_models() if issubclass(model, TenantModel)), key=lambda m: m.__name__
)

QUERIES: dict[str, Callable[[Any, int], object]] = {
    "list(all())": lambda m, pk: list(m.objects.all()),
    "iterate filter()": lambda m, pk: list(m.objects.filter(pk__gt=0)),
    "count()": lambda m, pk: m.objects.count(),
    "get()": lambda m, pk: m.objects.get(pk=pk),
    "first()": lambda m, pk: m.objects.first(),
    "exists()": lambda m, pk: m.objects.exists(),
    "exclude().exists()": lambda m, pk: m.objects.exclude(pk=0).exists(),
    "values_list()": lambda m, pk: list(m.objects.values_list("pk", flat=True)),
    "aggregate()": lambda m, pk: m.objects.aggregate(n=Count("pk")),
    "in_bulk()": lambda m, pk: m.objects.in_bulk(),
    "order_by()[:1]": lambda m, pk: list(m.objects.order_by("pk")[:1]),
    "iterator()": lambda m, pk: list(m.objects.iterator()),
    "update()": lambda m, pk: m.objects.update(),
    "delete()": lambda m, pk: m.objects.all().delete(),
}


def unscoped(state: str, organization: Organization) -> ExitStack:
    """The scope state under test, entered."""
    stack = ExitStack()
    if state == "organization=None":
        stack.enter_context(scope(organization=None))
    elif state == "None inside a real scope":
        stack.enter_context(scope(organization=organization))
        stack.enter_context(scope(organization=None))
    return stack


@pytest.mark.parametrize("state", ["no scope", "organization=None", "None inside a real scope"])
def test_a_tenant_query_without_an_organization_raises(world: World, state: str) -> None:
    """Every query form on every tenant model: a form that runs (rather than raising
    ScopeError) is listed with the models it ran on."""
    organization = world.account("A").organization
    answered: dict[str, list[str]] = {}
    for model in TENANT_MODELS:
        with scopes_disabled():
            total = model.objects.count()  # type: ignore[attr-defined]
            probe = model.objects.order_by("pk").first()  # type: ignore[attr-defined]
        assert total > 1 and probe is not None, model  # a leaking query would return rows
        for label, query in QUERIES.items():
            with unscoped(state, organization):
                try:
                    query(model, probe.pk)
                except ScopeError:
                    continue
            answered.setdefault(label, []).append(model.__name__)
        with scopes_disabled():
            assert model.objects.count() == total  # type: ignore[attr-defined]  # nothing deleted

    assert TENANT_MODELS
    assert answered == {}, "these queries ran without an organization instead of raising ScopeError"


def test_a_scope_shows_only_its_organizations_rows(world: World) -> None:
    for model in TENANT_MODELS:
        for account in (world.account("A"), world.account("X"), world.account("D")):
            organization = account.organization
            with scopes_disabled():
                expected = set(
                    model.objects.filter(organization=organization).values_list("pk", flat=True)  # type: ignore[attr-defined]
                )
            with scope(organization=organization):
                seen = set(model.objects.values_list("pk", flat=True))  # type: ignore[attr-defined]
            assert seen == expected, (model.__name__, organization.slug)
            assert expected, f"{model.__name__}: the world has no row of {organization.slug}"


# --- the creditor-client door ------------------------------------------------------------------

CLIENT_PERMS = role_perms(Role.CREDITOR)


@pytest.mark.parametrize(
    ("viewer", "target"),
    [("D", "E"), ("E", "D"), ("D", "A"), ("D", "X")],
    ids=["other creditor same agency", "other creditor reversed", "supplier", "other supplier"],
)
def test_client_refuses_foreign_ids(world: World, viewer: str, target: str) -> None:
    """A creditor client never reaches an account another creditor placed with the same
    agency, nor anything of another organization: 404, saying nothing, writing nothing."""
    me, them = world.account(viewer), world.account(target)
    client = signed_in(world.client_users[viewer])
    secrets = world.secrets_outside([me])
    assert them.customer.name in secrets
    before = row_counts()

    problems = [
        problem
        for route in CLIENT_OBJECT_ROUTES
        for path in foreign_paths(route, own=me.ids, foreign=them.ids)
        for problem in expect_404(client, path, secrets)
    ]

    assert CLIENT_OBJECT_ROUTES
    assert problems == []
    assert row_counts() == before


@pytest.mark.parametrize("own", ["D", "E"])
def test_client_answers_the_creditors_own_ids(world: World, own: str) -> None:
    client = signed_in(world.client_users[own])
    problems = [
        p
        for route in CLIENT_ROUTES
        for p in expect_200_showing(client, route, world.account(own), CLIENT_PERMS)
    ]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("own", ["D", "E"])
def test_client_pages_show_nothing_outside_the_placed_accounts(world: World, own: str) -> None:
    """Not another creditor's accounts, not another organization's, and not the staff-only
    entries or files of the creditor's own accounts."""
    me = world.account(own)
    forbidden = world.secrets_outside([me]) | {
        me.internal_note.summary,
        me.hidden_document.title,
        me.hidden_document.filename,
    }
    client = signed_in(world.client_users[own])
    problems = []
    for route in CLIENT_ROUTES:
        for query in ("", "?status=all", "?sort=-balance", "?q=a", "?page=2"):
            path = route.fill(me.ids) + query
            response = client.get(path)
            if response.status_code == 405:  # an action, not a page: nothing to list
                break
            if response.status_code != 200:
                problems.append(f"{path}: {response.status_code}")
            elif found := leaked(body_of(response), forbidden):
                problems.append(f"{path}: shows {found}")
    assert problems == []


def test_the_debtor_never_sees_its_creditors_conversation_or_notes(world: World) -> None:
    d = world.account("D")
    assert d.creditor_thread is not None and d.creditor_note is not None
    client = signed_in(world.portal_users["D"])
    creditor_side = {f"Creditor question {d.tag}", f"Creditor asks about {d.tag}", f"Creditor note {d.tag}"}
    problems = []
    for route in PORTAL_ROUTES:
        response = client.get(route.fill(d.ids))
        if response.status_code == 405:
            continue
        if found := leaked(body_of(response), creditor_side):
            problems.append(f"{route.fill(d.ids)}: shows {found}")
    assert client.get(f"/portal/messages/{d.creditor_thread.pk}/").status_code == 404
    assert problems == []
