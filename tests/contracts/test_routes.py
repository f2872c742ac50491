"""Every contract route answers its own ids (a signed contract: each page and download shows
it) and refuses another organization's with a 404, in the portal and at the desk: the same
expectations as the isolation harness, for the routes of this app."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from django.urls import URLPattern
from pypdf import PdfReader

from factories import Users, signed_in
from openar.contracts import desk_urls, portal_urls
from openar.contracts.models import Contract

from .conftest import SignFn, fresh, full_client, pdf_bytes

pytestmark = pytest.mark.usefixtures("clock")


def body_of(response: object) -> str:
    raw = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
    parts = [raw.decode("utf-8", errors="replace")]
    if raw.startswith(b"%PDF"):
        parts += [page.extract_text() for page in PdfReader(io.BytesIO(raw)).pages]
    return "\n".join(parts)


def paths(patterns: list[URLPattern], prefix: str, contract: Contract) -> list[str]:
    return [
        prefix + str(p.pattern).replace("<int:contract_id>", str(contract.pk))
        for p in patterns
        if "<int:contract_id>" in str(p.pattern)
    ]


# The routes that only take a POST, sent empty for a signed contract: each refuses with a
# 400 that names what is wrong, on the contract's own page.
EMPTY_POST = {
    "send/": "This contract is signed: it cannot be sent.",
    "withdraw/": "This contract is signed: it cannot be withdrawn.",
    "verify/": "Choose the PDF file to check.",
}


def answers(client: Client, path: str, title: str) -> str:
    response = client.get(path)
    if response.status_code == 405:
        suffix = path.rstrip("/").rsplit("/", 1)[-1] + "/"
        response = client.post(path)
        if response.status_code != 400:
            return f"POST {path}: {response.status_code}"
        body = body_of(response)
        missing = [text for text in (title, EMPTY_POST[suffix]) if text not in body]
        return f"POST {path}: does not show {missing!r}" if missing else ""
    if response.status_code != 200:
        return f"{path}: {response.status_code}"
    return "" if title in body_of(response) else f"{path}: does not show {title!r}"


def test_own_ids_answer_and_foreign_ids_are_404(
    make_contract, sign: SignFn, users: Users, linked, other_customer
) -> None:
    title = "Agreement TAG-A"
    mine = sign(make_contract(linked.customer, title=title, content=pdf_bytes(title)), linked)
    theirs = make_contract(other_customer, title="Agreement TAG-X", content=pdf_bytes("Agreement TAG-X"))
    for client, patterns, prefix in (
        (full_client(users.customer), portal_urls.urlpatterns, "/portal/"),
        (signed_in(users.admin), desk_urls.urlpatterns, "/desk/"),
    ):
        checked = paths(patterns, prefix, mine)
        problems = [p for path in checked if (p := answers(client, path, title))]
        assert problems == []
        posted = sorted(path.removeprefix(f"{prefix}contracts/{mine.pk}/") for path in checked)
        assert [p for p in posted if p in EMPTY_POST] == (
            ["send/", "verify/", "withdraw/"] if prefix == "/desk/" else ["verify/"]
        )
        assert fresh(mine).state == "signed"
        for path in paths(patterns, prefix, theirs):
            response = client.get(path)
            if response.status_code == 405:
                response = client.post(path)
            assert response.status_code == 404, path
            assert "TAG-X" not in body_of(response), path
