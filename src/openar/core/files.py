"""Files saved to storage inside a transaction, removed again when it rolls back.

A document's file is written to storage before its row, inside the same transaction: the
row never names a file that is not there. A rollback takes the row back but not the file,
and Django has no ``on_rollback``. ``atomic_with_files`` is ``transaction.atomic`` that
remembers the files saved in it through ``file_saved`` and deletes them when its block
rolls back (an exception, or ``set_rollback``). Nested blocks hand their files to the
enclosing one when they succeed, so that the outer rollback deletes them too.

Use it for the outermost block that may roll back: a block of plain ``transaction.atomic``
around it that rolls back later leaves the files behind, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.core.files.storage import Storage
from django.db import transaction

logger = logging.getLogger(__name__)

_Saved = list[tuple[Storage, str]]
_saved: ContextVar[_Saved | None] = ContextVar("openar_files_saved", default=None)


def file_saved(storage: Storage, name: str) -> None:
    """Note a file just written: deleted if the enclosing ``atomic_with_files`` block rolls
    back. Outside such a block, nothing to do."""
    saved = _saved.get()
    if saved is not None:
        saved.append((storage, name))


def _delete(saved: _Saved) -> None:
    for storage, name in saved:
        try:
            storage.delete(name)
        except Exception:  # never hide the error that rolled the transaction back
            logger.exception("could not delete %s after a rollback", name)


@contextmanager
def atomic_with_files(using: str | None = None) -> Iterator[None]:
    """``transaction.atomic(using)`` that deletes the files saved in it if it rolls back."""
    outer = _saved.get()
    saved: _Saved = []
    token = _saved.set(saved)
    try:
        with transaction.atomic(using=using):
            yield
            rolled_back = transaction.get_rollback(using=using)
    except BaseException:
        _delete(saved)
        raise
    finally:
        _saved.reset(token)
    if rolled_back:
        _delete(saved)
    elif outer is not None:
        outer.extend(saved)
