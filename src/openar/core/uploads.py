"""Every file that enters OpenAR goes through here: ``upload_check`` decides whether to keep it.

A file is accepted for a *kind* of upload (``UploadKind``) when all of these hold:

- it is no larger than the kind's limit (``upload_limit``, from ``OPENAR_UPLOAD_LIMITS``;
  larger is a 413) and not empty;
- its content, read from its first bytes and never from its name or the browser's type,
  is one of the kind's formats; zip-based office files are recognised by their members
  (``[Content_Types].xml`` and the main part for Word and Excel, ``mimetype`` for
  OpenDocument), and office files with macros are refused; text must be UTF-8 (with or
  without a BOM) without NUL bytes, and must not be a web page, an SVG or a script: its
  start is read past any number of blank characters, and ``<script``, ``<html``, ``<svg``,
  ``<iframe``, ``<!doctype html`` or ``<?php`` anywhere in it refuses it too;
- a PDF or an image carries no ZIP archive at its end (a "polyglot", which opens as the
  document in a viewer and as an archive in an unzipper): a ZIP end record in its last
  64 KiB + 22 bytes refuses it;
- archives (ZIP files and the zip-based office files) hold no more than
  ``OPENAR_ARCHIVE_MAX_MEMBERS`` entries and ``OPENAR_ARCHIVE_MAX_SIZE`` bytes once
  unpacked (counted as they unpack, not as their headers claim), are not encrypted, name
  no absolute path or ``..``, and nest no deeper than one archive in another; their
  central directory lists every entry stored (entries follow each other from the first
  byte, without overlapping, with no local header hidden between or after them); each
  entry is a file or a folder without data (no links, devices or other special files);
  each member of a plain ZIP must itself be a format documents accept, named with an
  extension of its content (an archive cannot be renamed as an upload is), and not marked
  executable;
- its name does not pretend to be something else: a name ending in a program's or
  script's extension (``.exe``, ``.js``, ...), or in another format's (an image called
  ``.pdf``), is refused; a name without a known extension gets the content's;
- the malware scanner, when ``OPENAR_CLAMD`` configures one, finds nothing. A scanner that
  is configured but cannot be reached, or answers an error, refuses the file (fail closed);
  so does a file past one of clamd's own limits (clamd.conf must say ``AlertExceedsMax yes``,
  see ``openar.core.clamd``). Without ``OPENAR_CLAMD`` nothing is scanned, and a deployment
  is warned so by the system check ``openar.W001`` (``openar.core.checks``).

Malware found is logged, and recorded in the audit log as ``openar.upload.malware`` (the
signature, the kind, the file's name, size and SHA-256, the uploader and their address)
when the organization is known: ``uploads_from`` takes it from the request;
``upload_check`` takes ``organization``, ``actor`` and ``ip`` keywords.

Every refusal is an ``UploadRejected`` whose ``message`` is a sentence the person who
uploaded can act on, and whose ``status`` is the HTTP status to answer with: 413 for a file
too large, 503 when the scanner is unavailable (try again later), 400 otherwise.

Front doors take files with ``uploads_from(request, field, kind)`` and render a refusal on
their own page with the status kept::

    try:
        files = uploads_from(request, "attachment", UploadKind.ATTACHMENT)
    except UploadRejected as exc:
        form.add_error("attachment", exc.message)
        return render(request, "portal/dispute_form.html", {"form": form}, status=exc.status)

and store each ``CheckedUpload`` under a name the server makes (``upload_save``, or a
``FileField`` whose ``upload_to`` is ``upload_storage_name``), never under the uploaded name.
Requests whose body is far too large are refused before it is read, by
``UploadLimitMiddleware``; ``accepts_uploads(kind, max_files=...)`` on a view tells it the
view's limit.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import logging
import os
import re
import secrets
import stat
import struct
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, default_storage
from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.utils import timezone

from openar.core import clamd
from openar.core.errors import ServiceError
from openar.core.files import file_saved
from openar.core.http import client_ip

if TYPE_CHECKING:
    from openar.identity.models import User
    from openar.tenants.models import Organization

logger = logging.getLogger(__name__)

MB = 1024 * 1024
CHUNK = 64 * 1024


class UploadKind(StrEnum):
    """What an upload is for; each kind has its formats and its size limit."""

    DOCUMENT = "document"  # staff documents and customer supporting documents
    ATTACHMENT = "attachment"  # attachments to disputes and messages
    CONTRACT = "contract"  # contracts to sign: PDF only
    IMPORT = "import"  # data imports: CSV / plain UTF-8 text, XLSX


class UploadRejected(ServiceError):
    """A file refused, with a sentence the uploader can read and the HTTP status to answer."""

    def __init__(
        self, message: str, *, status: int = 400, field: str | None = None, code: str = "upload"
    ) -> None:
        super().__init__(message, field=field, code=code)
        self.status = status


@dataclass(frozen=True)
class CheckedUpload:
    """A file ``upload_check`` accepted. Store ``file`` under a server-made name."""

    filename: str  # the uploaded name, cleaned, with the extension of its content
    content_type: str  # from the content, never from the browser
    size: int
    sha256: str
    file: File  # positioned at 0

    @property
    def extension(self) -> str:
        return FORMATS[self.content_type].extension


# --- formats -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    content_type: str
    label: str  # "a PDF file": how a message names it
    extension: str  # the one given to a name that has none of ``extensions``
    extensions: tuple[str, ...]
    family: str  # names within a family may be swapped (a .jpg that is a PNG is fixed)


PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
WEBP = "image/webp"
HEIC = "image/heic"
HEIF = "image/heif"
CSV = "text/csv"
TEXT = "text/plain"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ZIP = "application/zip"

FORMATS: dict[str, Format] = {
    f.content_type: f
    for f in (
        Format(PDF, "a PDF file", ".pdf", (".pdf",), "pdf"),
        Format(PNG, "a PNG image", ".png", (".png",), "image"),
        Format(JPEG, "a JPEG image", ".jpg", (".jpg", ".jpeg", ".jpe", ".jfif"), "image"),
        Format(WEBP, "a WebP image", ".webp", (".webp",), "image"),
        Format(HEIC, "a HEIC image", ".heic", (".heic", ".heif"), "image"),
        Format(HEIF, "a HEIF image", ".heif", (".heif", ".heic"), "image"),
        Format(CSV, "a CSV file", ".csv", (".csv", ".tsv"), "text"),
        Format(TEXT, "a text file", ".txt", (".txt", ".text", ".log", ".md"), "text"),
        Format(DOCX, "a Word document", ".docx", (".docx",), "docx"),
        Format(XLSX, "an Excel workbook", ".xlsx", (".xlsx",), "xlsx"),
        Format(ODT, "an OpenDocument text", ".odt", (".odt",), "odt"),
        Format(ODS, "an OpenDocument spreadsheet", ".ods", (".ods",), "ods"),
        Format(ZIP, "a ZIP archive", ".zip", (".zip",), "zip"),
    )
}

ACCEPTED: dict[UploadKind, frozenset[str]] = {
    UploadKind.DOCUMENT: frozenset({PDF, PNG, JPEG, WEBP, HEIC, HEIF, CSV, TEXT, DOCX, XLSX, ODT, ODS, ZIP}),
    UploadKind.ATTACHMENT: frozenset({PDF, PNG, JPEG, WEBP, HEIC, HEIF, DOCX, XLSX}),
    UploadKind.CONTRACT: frozenset({PDF}),
    UploadKind.IMPORT: frozenset({CSV, TEXT, XLSX}),
}

# How a refusal says what a kind takes, after "but".
_ACCEPTS: dict[UploadKind, str] = {
    UploadKind.DOCUMENT: (
        "documents can be PDF files, images (PNG, JPEG, WebP, HEIC), text or CSV files, "
        "Word, Excel or OpenDocument files, or ZIP archives of these"
    ),
    UploadKind.ATTACHMENT: (
        "attachments can be PDF files, images (PNG, JPEG, WebP, HEIC), Word documents or Excel workbooks"
    ),
    UploadKind.CONTRACT: "only PDF files can be signed",
    UploadKind.IMPORT: "imports must be CSV or text files in UTF-8, or Excel workbooks (.xlsx)",
}

_KIND_NAMES: dict[UploadKind, str] = {
    UploadKind.DOCUMENT: "documents",
    UploadKind.ATTACHMENT: "attachments",
    UploadKind.CONTRACT: "contracts",
    UploadKind.IMPORT: "imports",
}

# Names that promise something to run or to render: never given to a file we keep, whatever
# its content (a PNG called invoice.exe is refused, not renamed).
_DANGEROUS = """
    exe com scr pif cpl msi msp msc dll sys drv ocx bat cmd ps1 psm1 psd1 vbs vbe js jse mjs cjs wsf wsh
    hta lnk inf reg jar class apk app dmg pkg deb rpm sh bash zsh csh ksh py pyc pyw pl rb php phtml php3
    php4 php5 phar asp aspx jsp cgi html htm xhtml shtml mht mhtml svg svgz xml xsl xslt swf elf bin run so
    dylib iso img vhd vhdx appx msix docm dotm xlsm xltm xlam pptm potm ppam sldm application gadget scf url
    desktop command tool terminal scpt applescript workflow action xht xhtm shtm chm hlp ws wsc sct vb msh
    jnlp xbap appref-ms appinstaller settingcontent-ms library-ms searchconnector-ms diagcab website webloc
    inetloc fileloc iqy slk xll xla ade adp mde accde mst ins isp crx xpi psc1 ps1xml
