"""Shared fixtures: three organizations (two suppliers, one agency), their creditors,
customers and contacts, users of every role, and the ledger check after each test.

Data fixtures are built outside any tenant scope (creating rows needs none; the helpers in
``factories`` enter the organization's scope where a service queries). Tests enter
``scope(organization=...)`` themselves, as a request or a task would.

Every test that touches the database ends with ``assert_ledger_clean()`` run for it at
teardown (when the test itself passed). A test that corrupts the ledger on purpose marks
itself ``@pytest.mark.ledger_corrupted``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Generator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import time_machine
from django.db import connection

from factories import (
    NOON_ON_TODAY,
    Users,
    make_contact,
    make_creditor,
    make_customer,
    make_member,
    make_organization,
)
from factories import assert_ledger_clean as _assert_ledger_clean
from openar.customers.models import Contact, Customer
from openar.tenants.models import Creditor, Organization, Role


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ledger_corrupted: the test corrupts the ledger on purpose; skip the check at teardown",
    )
    config.addinivalue_line("markers", "postgresql: needs PostgreSQL (row locks); skipped on SQLite")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, object]:
    report = yield
    if call.when == "call":
        item.stash[_CALL_PASSED] = getattr(report, "passed", False)
    return report


_CALL_PASSED = pytest.StashKey[bool]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``postgresql`` are skipped, with the reason, on any other database."""
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if engine == "django.db.backends.postgresql":
        return
    skip = pytest.mark.skip(
        reason=f"needs PostgreSQL (row locks, concurrent connections); this run uses {engine}"
    )
    for item in items:
        if item.get_closest_marker("postgresql"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _ledger_clean_at_teardown(request: pytest.FixtureRequest) -> Generator[None, None, None]:
    """After each database test that passed, the ledger must still be consistent."""
    names = set(request.fixturenames)
    uses_db = bool(names & {"db", "transactional_db"}) or request.node.get_closest_marker("django_db")
    if not uses_db or request.node.get_closest_marker("ledger_corrupted"):
        yield
        return
    # Set the database up before this fixture so that its teardown runs after the check.
    request.getfixturevalue("transactional_db" if "transactional_db" in names else "db")
    yield
    if request.node.stash.get(_CALL_PASSED, False):
        _assert_ledger_clean()


@pytest.fixture
def assert_ledger_clean() -> Callable[..., None]:
    return _assert_ledger_clean


@pytest.fixture
def clock() -> Generator[time_machine.Traveller, None, None]:
    """Noon on factories.TODAY in Toronto (the test supplier's time zone), standing still."""
    with time_machine.travel(NOON_ON_TODAY, tick=False) as traveller:
        yield traveller


@pytest.fixture
def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


# --- organizations and creditors --------------------------------------------------------------


@pytest.fixture
def supplier(db: None) -> Organization:
    """A supplier collecting its own receivables, in US dollars."""
    return make_organization("acme", name="Acme Supplies", currency="USD", timezone="America/Toronto")


@pytest.fixture
def other_supplier(db: None) -> Organization:
    """A second, unrelated supplier (another tenant), in euros."""
    return make_organization("globex", name="Globex GmbH", currency="EUR", timezone="Europe/Berlin")


@pytest.fixture
def agency(db: None) -> Organization:
    """A collection agency, with two creditor clients."""
    return make_organization("northwind", name="Northwind Collections", kind=Organization.Kind.AGENCY)


@pytest.fixture
def creditor(supplier: Organization) -> Creditor:
    return make_creditor(supplier, "acme", name="Acme Supplies", is_self=True)


@pytest.fixture
def other_creditor(other_supplier: Organization) -> Creditor:
    return make_creditor(other_supplier, "globex", name="Globex GmbH", is_self=True)


@pytest.fixture
def agency_clients(agency: Organization) -> tuple[Creditor, Creditor]:
    return (
        make_creditor(agency, "city-water", name="City Water Utility"),
        make_creditor(agency, "mercy-hospital", name="Mercy Hospital"),
    )


# --- customers and contacts -------------------------------------------------------------------


@pytest.fixture
def customer(creditor: Creditor) -> Customer:
    return make_customer(creditor, "C-1001", name="Bolt Hardware", email="ap@bolt.example")


@pytest.fixture
def customer_2(creditor: Creditor) -> Customer:
    return make_customer(creditor, "C-1002", name="Anvil Works", email="ap@anvil.example")


@pytest.fixture
def other_customer(other_creditor: Creditor) -> Customer:
    """A customer of the other supplier (another tenant)."""
    return make_customer(other_creditor, "C-1001", name="Zeta AG", currency="EUR")


@pytest.fixture
def debtor(agency_clients: tuple[Creditor, Creditor]) -> Customer:
    """A debtor account placed with the agency by its first client."""
    return make_customer(agency_clients[0], "D-5001", name="Pat Jones")


@pytest.fixture
def contact(customer: Customer) -> Contact:
    return make_contact(customer, "Dana Payables", "dana@bolt.example")


# --- users, one per role ----------------------------------------------------------------------


@pytest.fixture
def users(
    supplier: Organization,
    customer: Customer,
    agency: Organization,
    agency_clients: tuple[Creditor, Creditor],
) -> Users:
    """Staff of the supplier in each staff role, a customer contact of the supplier, and a
    creditor-client user of the agency bound to its first client."""
    return Users(
        admin=make_member(supplier, Role.ADMIN, "admin@acme.example"),
        manager=make_member(supplier, Role.MANAGER, "manager@acme.example"),
        collector=make_member(supplier, Role.COLLECTOR, "collector@acme.example"),
        customer=make_member(supplier, Role.CUSTOMER, "dana@bolt.example", customer=customer),
        creditor=make_member(agency, Role.CREDITOR, "client@citywater.example", creditor=agency_clients[0]),
    )


# --- the malware scanner ----------------------------------------------------------------------


def _clamd_script() -> ModuleType:
    """scripts/clamd.py, which starts a private clamd with the EICAR test signature only."""
    path = Path(__file__).resolve().parent.parent / "scripts" / "clamd.py"
    spec = importlib.util.spec_from_file_location("openar_private_clamd", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def _clamd_daemon() -> Generator[tuple[str, str], None, None]:
    """(unix address, TCP address) of a clamd on this machine that knows the EICAR test
    signature: the one scripts/test started (OPENAR_TEST_CLAMD), else one started here when
    ClamAV is installed. Without clamd the tests that need it are skipped, saying why, except
    under CI=true, where they fail."""
    script = _clamd_script()
    given = os.environ.get("OPENAR_TEST_CLAMD", "").strip()
    if given:
        path = given.removeprefix("unix:")
        if not script.ping(path):
            pytest.fail(f"OPENAR_TEST_CLAMD={given} does not answer PING")
        yield given, os.environ.get("OPENAR_TEST_CLAMD_TCP", "").strip()
        return
    found = script.binaries()
    if found is None:
        reason = f"no clamd for the scanner tests: {script.INSTALL_HINT}"
        if script.in_ci():
            pytest.fail(f"{reason}\n(CI=true: a missing scanner fails the run)")
        pytest.skip(reason)
    daemon = script.PrivateClamd(*found)
    try:
        daemon.start()
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"could not start a private clamd: {exc}")
    try:
        yield daemon.address, daemon.tcp_address
    finally:
        daemon.stop()


@pytest.fixture
def clamd(_clamd_daemon: tuple[str, str], settings: Any) -> str:
    """Uploads are scanned by a real clamd on loopback (a unix socket); its address."""
    settings.OPENAR_CLAMD = _clamd_daemon[0]
    return _clamd_daemon[0]


@pytest.fixture
def clamd_tcp(_clamd_daemon: tuple[str, str], settings: Any) -> str:
    """The same clamd reached over TCP on 127.0.0.1; its address."""
    if not _clamd_daemon[1]:
        pytest.skip("the clamd given in OPENAR_TEST_CLAMD has no OPENAR_TEST_CLAMD_TCP")
    settings.OPENAR_CLAMD = _clamd_daemon[1]
    return _clamd_daemon[1]
