"""``openar seed`` (the benchmark's bulk loader) writes every column of the models it fills,
and what it writes is a consistent ledger, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from django_scopes import scopes_disabled

from factories import assert_ledger_clean
from openar.billing.models import Invoice
from openar.customers.models import Contact, Customer
from openar.seed import seed
from openar.tenants.models import Organization


def test_a_small_seed_is_complete_and_consistent(transactional_db: None) -> None:
    report = seed(customers=30, invoices_per_customer=3, seed=5, organization_slug="seedtest")

    organization = Organization.objects.get(slug="seedtest")
    with scopes_disabled():
        assert Customer.objects.filter(organization=organization).count() == 30
        assert Contact.objects.filter(organization=organization, language="en").count() == 30
        assert Invoice.objects.filter(organization=organization).count() == 90
    assert_ledger_clean(organization.pk)
    assert "30" in str(report)
