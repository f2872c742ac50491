"""The creditor-client demo data: call attempts, letters, a note and a hold on Metro Dental's
debtors at Summit Recovery Partners, added once."""

from __future__ import annotations

from django_scopes import scope

from factories import make_creditor, make_customer, make_member, make_organization
from openar.client.demo import seed_demo
from openar.customers.models import Activity, Hold
from openar.tenants.models import Organization, Role


def test_the_demo_seed_adds_the_creditor_portal_story_once(db: None) -> None:
    assert seed_demo() == 0  # no agency yet: nothing to do
    summit = make_organization("summit", name="Summit Recovery Partners", kind=Organization.Kind.AGENCY)
    metro = make_creditor(summit, "metro-dental", name="Metro Dental Group")
    other = make_creditor(summit, "lakeside", name="Lakeside Property Management")
    pat = make_member(summit, Role.CREDITOR, "client@metrodental.example", creditor=metro)
    debtors = [make_customer(metro, f"SR1{n}", name=f"Debtor {n}") for n in range(4)]
    make_customer(other, "SR201", name="Lakeside debtor")

    assert seed_demo() == 3
    assert seed_demo() == 0  # once

    with scope(organization=summit):
        calls = Activity.objects.filter(kind=Activity.Kind.CALL)
        assert calls.count() == 2 + 3 + 3
        assert set(calls.values_list("outcome", flat=True)) == {"no_answer", "left_message", "spoke"}
        assert not calls.filter(next_action_date=None).exists()
        assert Activity.objects.filter(kind=Activity.Kind.LETTER).count() == 3
        note = Activity.objects.get(kind=Activity.Kind.NOTE)
        assert (note.customer_id, note.actor_id, note.staff_unread) == (debtors[0].pk, pat.pk, True)
        hold = Hold.objects.get()
        assert (hold.customer_id, hold.placed_by_id) == (debtors[1].pk, pat.pk)
        assert not Activity.objects.filter(customer__creditor=other).exists()
        assert not Activity.objects.filter(visibility=Activity.Visibility.INTERNAL).exists()