"""
DANGEROUS_EXTENSIONS = frozenset(f".{ext}" for ext in _DANGEROUS.split())

# Extensions of formats we know but do not take: a name with one of these and a content of
# another format is a mistake worth telling (an image named .doc is not renamed .doc.png).
_OTHER_KNOWN = """
    doc xls ppt pptx odp rtf gif bmp tif tiff avif rar 7z gz tgz tar bz2 xz mp4 mov mp3 wav json eml msg
    pages numbers key ps eps
"""
_OTHER_KNOWN_EXTENSIONS = frozenset(f".{ext}" for ext in _OTHER_KNOWN.split())


# --- limits and settings -------------------------------------------------------------------


def upload_limit(kind: UploadKind | str) -> int:
    """The largest file, in bytes, accepted for ``kind`` (``OPENAR_UPLOAD_LIMITS``)."""
    limits: dict[str, int] = settings.OPENAR_UPLOAD_LIMITS
    return int(limits[str(UploadKind(kind))])


def _archive_max_members() -> int:
    return int(settings.OPENAR_ARCHIVE_MAX_MEMBERS)


def _archive_max_size() -> int:
    return int(settings.OPENAR_ARCHIVE_MAX_SIZE)


def human_size(size: int) -> str:
    """``20 MB``, ``1.5 MB``, ``300 KB``, ``12 bytes``: sizes as a message says them."""
    if size >= MB:
        value = size / MB
        text = f"{value:.1f}".rstrip("0").rstrip(".")
        return f"{text} MB"
    if size >= 1024:
        return f"{round(size / 1024)} KB"
    return f"{size} byte" if size == 1 else f"{size} bytes"


# --- the check -----------------------------------------------------------------------------


def upload_check(
    upload: UploadedFile,
    *,
    kind: UploadKind,
    organization: Organization | None = None,
    actor: User | None = None,
    ip: str | None = None,
) -> CheckedUpload:
    """Accept ``upload`` for ``kind``, or raise ``UploadRejected`` saying why.

    Reads the file (it must be seekable, as Django's uploaded files are), never trusts its
    ``size``, ``content_type`` or ``charset``, and leaves it positioned at 0.

    Malware the scanner finds is logged and, when ``organization`` is given, recorded in its
    audit log (``openar.upload.malware``, with ``actor`` and ``ip`` when known).
    """
    kind = UploadKind(kind)
    limit = upload_limit(kind)
    raw: IO[bytes] | None = upload.file
    if raw is None:
        raise UploadRejected("This file could not be read.")
    declared_name = upload.name or ""
    if upload.size is not None and upload.size > limit:
        raise _too_large(kind, upload.size, limit)
    size, sha256 = _measure(raw, limit, kind)
    if size == 0:
        raise UploadRejected("This file is empty.")

    head = _read_head(raw, 4096)
    content_type = _sniff(raw, head)
    if content_type is None:
        if ACCEPTED[kind] & {TEXT, CSV} and _not_utf8(raw, head):
            raise UploadRejected(
                "This file is text, but not in UTF-8. Save it as UTF-8 (in Excel: “CSV UTF-8”) "
                "and upload it again."
            )
        raise UploadRejected(f"This file is {_describe(raw, head)}, but {_ACCEPTS[kind]}.")
    if content_type not in ACCEPTED[kind]:
        raise UploadRejected(f"This file is {FORMATS[content_type].label}, but {_ACCEPTS[kind]}.")
    content_type = _refine_text(content_type, declared_name, head)
    filename = _filename(declared_name, content_type)

    raw.seek(0)
    scanner = clamd.configured_scanner()
    if scanner is not None:
        _scan(
            scanner,
            raw,
            found=_Found(
                kind=kind,
                filename=filename,
                size=size,
                sha256=sha256,
                organization=organization,
                actor=actor,
                ip=ip,
            ),
        )
    raw.seek(0)
    return CheckedUpload(
        filename=filename,
        content_type=content_type,
        size=size,
        sha256=sha256,
        file=File(raw, name=filename),
    )


def _too_large(kind: UploadKind, size: int | None, limit: int) -> UploadRejected:
    if not size:
        what = "This file is too large"
    elif human_size(size) == human_size(limit):
        what = f"This file is just over {human_size(limit)}"
    else:
        what = f"This file is {human_size(size)}"
    return UploadRejected(
        f"{what}; {_KIND_NAMES[kind]} can be at most {human_size(limit)}.",
        status=413,
        code="too_large",
    )


def _measure(raw: IO[bytes], limit: int, kind: UploadKind) -> tuple[int, str]:
    raw.seek(0)
    digest = hashlib.sha256()
    size = 0
    while chunk := raw.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raw.seek(0, os.SEEK_END)
            raise _too_large(kind, raw.tell(), limit)
        digest.update(chunk)
    raw.seek(0)
    return size, digest.hexdigest()


def _read_head(raw: IO[bytes], count: int) -> bytes:
    raw.seek(0)
    head = raw.read(count)
    raw.seek(0)
    return head


@dataclass(frozen=True)
class _Found:
    """What the audit event of a malware hit says about the upload and who sent it."""

    kind: UploadKind
    filename: str
    size: int
    sha256: str
    organization: Organization | None
    actor: User | None
    ip: str | None


# clamd's answer when a file passes one of its own limits (``AlertExceedsMax yes``): the file
# was not fully scanned, which is not the same as malware found.
_LIMITS_EXCEEDED = "Heuristics.Limits.Exceeded"


def _scan(scanner: clamd.Scanner, raw: IO[bytes], *, found: _Found) -> None:
    try:
        result = scanner.scan(raw)
    except clamd.ScannerUnavailable as exc:
        logger.error("upload refused: the malware scanner is unavailable (%s)", exc)
        raise UploadRejected(
            "This file could not be checked for viruses right now, so it was not accepted. "
            "Please try again in a few minutes.",
            status=503,
            code="scanner_unavailable",
        ) from exc
    if result.infected and result.signature.startswith(_LIMITS_EXCEEDED):
        logger.warning(
            "upload refused: the scanner could not check all of %s (%s, sha256 %s)",
            found.filename,
            result.signature,
            found.sha256,
        )
        raise UploadRejected(
            "This file is too large or holds too many files to be checked for viruses, so it was not "
            "accepted. Split it into smaller files and upload them one by one.",
            code="unscannable",
        )
    if result.infected:
        logger.warning(
            "upload refused: malware %s found in %s (sha256 %s)",
            result.signature,
            found.filename,
            found.sha256,
        )
        _audit_malware(result.signature, found)
        raise UploadRejected(
            f"This file contains malware ({result.signature}) and was not accepted.",
            code="malware",
        )


def _audit_malware(signature: str, found: _Found) -> None:
    """The ``openar.upload.malware`` audit event, when the organization is known (else the
    log line above is all there is)."""
    if found.organization is None:
        return
    from openar.core.audit import log_event  # the audit model is loaded with the apps

    log_event(
        "openar.upload.malware",
        organization=found.organization,
        actor=found.actor,
        ip=found.ip,
        data={
            "signature": signature,
            "kind": str(found.kind),
            "filename": found.filename,
            "size": found.size,
            "sha256": found.sha256,
        },
    )


# --- sniffing ------------------------------------------------------------------------------

_ISO_BMFF_HEIC = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_ISO_BMFF_HEIF = {b"mif1", b"msf1"}


def _sniff(raw: IO[bytes], head: bytes, *, depth: int = 1, budget: _Budget | None = None) -> str | None:
    """The content type of a format some kind accepts, or None. Archives are inspected (and
    may refuse) on the way; ``depth`` is how deep in archives ``raw`` sits. A PDF or an image
    with a ZIP archive attached to its end is refused."""
    content_type = _sniff_document(head)
    if content_type is not None:
        _refuse_appended_zip(raw, content_type)
        return content_type
    if head[4:8] == b"ftyp":
        return None
    if head.startswith(b"PK\x03\x04"):
        return _inspect_zip(raw, depth=depth, budget=budget)
    if head.startswith((b"PK\x05\x06", b"PK\x07\x08")):
        raise UploadRejected("This ZIP archive is empty or damaged.")
    if _binary_magic(head) is not None:
        return None
    if _is_text(raw) and _text_danger(raw) is None:
        return TEXT
    return None


def _sniff_document(head: bytes) -> str | None:
    """PDF, PNG, JPEG, WebP, HEIC or HEIF, from the first bytes."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        brands = {head[i : i + 4] for i in range(16, min(len(head), int.from_bytes(head[:4], "big")), 4)}
        if brand in _ISO_BMFF_HEIC or (brand in _ISO_BMFF_HEIF and brands & _ISO_BMFF_HEIC):
            return HEIC
        if brand in _ISO_BMFF_HEIF:
            return HEIF
    return None


# A ZIP archive is read from its end: its end record (``PK\x05\x06``, 22 bytes and a comment of
# up to 65,535) lies in the last 65,557 bytes. A PDF or an image never holds one there, but one
# with a ZIP archive appended (a "polyglot") opens as the document in a viewer and as the
# archive in an unzipper, and the archive would escape the archive checks.
_EOCD = b"PK\x05\x06"
_EOCD_SEARCH = 65_535 + 22


def _refuse_appended_zip(raw: IO[bytes], content_type: str) -> None:
    raw.seek(0, os.SEEK_END)
    size = raw.tell()
    raw.seek(max(0, size - _EOCD_SEARCH))
    tail = raw.read()
    raw.seek(0)
    at = tail.find(_EOCD)
    while at != -1:
        if at + 22 <= len(tail):
            raise UploadRejected(
                f"This file is {FORMATS[content_type].label} with a ZIP archive attached to its end, "
                "which is not accepted. Save or export it again and upload the new file.",
                code="polyglot",
            )
        at = tail.find(_EOCD, at + 1)


# First bytes of formats we name in a refusal.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"MZ", 0, "a Windows program"),
    (b"\x7fELF", 0, "a Linux program"),
    (b"\xfe\xed\xfa\xce", 0, "a Mac program"),
    (b"\xfe\xed\xfa\xcf", 0, "a Mac program"),
    (b"\xce\xfa\xed\xfe", 0, "a Mac program"),
    (b"\xcf\xfa\xed\xfe", 0, "a Mac program"),
    (b"\xca\xfe\xba\xbe", 0, "a program"),
    (b"\x00asm", 0, "a program"),
    (b"#!", 0, "a script"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "an older or password-protected Office file (.doc, .xls)"),
    (b"Rar!\x1a\x07", 0, "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7-Zip archive"),
    (b"\x1f\x8b", 0, "a gzip archive"),
    (b"BZh", 0, "a bzip2 archive"),
    (b"\xfd7zXZ\x00", 0, "an xz archive"),
    (b"ustar", 257, "a tar archive"),
    (b"MSCF", 0, "a cabinet archive"),
    (b"GIF87a", 0, "a GIF image"),
    (b"GIF89a", 0, "a GIF image"),
    (b"II*\x00", 0, "a TIFF image"),
    (b"MM\x00*", 0, "a TIFF image"),
    (b"{\\rtf", 0, "an RTF document"),
    (b"%!PS", 0, "a PostScript file"),
    (b"CWS", 0, "a Flash file"),
    (b"FWS", 0, "a Flash file"),
    (b"\x00\x00\x01\x00", 0, "an icon"),
)


