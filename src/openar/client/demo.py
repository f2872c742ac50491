"""Demo data for the creditor-client portal: on a few of Metro Dental Group's debtors at
Summit Recovery Partners, call attempts with their outcomes and next dates, demand letters,
a note from Pat Rivera (the demo's creditor client) not yet read by the collector, and a
hold Pat placed. Run after the agency is seeded (``seed_demo()``); it does nothing when the
agency or Pat is missing, and adds nothing twice."""

from __future__ import annotations

import datetime

from django.utils import timezone
from django_scopes import scope

from openar.client.services import client_hold_place, client_note_add
from openar.customers.models import Activity, Customer, Hold
from openar.customers.services import activity_record
from openar.identity.models import User
from openar.tenants.models import Creditor, Organization

AGENCY_SLUG = "summit"
CREDITOR_CODE = "metro-dental"
CLIENT_EMAIL = "client@metrodental.example"
MARK = "Second demand letter mailed"  # present once seeded: the seed is not run twice

CALLS = (
    (Activity.Outcome.NO_ANSWER, "Called the mobile number: no answer", 6, 1),
    (Activity.Outcome.LEFT_MESSAGE, "Left a voicemail asking for a call back", 4, 2),
    (Activity.Outcome.SPOKE, "Spoke to the debtor: will look at the statement", 2, 3),
)


def seed_demo() -> int:
    """Add the creditor-client demo data; returns how many accounts it touched."""
    organization = Organization.objects.filter(slug=AGENCY_SLUG).first()
    client = User.objects.filter(email=CLIENT_EMAIL).first()
    if organization is None or client is None:
        return 0
    now = timezone.now()
    with scope(organization=organization):
        creditor = Creditor.objects.filter(code=CREDITOR_CODE).first()
        if creditor is None or Activity.objects.filter(customer__creditor=creditor, summary=MARK).exists():
            return 0
        debtors = list(Customer.objects.filter(creditor=creditor).order_by("number")[:3])
        today = organization.today()
        for index, debtor in enumerate(debtors):
            collector = debtor.assigned_collector
            for outcome, summary, days_ago, next_in in CALLS[: index + 2]:
                call = activity_record(
                    customer=debtor,
                    kind=Activity.Kind.CALL,
                    summary=summary,
                    visibility=Activity.Visibility.CREDITOR,
                    actor=collector,
                    occurred_at=now - datetime.timedelta(days=days_ago, hours=index),
                )
                Activity.objects.filter(pk=call.pk).update(
                    outcome=outcome, next_action_date=today + datetime.timedelta(days=next_in)
                )
            activity_record(
                customer=debtor,
                kind=Activity.Kind.LETTER,
                summary=MARK,
                visibility=Activity.Visibility.CREDITOR,
                occurred_at=now - datetime.timedelta(days=3 + index),
            )
        if debtors:
            client_note_add(
                customer=debtors[0],
                author=client,
                body="The patient called our front desk and says the insurer will pay part of this "
                "in two weeks. Please confirm with them before the next letter.",
            )
        if len(debtors) > 1 and not Hold.objects.filter(customer=debtors[1], released_at=None).exists():
            client_hold_place(
                customer=debtors[1],
                author=client,
                reason="Treatment plan under review with the patient",
                expires_at=now + datetime.timedelta(days=21),
            )
    return len(debtors)
