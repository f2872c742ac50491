"""The creditor-client portal's pages: the accounts the creditor placed, and one account
whole (summary, invoices, payments, promises, plans, disputes, holds, contacts, documents,
what was sent to the debtor, and the timeline a creditor may read).

Only creditor-client users come in (``client_required``); an account that another creditor
placed, or that belongs to another organization, is a 404.
"""

from __future__ import annotations

import datetime

from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_safe

from openar.billing.presenters import document_response
from openar.billing.selectors import customer_aging
from openar.billing.services import Downloader, document_download_audit
from openar.client import selectors
from openar.core.http import client_ip
from openar.customers.models import Customer, Hold
from openar.notifications.models import Thread
from openar.tenants.access import Access, actor_of, require
from openar.tenants.models import Creditor
from openar.tenants.permissions import Perm

client_required = require(Perm.CLIENT_VIEW)
PAGE_SIZE = 25
TIMELINE_PAGE_SIZE = 50


def access_of_client(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


def creditor_of(request: HttpRequest) -> Creditor:
    creditor = access_of_client(request).creditor
    if creditor is None:  # CLIENT_VIEW is only granted with a creditor; never guess one
        raise Http404
    return creditor


def placed_account(request: HttpRequest, customer_id: int) -> Customer:
    """One account this creditor placed, or a 404 (another creditor's, another agency's)."""
    return get_object_or_404(
        selectors.placed_accounts(creditor_of(request)).select_related("creditor", "assigned_collector"),
        pk=customer_id,
    )


def last_day(hold: Hold, customer: Customer) -> datetime.date | None:
    """The last day a hold covers, in the organization's time zone (it ends at the start
    of the next day)."""
    if hold.expires_at is None:
        return None
    return (hold.expires_at.astimezone(customer.organization.tz) - datetime.timedelta(microseconds=1)).date()


def context(request: HttpRequest, **extra: object) -> dict[str, object]:
    return {"creditor": creditor_of(request), **extra}


@require_safe
@client_required
def accounts(request: HttpRequest) -> HttpResponse:
    creditor = creditor_of(request)
    today = creditor.organization.today()
    filters, errors = selectors.account_filters(request.GET.dict())
    queryset = selectors.account_list(creditor, today=today, filters=filters)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "account": account,
            "age": (today - account.oldest_due).days if account.oldest_due else 0,  # type: ignore[attr-defined]
            "status": account.status,  # type: ignore[attr-defined]
            "status_label": selectors.STATUSES[account.status],  # type: ignore[attr-defined]
        }
        for account in page.object_list
    ]
    return render(
        request,
        "client/accounts.html",
        context(
            request,
            rows=rows,
            page=page,
            filters=filters,
            errors=errors,
            statuses=selectors.STATUSES,
            ages=selectors.AGES,
            sorts={key: label for key, (label, _) in selectors.SORTS.items()},
            collectors=selectors.collectors_of(creditor),
            today=today,
            nav="accounts",
        ),
    )


@require_safe
@client_required
def account(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = placed_account(request, customer_id)
    creditor = customer.creditor
    today = customer.organization.today()
    timeline = Paginator(selectors.account_timeline(customer), TIMELINE_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    now = timezone.now()
    holds = list(selectors.account_holds(customer))
    releasable = set(  # in force (neither released nor ended) and placed by the creditor's people
        selectors.account_holds(customer)
        .filter(selectors.holds_releasable_by(creditor), released_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .values_list("pk", flat=True)
    )
    return render(
        request,
        "client/account.html",
        context(
            request,
            customer=customer,
            aging=customer_aging(customer, today),
            invoices=[
                (invoice, invoice.status_on(today)) for invoice in selectors.account_invoices(customer)
            ],
            payments=list(selectors.account_payments(customer)),
            promises=list(selectors.account_promises(customer)),
            plans=list(selectors.account_plans(customer)),
            disputes=list(selectors.account_disputes(customer)),
            holds=[
                (hold, hold.active_at(now), hold.pk in releasable, last_day(hold, customer)) for hold in holds
            ],
            # The account is on hold when an account-level hold is in force; a hold on one
            # invoice is listed with the holds, not as the account's status.
            on_hold=any(hold.invoice_id is None and hold.active_at(now) for hold in holds),
            contacts=list(customer.contacts.order_by("-is_primary", "name", "pk")),
            documents=list(selectors.account_documents(customer)),
            communications=list(selectors.account_communications(customer)[:50]),
            threads=list(
                Thread.creditor_threads.filter(customer=customer).order_by("-last_message_at", "-pk")
            ),
            timeline=timeline,
            today=today,
            nav="accounts",
        ),
    )


@require_safe
@client_required
def document_download(request: HttpRequest, document_id: int) -> HttpResponseBase:
    """A document of one of the creditor's accounts that the customer may see too, as an
    attachment; the download is audited like every other."""
    creditor = creditor_of(request)
    document = get_object_or_404(selectors.creditor_documents(creditor), pk=document_id)
    by = Downloader(actor=actor_of(request), ip=client_ip(request))
    document_download_audit(organization=creditor.organization, by=by, document=document)
    return document_response(document)