def _binary_magic(head: bytes) -> str | None:
    for magic, offset, label in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return label
    if head[4:8] == b"ftyp":
        return "an AVIF image" if head[8:12] in {b"avif", b"avis"} else "a video or other media file"
    return None


def _describe(raw: IO[bytes], head: bytes) -> str:
    """What a refused file is, for the message."""
    label = _binary_magic(head)
    if label is not None:
        return label
    danger = _text_danger(raw, anywhere=_is_text(raw))
    if danger is not None:
        return danger
    return "a file of a type that is not accepted"


def _not_utf8(raw: IO[bytes], head: bytes) -> bool:
    """Looks like text in another encoding (Windows-1252, Latin-1...): no NUL bytes, mostly
    printable, but not valid UTF-8."""
    if b"\x00" in head or _binary_magic(head) is not None:
        return False
    printable = sum(1 for byte in head if byte >= 0x20 or byte in b"\t\r\n\f")
    return printable >= len(head) * 0.95 and not _is_text(raw)


# What a browser would take for a web page, an SVG image or a script wherever it stands in a
# text file (a browser sniffing a page, or a file saved and opened as .html, does not care
# about what comes first). Tags as a browser reads them: "<script>" and "<script src" count,
# "<scripted>" does not.
_MARKUP_ANYWHERE = re.compile(r"<(script|html|svg|iframe)[\s/>]|<(!doctype)\s+html\b|<(\?php)\b")
_LEADING_BLANK = re.compile(r"[\s\ufeff\u200b\u2060]*")


