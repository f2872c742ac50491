"""Accounts for the creditor-client money tests (direct payments, placements, reports) at
the agency Northwind: City Water (25% commission, the signed-in client's creditor) placed
Pat Jones (100.00 past due, 50.00 due later) and Lee Chan (300.00); Mercy Hospital (10%)
placed Sam Rivers (999.00). Another organization, Acme, has its own customer."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone
from django_scopes import scopes_disabled

from factories import Users, days_ago, issue_invoice, make_customer, make_member
from openar.billing.models import Invoice
from openar.customers.models import Customer
from openar.identity.models import User
from openar.tenants.models import Creditor, Organization, Role


@dataclass
class MoneyBook:
    agency: Organization
    city_water: Creditor
    mercy: Creditor
    client: User  # City Water's creditor-client user (users.creditor)
    mercy_client: User
    collector: User  # the agency's collector, assigned to Pat
    manager: User  # the agency's manager (reads, never acts)
    pat: Customer
    lee: Customer
    sam: Customer
    pat_old: Invoice  # 100.00, due 40 days ago
    pat_new: Invoice  # 50.00, due in 10 days
    lee_inv: Invoice  # 300.00
    sam_inv: Invoice  # 999.00


def build_money_book(
    users: Users, agency: Organization, agency_clients: tuple[Creditor, Creditor]
) -> MoneyBook:
    city_water, mercy = agency_clients
    with scopes_disabled():
        Creditor.objects.filter(pk=city_water.pk).update(commission_rate=Decimal("0.2500"))
        Creditor.objects.filter(pk=mercy.pk).update(commission_rate=Decimal("0.1000"))
        city_water.refresh_from_db()
        mercy.refresh_from_db()
        User.objects.filter(pk=users.creditor.pk).update(full_name="Robin Waters")
        users.creditor.refresh_from_db()
    collector = make_member(agency, Role.COLLECTOR, "casey@northwind.example")
    manager = make_member(agency, Role.MANAGER, "morgan@northwind.example")
    mercy_client = make_member(agency, Role.CREDITOR, "billing@mercy.example", creditor=mercy)
    pat = make_customer(city_water, "CW-100", name="Pat Jones", email="pat@jones.example")
    lee = make_customer(city_water, "CW-200", name="Lee Chan")
    sam = make_customer(mercy, "MH-100", name="Sam Rivers")
    with scopes_disabled():
        Customer.objects.filter(pk__in=[pat.pk, lee.pk, sam.pk]).update(placed_at=timezone.now())
        Customer.objects.filter(pk=pat.pk).update(assigned_collector=collector)
        for customer in (pat, lee, sam):
            customer.refresh_from_db()
    return MoneyBook(
        agency=agency,
        city_water=city_water,
        mercy=mercy,
        client=users.creditor,
        mercy_client=mercy_client,
        collector=collector,
        manager=manager,
        pat=pat,
        lee=lee,
        sam=sam,
        pat_old=issue_invoice(pat, "CW-INV-1", "100.00", due_date=days_ago(40)),
        pat_new=issue_invoice(pat, "CW-INV-2", "50.00", due_date=days_ago(-10)),
        lee_inv=issue_invoice(lee, "CW-INV-3", "300.00", due_date=days_ago(100)),
        sam_inv=issue_invoice(sam, "MH-INV-1", "999.00", due_date=days_ago(20)),
    )
