"""The demo's contract: a credit application sent to the demo customer, waiting for its
signature; nothing when the customer is not there."""

from __future__ import annotations

import datetime

import pytest
from django_scopes import scopes_disabled

from factories import Users
from openar.contracts.demo import seed_demo
from openar.contracts.models import Contract

pytestmark = pytest.mark.usefixtures("clock")


def test_the_demo_customer_gets_one_contract_waiting_for_its_signature(
    users: Users, customer, contact
) -> None:
    contract = seed_demo(customer.organization, actor=users.collector, number=customer.number)
    assert contract is not None
    assert (contract.state, contract.template, contract.customer_id) == (
        "sent",
        "credit_application",
        customer.pk,
    )
    assert contract.expires_on == customer.organization.today() + datetime.timedelta(days=30)
    assert "Credit limit requested: $25,000.00." in contract.summary
    assert seed_demo(customer.organization, number="NO-SUCH") is None
    with scopes_disabled():
        assert Contract.objects.count() == 1