def _text_scan(raw: IO[bytes]) -> tuple[str, str | None]:
    """The first 1,024 characters after any leading blanks (however many), lower-cased, and
    the first tag of ``_MARKUP_ANYWHERE`` found anywhere in the text ("<script"); the whole
    file is read in chunks (its size is already bounded by the kind's limit)."""
    raw.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
    start = ""
    started = False
    carry = ""  # the end of the previous chunk, for a marker cut in two
    found: str | None = None
    keep = 40
    try:
        while chunk := raw.read(CHUNK):
            text = decoder.decode(chunk).lower()
            if not started:
                blank = _LEADING_BLANK.match(text)
                text_start = text[blank.end() if blank else 0 :]
                started = bool(text_start)
                start = text_start[:1024]
            elif len(start) < 1024:
                start += text[: 1024 - len(start)]
            window = carry + text
            match = _MARKUP_ANYWHERE.search(window)
            if match is not None:
                found = "<" + ("!doctype html" if match[2] else match[1] or match[3])
                break
            carry = window[-keep:]
    finally:
        raw.seek(0)
    return start, found


def _text_danger(raw: IO[bytes], *, anywhere: bool = True) -> str | None:
    """Text that a browser would render or a machine would run: refused whatever its name.
    Its start is read past any blanks; with ``anywhere``, markup further in counts too."""
    start, found = _text_scan(raw)
    label = _start_danger(start)
    if label is None and anywhere and found is not None:
        label = f"text with web page or script code in it (“{found}”)"
    return label


