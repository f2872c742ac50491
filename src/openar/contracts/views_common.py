"""What the portal's and the desk's contract pages share: a contract's PDF as a download
(never rendered inline), the verification of an uploaded file, hashed as it streams in and
never stored, and which contracts a portal session may see (its sign-in link's scope)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpRequest

from openar.contracts.models import Contract
from openar.contracts.services import CONTRACT_SCOPES, VerifyResult, contract_verify_stream, contracts_visible
from openar.core.uploads import UploadKind, upload_limit
from openar.identity.models import MagicLink
from openar.tenants.access import Access
from openar.tenants.middleware import MAGIC_SESSION_KEY

_LINK_CONTRACT = "_openar_link_contract_id"


def link_contract_id(request: HttpRequest, access: Access) -> int | None:
    """The contract a sign-in link of scope "contract" leads to (None for any other
    session); asked once per request."""
    if not access.is_narrow or access.link_scope != MagicLink.Scope.CONTRACT:
        return None
    if not hasattr(request, _LINK_CONTRACT):
        data = request.session.get(MAGIC_SESSION_KEY)
        link_id = data.get("link") if isinstance(data, dict) else None
        found = (
            MagicLink.objects.filter(pk=link_id, contact=access.contact, scope=MagicLink.Scope.CONTRACT)
            .values_list("contract_id", flat=True)
            .first()
            if isinstance(link_id, int) and access.contact is not None
            else None
        )
        setattr(request, _LINK_CONTRACT, found)
    contract_id: int | None = getattr(request, _LINK_CONTRACT)
    return contract_id


def sees_contracts(access: Access) -> bool:
    """Whether the session may see any contract at all (a link to one invoice, to what is
    past due or to the pay page may not)."""
    return (access.link_scope if access.is_narrow else "") in CONTRACT_SCOPES


def session_contracts(request: HttpRequest, access: Access) -> QuerySet[Contract]:
    """The contracts of the portal's customer that this session may see."""
    assert access.customer is not None  # noqa: S101  (portal sessions have a customer)
    link_scope = access.link_scope if access.is_narrow else ""
    return contracts_visible(
        access.customer, link_scope=link_scope, contract_id=link_contract_id(request, access)
    )


def contract_file_response(file: FieldFile, filename: str) -> FileResponse:
    if not file:
        raise Http404("No file.")
    try:
        handle = file.open("rb")
    except (FileNotFoundError, OSError) as exc:
        raise Http404("The file is missing.") from exc
    response = FileResponse(handle, as_attachment=True, filename=filename, content_type="application/pdf")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


def verify_upload(request: HttpRequest, contract: Contract) -> tuple[VerifyResult | None, str]:
    """The result of comparing the posted file ("file") with ``contract``, or a message
    saying what is wrong with the request."""
    upload = request.FILES.get("file")
    if upload is None:
        return None, "Choose the PDF file to check."
    if upload.size is not None and upload.size > upload_limit(UploadKind.CONTRACT):
        return None, "This file is larger than any contract here, so it cannot match."
    return contract_verify_stream(contract, upload.chunks()), ""
