"""log_event: the audit row carries the organization, the actor, the object and the request id."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django_scopes import scope

from factories import Users, issue_invoice
from openar.core.audit import log_event
from openar.core.logging import request_id_var
from openar.core.models import AuditEvent
from openar.customers.models import Customer
from openar.tenants.models import Organization


def test_the_request_id_of_the_request_is_recorded(customer: Customer, users: Users) -> None:
    token = request_id_var.set("req-0123456789")
    try:
        invoice = issue_invoice(customer, "INV-1", "10.00", actor=users.admin)
    finally:
        request_id_var.reset(token)

    with scope(organization=customer.organization):
        event = AuditEvent.objects.get()
    assert (event.action, event.object_id, event.request_id, event.actor_id, event.ip) == (
        "openar.invoice.issued",
        str(invoice.pk),
        "req-0123456789",
        users.admin.pk,
        None,
    )


def test_outside_a_request_there_is_no_request_id_and_no_anonymous_actor(
    supplier: Organization,
) -> None:
    with scope(organization=supplier):
        event = log_event(
            "openar.test.happened",
            organization=supplier,
            actor=AnonymousUser(),  # type: ignore[arg-type]
            data={"n": 1},
            ip="127.0.0.1",
        )
        stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.request_id, stored.actor_id, stored.object_type, stored.object_id) == (
        "",
        None,
        "",
        "",
    )
    assert (stored.organization_id, stored.data, stored.ip) == (supplier.pk, {"n": 1}, "127.0.0.1")