def _start_danger(start: str) -> str | None:
    if start.startswith("#!"):
        return "a script"
    if start.startswith(("<?php", "<%")):
        return "a script"
    if start.startswith("<svg") or (
        "<svg" in start[:512] and start.startswith(("<?xml", "<!doctype", "<!--"))
    ):
        return "an SVG image"
    if start.startswith(("<!doctype html", "<html", "<head", "<body", "<script", "<iframe", "<meta", "<!--")):
        return "a web page (HTML)"
    if start.startswith("<?xml") or start.startswith("<!doctype"):
        return "an XML file"
    if start.startswith("<") and any(
        tag in start for tag in ("<script", "<html", "<body", "<iframe", "<img")
    ):
        return "a web page (HTML)"
    return None


def _is_text(raw: IO[bytes]) -> bool:
    """UTF-8 (a BOM allowed) from start to end, without NUL bytes."""
    raw.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        while chunk := raw.read(CHUNK):
            if b"\x00" in chunk:
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    finally:
        raw.seek(0)
    return True


def _refine_text(content_type: str, declared_name: str, head: bytes) -> str:
    """Plain text or CSV: both are harmless text, so the name decides between the two; a
    name with neither extension, the content (lines of the same number of separators)."""
    if content_type != TEXT:
        return content_type
    extension = _extension(declared_name)
    if extension in FORMATS[CSV].extensions:
        return CSV
    if extension in FORMATS[TEXT].extensions:
        return TEXT
    return CSV if _looks_delimited(head.decode("utf-8", errors="ignore")) else TEXT


def _looks_delimited(sample: str) -> bool:
    lines = [line for line in sample.splitlines()[:20] if line.strip()]
    if sample and not sample.endswith(("\n", "\r")) and len(lines) > 2:
        lines = lines[:-1]  # the sample may end in the middle of a line
    if len(lines) < 2:
        return False
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|")
    except csv.Error:
        return False
    counts = {line.count(dialect.delimiter) for line in lines}
    return len(counts) == 1 and next(iter(counts)) >= 1


# --- archives ------------------------------------------------------------------------------


@dataclass
class _Budget:
    members: int = 0
    unpacked: int = 0


def _inspect_zip(raw: IO[bytes], *, depth: int, budget: _Budget | None = None) -> str:
    """The type of a zip-based file (office document or plain ZIP), after the archive checks:
    entries and unpacked bytes counted against the limits (shared with the archives around
    it, through ``budget``), no encryption, every entry listed in the central directory (no
    entry hidden between or after them, none overlapping), no names outside the archive,
    only files and empty folders (no links or devices), and for a plain ZIP each member a
    format documents accept, named for its content and not marked executable."""
    if budget is None:
        budget = _Budget()
    raw.seek(0)
    try:
        archive = zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise UploadRejected("This ZIP archive is damaged and could not be read.") from exc
    with archive:
        infos = archive.infolist()
        if any(info.flag_bits & 0x1 for info in infos):
            raise UploadRejected(
                "This file is encrypted (password-protected), so it cannot be checked; "
                "upload it without a password."
            )
        _check_layout(raw, infos, int(archive.start_dir))
        for info in infos:
            _refuse_special_member(info)
        names = {info.filename for info in infos}
        kind = _zip_kind(archive, names)
        max_members = _archive_max_members()
        max_size = _archive_max_size()
        for info in infos:
            budget.members += 1
            if budget.members > max_members:
                raise UploadRejected(
                    f"This archive holds more than {max_members} files, which is more than accepted."
                )
            if _unsafe_member_name(info.filename):
                raise UploadRejected("This archive names a file outside itself, which is not accepted.")
            if budget.unpacked + info.file_size > max_size:
                raise _archive_too_big(max_size)
            if _member_is_folder(info, kind=kind):
                if info.file_size or _unpack(archive, info, budget, None):
                    raise UploadRejected(
                        f"This archive contains “{_member_label(info)}”, a folder that carries data, "
                        "which is not accepted."
                    )
                continue
            if kind == ZIP:
                _check_member(archive, info, depth=depth, budget=budget)
            else:
                _unpack(archive, info, budget, None)
        return kind


def _archive_too_big(max_size: int) -> UploadRejected:
    return UploadRejected(
        f"This archive unpacks to more than {human_size(max_size)}, which is more than accepted."
    )


def _unpack(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget, into: IO[bytes] | None) -> int:
    """Unpack one member, counting what it really unpacks to (headers can lie), into ``into``
    when given; the number of bytes it unpacked to."""
    max_size = _archive_max_size()
    unpacked = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(CHUNK):
                unpacked += len(chunk)
                budget.unpacked += len(chunk)
                if budget.unpacked > max_size:
                    raise _archive_too_big(max_size)
                if into is not None:
                    into.write(chunk)
        return unpacked
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise UploadRejected("This ZIP archive is damaged or uses an unsupported compression.") from exc


