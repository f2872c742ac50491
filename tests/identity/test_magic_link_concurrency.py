"""Many people (or one impatient person, or a mail scanner) confirming the same link at the
same time: the last use goes to exactly one of them.

Real threads, each with its own Django test client and its own database connection, released
together by a ``threading.Barrier``.

PostgreSQL: the shared test server allows 100 connections (``max_connections``), less the
ones other test runs hold, so 200 connections at once would fail with "too many clients"
(and starve the other runs). All 200 threads are released together, but only ``gate`` of them
(half of the free connections, at most 48) hold a connection at a time: the first ``gate``
confirmations race on the row for real, and the rest arrive while it is being decided or
after.

SQLite: pytest-django's in-memory test database reaches other threads only through SQLite's
shared-cache mode, whose table locks fail at once with "database table is locked" (the busy
timeout does not apply there), so concurrent writers would error instead of queueing, which
no deployment does. The SQLite runs therefore copy the test database into a file (SQLite's
backup API) and point every thread's connection at that file, with the settings a file
deployment gets (``openar.settings.env``: WAL, busy timeout, ``BEGIN IMMEDIATE``): writers
queue on the file's lock, as they would in production. Everything the test asserts after the
race is read from that file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test import Client

from openar.customers.models import Contact
from openar.identity.magic import IssuedLink, LinkNotUsable, magic_link_consume
from openar.identity.models import MagicLink
from openar.tenants.middleware import MAGIC_SESSION_KEY

from .conftest import PAST_DUE_LIST, Response, create_link, events, open_link, stored, text_of

pytestmark = pytest.mark.django_db(transaction=True)

T = TypeVar("T")
USED = "openar.magic_link.used"
JOIN_TIMEOUT = 120


class RaceDatabase:
    """Where the racing threads run their queries: the test database itself on PostgreSQL;
    on SQLite, a file copy of it made by ``snapshot()``."""

    def __init__(self, folder: Path) -> None:
        self.vendor = connection.vendor
        self.file: Path | None = None
        self._folder = folder

    def snapshot(self) -> None:
        """On SQLite, copy the test database as it is now into a file for the threads."""
        if self.vendor != "sqlite":
            return
        self.file = self._folder / "race.sqlite3"
        connection.ensure_connection()
        target = sqlite3.connect(self.file)
        try:
            connection.connection.backup(target)
        finally:
            target.close()

    def gate(self, wanted: int) -> int:
        """How many threads may hold a connection at once (see the module's docstring)."""
        if self.vendor != "postgresql":
            return wanted
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('max_connections')::int"
                " - current_setting('superuser_reserved_connections')::int"
                " - (SELECT count(*) FROM pg_stat_activity)"
            )
            free = int(cursor.fetchone()[0])
        return max(4, min(wanted, 48, free // 2))

    def bind_thread(self) -> None:
        """Give the calling thread its own connection to the race database."""
        if self.file is None:
            return  # PostgreSQL: Django opens a connection per thread by itself
        wrapper_class = type(connections[DEFAULT_DB_ALIAS])  # the backend's DatabaseWrapper
        settings_dict = {**connection.settings_dict, "NAME": str(self.file)}
        connections[DEFAULT_DB_ALIAS] = wrapper_class(settings_dict, DEFAULT_DB_ALIAS)

    @staticmethod
    def release_thread() -> None:
        connections[DEFAULT_DB_ALIAS].close()

    def read(self, query: Callable[[], T]) -> T:
        """Run ``query`` on the race database (in a thread of its own) and return its result."""
        result: list[Any] = []

        def run() -> None:
            self.bind_thread()
            try:
                result.append(query())
            except BaseException as exc:  # re-raised below, in the test's thread
                result.append(exc)
            finally:
                self.release_thread()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(JOIN_TIMEOUT)
        assert result, "the query on the race database did not finish"
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]


@pytest.fixture
def race_db(tmp_path: Path) -> RaceDatabase:
    return RaceDatabase(tmp_path)


@dataclass
class Race(Generic[T]):
    results: list[T | BaseException]  # what each job returned or raised, in the order of the jobs
    gate: int  # how many jobs could hold a database connection at once
    overlap: int  # how many jobs were running at the same time, at most


def race(db: RaceDatabase, jobs: list[Callable[[], T]]) -> Race[T]:
    """Run every job in a thread of its own, all released at once by a barrier, at most
    ``db.gate()`` of them holding a database connection at a time."""
    barrier = threading.Barrier(len(jobs), timeout=JOIN_TIMEOUT)
    gate = db.gate(len(jobs))
    slots = threading.BoundedSemaphore(gate)
    results: list[T | BaseException | None] = [None] * len(jobs)
    running, overlap, lock = 0, 0, threading.Lock()

    def run(index: int, job: Callable[[], T]) -> None:
        nonlocal running, overlap
        db.bind_thread()
        try:
            barrier.wait()
        except threading.BrokenBarrierError as exc:
            results[index] = exc
            return
        with slots:
            with lock:
                running += 1
                overlap = max(overlap, running)
            try:
                results[index] = job()
            except BaseException as exc:  # the test inspects it
                results[index] = exc
            finally:
                with lock:
                    running -= 1
                db.release_thread()

    threads = [threading.Thread(target=run, args=(i, job), daemon=True) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "some threads never finished"
    done = [r if r is not None else RuntimeError("no result") for r in results]
    return Race(results=done, gate=gate, overlap=overlap)


@dataclass
class Outcome:
    overlap: int  # how many confirmations were in flight at the same time, at most
    winners: list[int]  # indexes of the clients sent into the portal
    used: list[int]  # indexes of the clients told the link is used up
    other: dict[int, str]  # anything else, described


def confirm_all_at_once(db: RaceDatabase, issued: IssuedLink, count: int) -> tuple[list[Client], Outcome]:
    """``count`` browsers open the link one after the other (each session now holds the
    pending link), then all confirm at the same instant."""
    clients = [Client() for _ in range(count)]
    for client in clients:
        opened = open_link(client, issued.token)
        assert (opened.status_code, opened["Location"]) == (302, "/l/confirm/")
    db.snapshot()

    def confirm(client: Client) -> Callable[[], Response]:
        return lambda: client.post("/l/confirm/")

    run = race(db, [confirm(client) for client in clients])

    outcome = Outcome(overlap=run.overlap, winners=[], used=[], other={})
    for index, response in enumerate(run.results):
        if isinstance(response, BaseException):
            outcome.other[index] = f"raised {type(response).__name__}: {response}"
        elif response.status_code == 302 and response["Location"] == PAST_DUE_LIST:
            outcome.winners.append(index)
        elif response.status_code == 410 and "This link has already been used" in text_of(response.content):
            outcome.used.append(index)
        else:
            outcome.other[index] = describe(response)
    return clients, outcome


def describe(response: Response) -> str:
    content = response.content
    return f"{response.status_code} {response.get('Location', '')} {text_of(content)[:120]}"


def assert_one_winner(db: RaceDatabase, issued: IssuedLink, clients: list[Client], outcome: Outcome) -> None:
    count = len(clients)
    if db.file is not None:  # the threads wrote to the file copy, not to the test database
        assert stored(issued.link).uses == 0
    assert outcome.overlap > 1, "the confirmations ran one after the other: no race"
    assert outcome.other == {}
    assert len(outcome.winners) == 1, outcome.winners
    assert len(outcome.used) == count - 1
    link: MagicLink = db.read(lambda: stored(issued.link))
    assert (link.uses, link.max_uses) == (1, 1)
    used = db.read(lambda: events(USED, issued.link))
    assert len(used) == 1
    assert used[0].data["use"] == 1
    with_access = db.read(lambda: [i for i, c in enumerate(clients) if MAGIC_SESSION_KEY in c.session])
    assert with_access == outcome.winners


@pytest.mark.postgresql
def test_200_simultaneous_confirmations_of_a_single_use_link_have_exactly_one_winner(
    contact: Contact, race_db: RaceDatabase
) -> None:
    issued = create_link(contact, max_uses=1)

    clients, outcome = confirm_all_at_once(race_db, issued, 200)

    assert_one_winner(race_db, issued, clients, outcome)


def test_20_simultaneous_confirmations_of_a_single_use_link_have_exactly_one_winner(
    contact: Contact, race_db: RaceDatabase
) -> None:
    """The same race, smaller, on every database (on SQLite against a file copy)."""
    issued = create_link(contact, max_uses=1)

    clients, outcome = confirm_all_at_once(race_db, issued, 20)

    assert_one_winner(race_db, issued, clients, outcome)


def test_30_threads_consuming_a_three_use_link_spend_exactly_its_three_uses(
    contact: Contact, race_db: RaceDatabase
) -> None:
    """The service behind the confirm POST: each winner spends and logs its own use."""
    issued = create_link(contact, max_uses=3)
    race_db.snapshot()

    run = race(race_db, [lambda: magic_link_consume(link_id=issued.link.pk)] * 30)
    results = run.results

    won = [r for r in results if isinstance(r, MagicLink)]
    refused = [r for r in results if isinstance(r, LinkNotUsable)]
    assert run.overlap > 1
    assert [r for r in results if not isinstance(r, MagicLink | LinkNotUsable)] == []
    assert (len(won), len(refused)) == (3, 27)
    assert sorted(link.uses for link in won) == [1, 2, 3]
    assert {r.state for r in refused} == {"used"}
    assert race_db.read(lambda: stored(issued.link).uses) == 3
    used = race_db.read(lambda: events(USED, issued.link))
    assert sorted(event.data["use"] for event in used) == [1, 2, 3]
    assert {event.data["of"] for event in used} == {3}
