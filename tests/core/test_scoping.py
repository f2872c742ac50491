"""Tenant scoping: a query of a tenant model outside a scope raises; inside one, another
organization's rows do not exist."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.cache import SessionStore
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django_scopes import ScopeError, scope, scopes_disabled

from factories import Users, issue_credit_note, issue_invoice, record_payment
from openar.billing.models import CreditNote, Document, Invoice, InvoiceLine
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Contact, Customer
from openar.payments.models import Allocation, Payment
from openar.tenants.middleware import TenantScopeMiddleware
from openar.tenants.models import Creditor, Membership, Organization

TENANT_MODELS: list[type[models.Model]] = [
    Creditor,
    Membership,
    Customer,
    Contact,
    Activity,
    Invoice,
    InvoiceLine,
    CreditNote,
    Document,
    Payment,
    Allocation,
    AuditEvent,
]


@pytest.fixture
def two_books(customer: Customer, other_customer: Customer) -> tuple[Invoice, Invoice]:
    """The same invoice number, customer number and amounts in two organizations."""
    mine = issue_invoice(customer, "INV-1", "100.00")
    theirs = issue_invoice(other_customer, "INV-1", "100.00", currency="EUR")
    record_payment(customer, "40.00")
    record_payment(other_customer, "10.00", currency="EUR")
    issue_credit_note(theirs, "CN-1", "5.00")
    return mine, theirs


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m.__name__)
def test_every_tenant_query_outside_a_scope_raises(
    model: type[models.Model], two_books: tuple[Invoice, Invoice]
) -> None:
    manager = model.objects  # type: ignore[attr-defined]
    with pytest.raises(ScopeError):
        manager.count()
    with pytest.raises(ScopeError):
        manager.filter(pk=1)
    with pytest.raises(ScopeError):
        manager.get(pk=1)
    with pytest.raises(ScopeError):
        list(manager.all())
    with pytest.raises(ScopeError):
        manager.all().delete()


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m.__name__)
def test_a_scope_without_an_organization_refuses_too(
    model: type[models.Model], two_books: tuple[Invoice, Invoice]
) -> None:
    """``scope(organization=None)`` (an anonymous request) must not mean "every tenant"."""
    with scope(organization=None), pytest.raises(ScopeError):
        model.objects.count()  # type: ignore[attr-defined]


def test_within_a_scope_the_other_organizations_rows_are_invisible(
    supplier: Organization,
    other_supplier: Organization,
    two_books: tuple[Invoice, Invoice],
) -> None:
    mine, theirs = two_books

    with scope(organization=supplier):
        assert list(Invoice.objects.values_list("pk", flat=True)) == [mine.pk]
        assert not Invoice.objects.filter(pk=theirs.pk).exists()
        with pytest.raises(Invoice.DoesNotExist):
            Invoice.objects.get(pk=theirs.pk)
        assert list(Customer.objects.filter(number="C-1001").values_list("name", flat=True)) == [
            "Bolt Hardware"
        ]
        assert CreditNote.objects.count() == 0
        assert Payment.objects.count() == 1
        assert {e.organization_id for e in AuditEvent.objects.all()} == {supplier.pk}

    with scope(organization=other_supplier):
        assert list(Invoice.objects.values_list("pk", flat=True)) == [theirs.pk]
        assert CreditNote.objects.count() == 1

    with scopes_disabled():
        assert Invoice.objects.filter(number="INV-1").count() == 2


def _scoped_view(seen: dict[str, object]) -> Callable[[HttpRequest], HttpResponse]:
    def view(request: HttpRequest) -> HttpResponse:
        seen["organization"] = request.organization  # type: ignore[attr-defined]
        try:
            seen["invoices"] = list(Invoice.objects.values_list("number", "organization_id"))
        except ScopeError:
            seen["invoices"] = "ScopeError"
        return HttpResponse("ok")

    return view


def _request(user: object) -> HttpRequest:
    request = RequestFactory().get("/portal/")
    request.user = user  # type: ignore[assignment]
    request.session = SessionStore()
    return request


def test_an_anonymous_request_cannot_query_tenant_rows(two_books: tuple[Invoice, Invoice]) -> None:
    seen: dict[str, object] = {}

    response = TenantScopeMiddleware(_scoped_view(seen))(_request(AnonymousUser()))

    assert response.status_code == 200
    assert seen == {"organization": None, "invoices": "ScopeError"}


def test_a_signed_in_request_sees_its_own_organization_only(
    supplier: Organization, users: Users, two_books: tuple[Invoice, Invoice]
) -> None:
    seen: dict[str, object] = {}

    TenantScopeMiddleware(_scoped_view(seen))(_request(users.collector))

    assert seen == {"organization": supplier, "invoices": [("INV-1", supplier.pk)]}