def _member_label(info: zipfile.ZipInfo) -> str:
    """A member's name as a message shows it: its last part, cleaned (a folder keeps its /)."""
    name = _clean_name(info.filename.rstrip("/\\")) or "a file"
    return f"{name}/" if info.filename.endswith(("/", "\\")) else name


def _refuse_special_member(info: zipfile.ZipInfo) -> None:
    """A member must be a file or a folder: a link, a device or any other special file is
    refused.

    The type and permissions are the Unix mode in the high 16 bits of the external
    attributes, as Info-ZIP, macOS and Python write them (whatever system made the
    archive: unzip honours them wherever they are set)."""
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type == stat.S_IFLNK:
        raise UploadRejected(
            f"This archive contains “{_member_label(info)}”, a link to another file, which is not accepted."
        )
    if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise UploadRejected(
            f"This archive contains “{_member_label(info)}”, which is not a file or a folder "
            "(a device or another special file), which is not accepted."
        )


def _member_is_folder(info: zipfile.ZipInfo, *, kind: str) -> bool:
    """Whether ``info`` is a folder (by its name's slash or its mode); a file of a plain ZIP
    marked executable is refused."""
    mode = info.external_attr >> 16
    if info.is_dir() or stat.S_IFMT(mode) == stat.S_IFDIR:
        return True
    if kind == ZIP and mode & 0o111:
        raise UploadRejected(
            f"This archive contains “{_member_label(info)}”, marked as a program (executable), "
            "which is not accepted. Make an archive of the files again without that mark."
        )
    return False


_LOCAL_HEADER = b"PK\x03\x04"


def _check_layout(raw: IO[bytes], infos: list[zipfile.ZipInfo], central_directory: int) -> None:
    """Every entry stored in the archive must be one its central directory lists.

    Unzippers that read the central directory (as this module does) and those that stream
    the local entries from the start must see the same files: the listed entries, each its
    local header, name and data, must follow each other from the first byte without
    overlapping, and no local header may hide in a gap between them or between the last and
    the central directory (gaps hold only data descriptors)."""
    raw.seek(0, os.SEEK_END)
    size = raw.tell()
    regions: list[tuple[int, int]] = []
    try:
        for info in sorted(infos, key=lambda info: info.header_offset):
            raw.seek(info.header_offset)
            header = raw.read(30)
            if len(header) < 30 or header[:4] != _LOCAL_HEADER:
                raise _damaged_zip()
            flags, local_size, name_length, extra_length = struct.unpack("<H10xI4xHH", header[6:30])
            if not flags & 0x08 and local_size not in (info.compress_size, 0xFFFFFFFF):
                raise _damaged_zip()  # a streaming unzipper would read other data than we do
            start = info.header_offset
            end = start + 30 + name_length + extra_length + info.compress_size
            if end > central_directory:
                raise _damaged_zip()
            regions.append((start, end))
        position = 0
        for start, end in regions:
            if start < position:
                raise _damaged_zip()  # entries overlap (or one is listed twice)
            _refuse_hidden_entry(raw, position, start)
            position = end
        _refuse_hidden_entry(raw, position, min(central_directory, size))
    finally:
        raw.seek(0)


def _refuse_hidden_entry(raw: IO[bytes], start: int, end: int) -> None:
    """A local header signature between ``start`` and ``end`` (read in chunks)."""
    raw.seek(start)
    carry = b""
    while start < end:
        chunk = raw.read(min(CHUNK, end - start))
        if not chunk:
            break
        start += len(chunk)
        if _LOCAL_HEADER in carry + chunk:
            raise UploadRejected(
                "This ZIP archive holds a file that its list of contents does not show, "
                "which is not accepted."
            )
        carry = chunk[-3:]


def _damaged_zip() -> UploadRejected:
    return UploadRejected("This ZIP archive is damaged and could not be read.")


def _unsafe_member_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":")


def _zip_kind(archive: zipfile.ZipFile, names: set[str]) -> str:
    """DOCX, XLSX, ODT, ODS or plain ZIP, from the members; office files with macros refused."""
    if "[Content_Types].xml" in names:
        types = _read_small(archive, "[Content_Types].xml").lower()
        if b"macroenabled" in types or any(name.lower().endswith("vbaproject.bin") for name in names):
            raise UploadRejected(
                "This Office file contains macros, which are not accepted; save it without macros "
                "(as .docx or .xlsx) and upload it again."
            )
        if "word/document.xml" in names and b"wordprocessingml.document.main+xml" in types:
            return DOCX
        if "xl/workbook.xml" in names and b"spreadsheetml.sheet.main+xml" in types:
            return XLSX
        raise UploadRejected(
            "This Office file is not a Word document or an Excel workbook, the Office files accepted."
        )
    if "mimetype" in names:
        mimetype = _read_small(archive, "mimetype").strip().decode("ascii", errors="replace")
        if any(name.startswith(("Basic/", "Scripts/")) for name in names):
            raise UploadRejected(
                "This OpenDocument file contains macros, which are not accepted; save it without macros "
                "and upload it again."
            )
        if mimetype == ODT:
            return ODT
        if mimetype == ODS:
            return ODS
        if mimetype.startswith("application/vnd.oasis.opendocument."):
            raise UploadRejected(
                "This OpenDocument file is not a text document or a spreadsheet, which are the ones accepted."
            )
    return ZIP


