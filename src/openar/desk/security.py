"""Desk pages for admins: the security policy and the security log."""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Iterator

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.desk.forms import AuditFilterForm, SecurityPolicyForm
from openar.identity.magic import magic_links_revoke_organization
from openar.tenants.access import Access, actor_of, require
from openar.tenants.models import policy_for
from openar.tenants.permissions import Perm
from openar.tenants.services import POLICY_FIELDS, policy_update

admin_required = require(Perm.DESK_ADMIN)


def _access(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


@require_http_methods(["GET", "POST"])
@admin_required
def policy(request: HttpRequest) -> HttpResponse:
    access = _access(request)
    current = policy_for(access.organization)
    form = SecurityPolicyForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in POLICY_FIELDS}
        try:
            policy_update(organization=access.organization, actor=actor_of(request), changes=changes)
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Security policy saved.")
            return HttpResponseRedirect(reverse("desk:security"))
    return render(
        request,
        "desk/security_policy.html",
        {"form": form, "policy": current, "nav": "security"},
        status=400 if form.errors else 200,
    )


@require_POST
@admin_required
def revoke_all_links(request: HttpRequest) -> HttpResponse:
    count = magic_links_revoke_organization(
        organization=_access(request).organization, actor=actor_of(request)
    )
    messages.success(request, f"Withdrew {count} sign-in link{'s' if count != 1 else ''}.")
    return HttpResponseRedirect(reverse("desk:security"))


def _events(request: HttpRequest, form: AuditFilterForm) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.select_related("actor").order_by("-created_at", "-pk")
    data = form.cleaned_data
    if not data["everything"]:
        events = events.exclude(_business_events())
    if data["action"]:
        events = events.filter(action__startswith=data["action"].strip())
    if data["actor"]:
        events = events.filter(actor__email__iexact=data["actor"].strip())
    if data["since"]:
        events = events.filter(created_at__gte=_start_of(data["since"]))
    if data["until"] and data["until"] < datetime.date.max:
        events = events.filter(created_at__lt=_start_of(data["until"] + datetime.timedelta(days=1)))
    return events


BUSINESS_PREFIXES = ("openar.invoice.", "openar.credit_note.", "openar.payment.", "openar.document.")


def _business_events() -> Q:
    """Ledger and document events: in the log, but not what a security review looks for."""
    query = Q()
    for prefix in BUSINESS_PREFIXES:
        query |= Q(action__startswith=prefix)
    return query


def _start_of(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=datetime.UTC)


@require_safe
@admin_required
def security_log(request: HttpRequest) -> HttpResponseBase:
    form = AuditFilterForm(request.GET)  # unbound fields default to "security events, all time"
    if not form.is_valid():
        return render(
            request, "desk/security_log.html", {"form": form, "page": None, "nav": "log"}, status=400
        )
    events = _events(request, form)
    if request.GET.get("format") == "csv":
        return _csv(events)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "desk/security_log.html", {"form": form, "page": page, "nav": "log"})


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv(events: QuerySet[AuditEvent]) -> StreamingHttpResponse:
    """The filtered log as CSV, streamed (times in UTC, ISO 8601)."""
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(
            ["time_utc", "action", "actor", "object_type", "object_id", "ip", "request_id", "data"]
        )
        for event in events.iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    _cell(value)
                    for value in (
                        event.created_at.astimezone(datetime.UTC).isoformat(),
                        event.action,
                        event.actor.email if event.actor else "",
                        event.object_type,
                        event.object_id,
                        event.ip or "",
                        event.request_id,
                        event.data,
                    )
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="security-log.csv"'
    return response


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will never run as a formula."""
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    )
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
