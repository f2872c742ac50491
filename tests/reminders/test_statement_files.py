"""A reminder that carries the statement writes its PDF to storage inside the batch's
transaction: when the batch rolls back, the file goes with the rows."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.db import transaction
from django_scopes import scope, scopes_disabled

from factories import TODAY, TORONTO, issue_invoice
from openar.billing.models import Document
from openar.billing.services import document_store
from openar.core.files import atomic_with_files
from openar.customers.models import Contact, Customer
from openar.notifications.models import Message
from openar.reminders.engine import make, plan, reminder_skip
from openar.tenants.models import Organization

# 16 days after the invoice fell due, mid-morning: the +15 "firm" email, with the statement.
DAY_16 = datetime.datetime.combine(TODAY + datetime.timedelta(days=16), datetime.time(10), tzinfo=TORONTO)


def stored_files(folder: str = "documents") -> list[str]:
    """Every file under ``folder`` in the storage (the tests keep it in memory)."""
    if not default_storage.exists(folder):
        return []
    folders, files = default_storage.listdir(folder)
    return [f"{folder}/{name}" for name in files] + [
        name for sub in folders for name in stored_files(f"{folder}/{sub}")
    ]


def documents() -> int:
    with scopes_disabled():
        return Document.objects.count()


@pytest.fixture
def owing(supplier: Organization, customer: Customer, contact: Contact) -> Customer:
    issue_invoice(customer, "INV-9", "250.00", due_date=TODAY)
    return customer


def test_a_batch_that_rolls_back_leaves_no_statement_file(supplier: Organization, owing: Customer) -> None:
    """Another worker recorded the same reminder first: the batch, then the reminder made
    alone, both meet the unique key and roll back. Each wrote the statement first."""
    before = stored_files()
    with time_machine.travel(DAY_16, tick=False):
        with scope(organization=supplier):
            (planned,) = plan(supplier, DAY_16)
            assert (planned.step.offset_days, planned.step.attach_statement) == (15, True)
            reminder_skip(customer=owing, step=planned.step, cycle=planned.cycle, actor=None)
        result = make(supplier, [planned], DAY_16)

    assert (result.created, result.already) == (0, 1)
    assert documents() == 0
    assert stored_files() == before


def test_a_batch_that_commits_keeps_its_statement_file(supplier: Organization, owing: Customer) -> None:
    with time_machine.travel(DAY_16, tick=False):
        with scope(organization=supplier):
            planned = plan(supplier, DAY_16)
        assert make(supplier, planned, DAY_16).created == 1

    with scopes_disabled():
        (statement,) = Document.objects.all()
        (message,) = Message.objects.all()
        assert list(message.attachments.all()) == [statement]
    assert default_storage.exists(statement.file.name)


def test_files_go_with_the_block_that_rolls_back(supplier: Organization, owing: Customer) -> None:
    """Whatever rolls the block back, an exception or ``set_rollback``; a nested block that
    succeeds hands its files to the outer one."""

    def store(title: str) -> Document:
        with scope(organization=supplier):
            return document_store(
                customer=owing,
                kind=Document.Kind.ATTACHMENT,
                title=title,
                filename=f"{title}.txt",
                content=title.encode(),
                content_type="text/plain",
            )

    before = stored_files()
    with pytest.raises(RuntimeError), atomic_with_files():
        first = store("raised")
        assert default_storage.exists(first.file.name)
        raise RuntimeError("after the file")
    with atomic_with_files():
        with atomic_with_files():
            nested = store("nested")
        transaction.set_rollback(True)
    assert not default_storage.exists(nested.file.name)
    assert stored_files() == before

    kept = store("kept")
    assert sorted(stored_files()) == sorted([*before, kept.file.name])