def _read_small(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        with archive.open(name) as member:
            return member.read(256 * 1024)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise UploadRejected("This file is damaged and could not be read.") from exc


def _check_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, depth: int, budget: _Budget) -> None:
    """A member of a plain ZIP must be a format documents take, named for what it holds (a
    ZIP cannot be renamed as an upload is: its extension must be one of its content's), not
    named like a program, and may itself be an archive only one level down. It is unpacked
    to a spooled file (memory up to 2.5 MB, then disk), never whole into memory."""
    name = _clean_name(info.filename) or "a file"
    as_stored = unicodedata.normalize("NFC", info.filename).replace("\\", "/").rsplit("/", 1)[-1]
    if {_extension(name), _extension(as_stored)} & DANGEROUS_EXTENSIONS:
        raise UploadRejected(f"This archive contains “{name}”, named like a program or a web page.")
    with tempfile.SpooledTemporaryFile(max_size=2_621_440) as member:
        _unpack(archive, info, budget, member)
        if member.tell() == 0:
            return
        head = _read_head(member, 4096)
        if head.startswith(b"PK\x03\x04") and depth >= 2:
            raise UploadRejected(
                f"This archive contains “{name}”, an archive inside an archive inside an archive; "
                "only one level of archives inside an archive is accepted."
            )
        try:
            member_type = _sniff(member, head, depth=depth + 1, budget=budget)
        except UploadRejected as exc:
            if exc.code != "polyglot":
                raise
            raise UploadRejected(
                f"This archive contains “{name}”, {exc.message.removeprefix('This file is ')}",
                code="polyglot",
            ) from exc
        what = "" if member_type is not None else _describe(member, head)
    if member_type is None or member_type not in ACCEPTED[UploadKind.DOCUMENT]:
        what = FORMATS[member_type].label if member_type is not None else what
        raise UploadRejected(
            f"This archive contains “{name}”, which is {what}; an archive can only hold files "
            "that documents accept."
        )
    _member_named_for_content(name, member_type)


def _member_named_for_content(name: str, content_type: str) -> None:
    """The member's extension is one of its content's (or of the same family: a .jpg that is
    a PNG), as an unzipper will open it by that extension."""
    fmt = FORMATS[content_type]
    extension = _extension(name)
    if extension in fmt.extensions:
        return
    other = _format_of_extension(extension) if extension else None
    if other is not None and other.family == fmt.family:
        return
    raise UploadRejected(
        f"This archive contains “{name}”, which is {fmt.label} but is not named like one; each file "
        f"in an archive must have the extension of what it holds ({fmt.extension} for {fmt.label})."
    )


# --- names ---------------------------------------------------------------------------------

_MAX_NAME = 150


