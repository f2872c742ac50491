"""A small book of placed accounts at the agency Northwind, for the creditor-client tests:
City Water (the signed-in client's creditor) placed three accounts, Mercy Hospital one."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.utils import timezone
from django_scopes import scope

from factories import TODAY, Users, days_ago, issue_invoice, make_contact, make_customer, make_member
from openar.customers.models import Activity, Contact, Customer, Hold
from openar.customers.services import activity_record
from openar.identity.models import User
from openar.tenants.models import Creditor, Organization, Role

PLACED_AT = datetime.datetime(2025, 5, 1, 15, 0, tzinfo=datetime.UTC)


@dataclass
class Book:
    agency: Organization
    city_water: Creditor
    mercy: Creditor
    client: User  # City Water's creditor-client user
    colleague: User  # another user of City Water
    mercy_client: User
    collector: User
    pat: Customer  # City Water: 100.00 past due 40 days + 50.00 not yet due
    lee: Customer  # City Water: 300.00 past due 100 days, unassigned
    kim: Customer  # City Water: paid in full
    sam: Customer  # Mercy Hospital
    pat_contact: Contact
    call: Activity
    letter: Activity
    internal: Activity


def build_book(users: Users, agency: Organization, agency_clients: tuple[Creditor, Creditor]) -> Book:
    with scope(organization=agency):
        city_water, mercy = agency_clients
        collector = make_member(agency, Role.COLLECTOR, "casey@northwind.example")
        User.objects.filter(pk=collector.pk).update(full_name="Casey Collector")
        collector.refresh_from_db()
        colleague = make_member(agency, Role.CREDITOR, "ops@citywater.example", creditor=city_water)
        mercy_client = make_member(agency, Role.CREDITOR, "billing@mercy.example", creditor=mercy)
        pat = make_customer(city_water, "CW-100", name="Pat Jones", email="pat@jones.example")
        lee = make_customer(city_water, "CW-200", name="Lee Chan", email="lee@chan.example")
        kim = make_customer(city_water, "CW-300", name="Kim Park")
        sam = make_customer(mercy, "MH-100", name="Sam Rivers", email="sam@rivers.example")
        Customer.objects.filter(pk=pat.pk).update(
            assigned_collector=collector, placed_at=PLACED_AT, phone="416-555-0101"
        )
        Customer.objects.filter(pk=lee.pk).update(placed_at=PLACED_AT + datetime.timedelta(days=3))
        Customer.objects.filter(pk=sam.pk).update(assigned_collector=collector, placed_at=PLACED_AT)
        for customer in (pat, lee, sam):
            customer.refresh_from_db()
        issue_invoice(pat, "CW-INV-1", "100.00", due_date=days_ago(40))
        issue_invoice(pat, "CW-INV-2", "50.00", due_date=days_ago(-10))
        issue_invoice(lee, "CW-INV-3", "300.00", due_date=days_ago(100))
        issue_invoice(sam, "MH-INV-1", "999.00", due_date=days_ago(20))
        pat_contact = make_contact(pat, "Pat Jones", "pat.jones@home.example")
        make_contact(sam, "Sam Rivers", "sam.rivers@home.example")
        call = activity_record(
            customer=pat,
            kind=Activity.Kind.CALL,
            summary="Called the home number",
            visibility=Activity.Visibility.CREDITOR,
            actor=collector,
            occurred_at=timezone.now() - datetime.timedelta(days=2),
        )
        Activity.objects.filter(pk=call.pk).update(
            outcome=Activity.Outcome.LEFT_MESSAGE, next_action_date=TODAY + datetime.timedelta(days=3)
        )
        call.refresh_from_db()
        letter = activity_record(
            customer=pat,
            kind=Activity.Kind.LETTER,
            summary="Demand letter mailed",
            visibility=Activity.Visibility.CREDITOR,
            occurred_at=timezone.now() - datetime.timedelta(days=5),
        )
        internal = activity_record(
            customer=pat,
            kind=Activity.Kind.NOTE,
            summary="Staff only: debtor is a cousin of the owner",
            visibility=Activity.Visibility.INTERNAL,
        )
        activity_record(
            customer=sam,
            kind=Activity.Kind.NOTE,
            summary="Mercy note about Sam",
            visibility=Activity.Visibility.CREDITOR,
        )
    return Book(
        agency=agency,
        city_water=city_water,
        mercy=mercy,
        client=users.creditor,
        colleague=colleague,
        mercy_client=mercy_client,
        collector=collector,
        pat=pat,
        lee=lee,
        kim=kim,
        sam=sam,
        pat_contact=pat_contact,
        call=call,
        letter=letter,
        internal=internal,
    )


def staff_hold(customer: Customer, by: User, reason: str = "Agency review") -> Hold:
    with scope(organization=customer.organization):
        return Hold.objects.create(
            organization=customer.organization,
            customer=customer,
            reason=reason,
            placed_by=by,
            placed_at=timezone.now(),
        )
