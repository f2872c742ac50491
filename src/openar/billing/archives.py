"""Several documents as one ZIP download (the document center's "download selected" and
"download all matching", and an invoice's "all its documents").

The archive is written into a ``SpooledTemporaryFile`` (memory up to a few megabytes, then a
temporary file), streaming each stored file into it, so a large selection never sits whole
in memory. Entries are named from the documents' file names without any folder part (no
"zip slip"), duplicates numbered ("bol.pdf", "bol (2).pdf"). A ZIP holds at most
``MAX_FILES`` documents and ``MAX_BYTES`` of them; more is refused with a message saying
how to narrow it. Each archive handed out is audited (``openar.document.zip_downloaded``
with the ids of the documents in it).

Which documents a person may have is decided by the front door (through the selectors);
this module only packs what it is given, and refuses documents of another customer.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from django.db.models import QuerySet
from django.http import FileResponse

from openar.billing.models import Document
from openar.billing.services import safe_filename
from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.core.uploads import attachment_response
from openar.customers.models import Contact, Customer
from openar.identity.models import User

MAX_FILES = 200
MAX_BYTES = 200 * 1024 * 1024
SPOOL_IN_MEMORY = 8 * 1024 * 1024
NAME_LIMIT = 120


class UnknownDocument(ServiceError):
    """An id asked for that is not among the documents the person may have (another
    customer's, a hidden one, a made-up one): front doors answer 404 and say no more."""


def zip_choice(
    *, visible: QuerySet[Document], matching: QuerySet[Document], ids: Sequence[str], everything: bool
) -> list[Document]:
    """What a ZIP request asks for: every document ``matching`` the filters (``everything``;
    refused beyond ``MAX_FILES``), else the ``ids`` ticked, each of which must be ``visible``
    (one that is not refuses the whole request with ``UnknownDocument``). In the list's order."""
    if everything:
        chosen = list(matching[: MAX_FILES + 1])
        if len(chosen) > MAX_FILES:
            raise ServiceError(
                f"{matching.count()} documents match; one ZIP holds at most {MAX_FILES}. "
                "Narrow the filters (a type, a date range, an invoice) first.",
                field="documents",
                code="too_many",
            )
        return chosen
    wanted: list[int] = []
    for value in ids:
        if not value.isdigit() or len(value) > 12:
            raise UnknownDocument("No such document.")
        if int(value) not in wanted:
            wanted.append(int(value))
    if not wanted:
        raise ServiceError(
            "Tick the documents to download first, or download all that match.", field="documents"
        )
    chosen = list(visible.filter(pk__in=wanted))
    if len(chosen) != len(wanted):
        raise UnknownDocument("No such document.")
    return chosen


@dataclass(frozen=True)
class Extra:
    """A file made on the fly (an invoice PDF drawn from its data) to pack with the documents."""

    filename: str
    content: bytes


def _base_name(document: Document) -> str:
    name = safe_filename(document.filename)
    stem, ext = os.path.splitext(name)
    if not ext:
        ext = mimetypes.guess_extension(document.content_type or "") or ""
    stem = stem[: NAME_LIMIT - len(ext)].rstrip(" .") or f"document-{document.pk}"
    return f"{stem}{ext}"


def entry_names(names: Sequence[str]) -> list[str]:
    """Unique entry names in order: the second "bol.pdf" becomes "bol (2).pdf", compared
    without regard to case (as Windows and macOS unpack them)."""
    taken: set[str] = set()
    result = []
    for name in names:
        stem, ext = os.path.splitext(name)
        candidate, n = name, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{stem} ({n}){ext}"
        taken.add(candidate.lower())
        result.append(candidate)
    return result


def zip_check(documents: Sequence[Document], extras: Sequence[Extra] = ()) -> None:
    """Refuse an archive that would exceed the limits, saying by how much."""
    count = len(documents) + len(extras)
    size = sum(document.size for document in documents) + sum(len(extra.content) for extra in extras)
    if count == 0:
        raise ServiceError("Choose at least one document to download.", field="documents")
    if count > MAX_FILES:
        raise ServiceError(
            f"That is {count} documents; one ZIP holds at most {MAX_FILES}. "
            "Narrow the filters (a type, a date range, an invoice) or choose fewer.",
            field="documents",
            code="too_many",
        )
    if size > MAX_BYTES:
        raise ServiceError(
            f"Those documents come to {size / 1024 / 1024:,.0f} MB; one ZIP holds at most "
            f"{MAX_BYTES // 1024 // 1024} MB. Narrow the filters or choose fewer.",
            field="documents",
            code="too_large",
        )


def documents_zip(
    *,
    customer: Customer,
    documents: Sequence[Document],
    extras: Sequence[Extra] = (),
    actor: User | None = None,
    contact: Contact | None = None,
    ip: str | None = None,
) -> IO[bytes]:
    """The ZIP of ``documents`` (all of ``customer``) and ``extras``, rewound, ready to send;
    audited with ``actor`` (else ``contact``, a sign-in link's) and ``ip``. Raises
    ``ServiceError`` over the limits or for another customer's document."""
    if any(document.customer_id != customer.pk for document in documents):
        raise ServiceError("A ZIP holds documents of one customer only.", field="documents")
    zip_check(documents, extras)
    names = entry_names([extra.filename for extra in extras] + [_base_name(d) for d in documents])
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115  (handed to the response)
    try:
        with zipfile.ZipFile(spool, mode="w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for extra, name in zip(extras, names, strict=False):
                archive.writestr(name, extra.content)
            for document, name in zip(documents, names[len(extras) :], strict=True):
                with document.file.open("rb") as source, archive.open(name, mode="w") as target:
                    shutil.copyfileobj(source, target, 1024 * 1024)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    data: dict[str, object] = {
        "ids": [document.pk for document in documents],
        "count": len(documents) + len(extras),
        "generated": [extra.filename for extra in extras],
    }
    if contact is not None:
        data["contact"] = contact.pk
    log_event(
        "openar.document.zip_downloaded",
        organization=customer.organization,
        obj=customer,
        actor=actor,
        data=data,
        ip=ip,
    )
    return spool


def zip_response(archive: IO[bytes], filename: str) -> FileResponse:
    """Always a download, never sniffed or rendered (``openar.core.uploads.protect_download``)."""
    return attachment_response(archive, filename=safe_filename(filename), content_type="application/zip")