def _extension(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    return f".{ext.lower().strip()}" if dot and stem.strip(". ") else ""


def _clean_name(name: str) -> str:
    """The last part of a path, without control or formatting characters (bidi overrides),
    whitespace collapsed, no leading dots, at most 150 characters."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(" " if ch.isspace() else ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = " ".join(name.split()).lstrip(". ").rstrip(". ")
    for ch in '<>:"|?*':
        name = name.replace(ch, "_")
    return name


def _filename(declared: str, content_type: str) -> str:
    """The uploaded name, cleaned, with an extension of its content; a name that claims to be
    something else (a program, a web page, another format) is refused."""
    fmt = FORMATS[content_type]
    name = _clean_name(declared)
    extension = _extension(name)
    stem = name[: -len(extension)] if extension else name
    if extension in DANGEROUS_EXTENSIONS:
        raise UploadRejected(
            f"This file is named “{name}”, like a program or a web page, but contains {fmt.label}. "
            "Check that you chose the right file, or rename it."
        )
    if extension and extension not in fmt.extensions:
        other = _format_of_extension(extension)
        if other is not None and other.family != fmt.family:
            raise UploadRejected(
                f"This file is named “{name}”, like {other.label}, but contains {fmt.label}. "
                "Check that you chose the right file, or rename it."
            )
        if other is None and extension in _OTHER_KNOWN_EXTENSIONS:
            raise UploadRejected(
                f"This file is named “{name}”, but contains {fmt.label}. "
                "Check that you chose the right file, or rename it."
            )
        if other is not None:  # same family: a .jpg that is a PNG becomes .png
            extension = ""
        else:  # not an extension we know ("report.v2"): keep it as part of the name
            stem, extension = name, ""
    if not extension:
        extension = fmt.extension
    stem = stem.strip() or "upload"
    stem = stem[: _MAX_NAME - len(extension)].rstrip(". ")
    return f"{stem}{extension}"


def _format_of_extension(extension: str) -> Format | None:
    for fmt in FORMATS.values():
        if extension in fmt.extensions:
            return fmt
    return None


# --- storing -------------------------------------------------------------------------------


def upload_storage_name(folder: str, extension: str) -> str:
    """A name the server makes for a stored upload: ``<folder>/<yyyy>/<mm>/<random><ext>``.

    Nothing of the uploaded name reaches storage: the name is 128 random bits and the
    extension of the content."""
    now = timezone.now()
    folder = folder.strip("/")
    return f"{folder}/{now:%Y}/{now:%m}/{secrets.token_hex(16)}{extension}"


def upload_save(checked: CheckedUpload, *, folder: str, storage: Storage | None = None) -> str:
    """Save ``checked`` through Django's storage API under a server-made name and return the
    name the storage chose. Inside ``openar.core.files.atomic_with_files`` the file is
    removed again if the transaction rolls back."""
    storage = storage or default_storage
    checked.file.seek(0)
    name = storage.save(upload_storage_name(folder, checked.extension), checked.file)
    file_saved(storage, name)
    checked.file.seek(0)
    return name


# --- downloads -----------------------------------------------------------------------------


def content_disposition(filename: str) -> str:
    """``attachment`` with a safe name (RFC 6266): an ASCII ``filename`` for every browser and,
    when the name is not plain ASCII, the exact one in ``filename*`` (UTF-8, RFC 5987)."""
    name = _clean_name(filename) or "download"
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = (
        "".join(ch if ch.isalnum() or ch in " ._-()" else "_" for ch in ascii_name).strip() or "download"
    )
    if fallback == name:
        return f'attachment; filename="{fallback}"'
    encoded = quote(name, safe="!#$&+-.^_`|~")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def served_content_type(content_type: str) -> str:
    """The type a stored upload is served with: one of the accepted formats (text in UTF-8),
    else ``application/octet-stream``; never a type a browser renders as a page."""
    base = content_type.split(";", 1)[0].strip().lower()
    if base not in FORMATS:
        return "application/octet-stream"
    return f"{base}; charset=utf-8" if base.startswith("text/") else base


def protect_download(response: HttpResponseBase, *, filename: str) -> HttpResponseBase:
    """The headers every download of user content carries: saved, never shown inline
    (``Content-Disposition: attachment``), its type not guessed (``nosniff``), and, should a
    browser render it anyway, in a sandbox with nothing allowed (``Content-Security-Policy``);
    kept out of shared caches and other sites' pages."""
    response["Content-Disposition"] = content_disposition(filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = "private, no-store"
    return response


def attachment_response(file: IO[bytes], *, filename: str, content_type: str) -> FileResponse:
    """A stored upload (or any user content) as a download: see ``protect_download``."""
    response = FileResponse(file, content_type=served_content_type(content_type))
    protect_download(response, filename=filename)
    return response


# --- requests ------------------------------------------------------------------------------

# Room for the form's other fields and multipart framing next to the files.
FORM_ALLOWANCE = 1 * MB

_ViewFunc = TypeVar("_ViewFunc", bound=Callable[..., Any])


def accepts_uploads(kind: UploadKind, *, max_files: int = 1) -> Callable[[_ViewFunc], _ViewFunc]:
    """Mark a view as taking up to ``max_files`` files of ``kind``: ``UploadLimitMiddleware``
    refuses a larger request body before reading it. Views without the mark get the largest
    limit of any kind."""

    def mark(view: _ViewFunc) -> _ViewFunc:
        view.openar_upload_kind = UploadKind(kind)  # type: ignore[attr-defined]
        view.openar_upload_max_files = max_files  # type: ignore[attr-defined]
        return view

    return mark


def request_body_limit(view: Callable[..., Any] | None = None) -> int:
    """The largest request body accepted by ``view`` (see ``accepts_uploads``)."""
    kind = getattr(view, "openar_upload_kind", None)
    if kind is not None:
        return upload_limit(kind) * int(getattr(view, "openar_upload_max_files", 1)) + FORM_ALLOWANCE
    return max(upload_limit(kind) for kind in UploadKind) + FORM_ALLOWANCE


class UploadLimitMiddleware:
    """Answers 413, with a page that says why, to a multipart request whose declared body is
    larger than the view takes, without reading the body. It runs before the CSRF check
    (which would read the body)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: Iterable[Any],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if request.method not in {"POST", "PUT", "PATCH"}:
            return None
        if not request.META.get("CONTENT_TYPE", "").startswith("multipart/"):
            return None
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        limit = request_body_limit(view_func)
        if length <= limit:
            return None
        kind: UploadKind | None = getattr(view_func, "openar_upload_kind", None)
        max_files = int(getattr(view_func, "openar_upload_max_files", 1))
        if kind is not None and max_files > 1:
            message = (
                f"This upload is {human_size(length)}; send at most {max_files} files at a time, "
                f"each of at most {human_size(upload_limit(kind))}."
            )
        elif kind is not None:
            message = (
                f"This upload is {human_size(length)}; {_KIND_NAMES[kind]} can be at most "
                f"{human_size(upload_limit(kind))}."
            )
        else:
            message = f"This upload is {human_size(length)}, more than the {human_size(limit)} accepted."
        logger.info("upload refused before reading: %s bytes for %s", length, request.path)
        return upload_rejected_response(request, UploadRejected(message, status=413, code="too_large"))


def upload_rejected_response(request: HttpRequest, exc: UploadRejected) -> HttpResponse:
    """A page that says why an upload was refused, with its status; for front doors that
    have no form of their own to show the message on."""
    html = render_to_string(
        "core/upload_rejected.html",
        {"message": exc.message, "back": _same_site_referer(request)},
        request=request,
    )
    return HttpResponse(html, status=exc.status)


def _same_site_referer(request: HttpRequest) -> str:
    referer = str(request.META.get("HTTP_REFERER", ""))
    origin = f"{request.scheme}://{request.get_host()}/"
    return referer if referer.startswith(origin) else ""


def uploads_from(
    request: HttpRequest,
    field: str,
    kind: UploadKind,
    *,
    required: bool = True,
    max_files: int = 1,
    organization: Organization | None = None,
) -> list[CheckedUpload]:
    """The files posted in ``field``, each checked for ``kind``; raises ``UploadRejected``
    (with ``field`` set) for the first refused, for a missing file when ``required``, and for
    more than ``max_files``.

    Malware found is audited in ``organization``, by default the request's own (set by the
    tenant middleware for every signed-in person, staff and customers alike), with the
    signed-in user as the actor and the client's address."""
    uploads = request.FILES.getlist(field)
    if not uploads:
        if required:
            raise UploadRejected("Choose a file to upload.", field=field, code="required")
        return []
    if len(uploads) > max_files:
        raise UploadRejected(
            f"Upload at most {max_files} file{'s' if max_files != 1 else ''} at a time.", field=field
        )
    if organization is None:
        organization = getattr(request, "organization", None)
    user = getattr(request, "user", None)
    actor = user if user is not None and user.is_authenticated else None
    ip = client_ip(request)
    checked: list[CheckedUpload] = []
    for upload in uploads:
        try:
            checked.append(upload_check(upload, kind=kind, organization=organization, actor=actor, ip=ip))
        except UploadRejected as exc:
            exc.field = field
            if len(uploads) > 1:
                exc.message = f"{_clean_name(upload.name or '') or 'A file'}: {exc.message}"
                exc.args = (exc.message,)
            raise
    return checked
