"""The demo's dispute: one open dispute of two lines for the demo customer."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django_scopes import scope

from openar.disputes.demo import seed_demo
from openar.disputes.models import Dispute

from .conftest import Account

pytestmark = pytest.mark.django_db


def test_seed_demo_opens_one_dispute_of_two_lines(account: Account) -> None:
    with scope(organization=account.customer.organization):
        dispute = seed_demo(account.customer)
        assert dispute is not None
        assert dispute.state == Dispute.State.OPEN and dispute.invoice_id == account.invoice.pk
        assert [
            (line.reason.code, line.amount) for line in dispute.lines.order_by("invoice_line__position")
        ] == [
            ("damaged", Decimal("150.00")),
            ("price", Decimal("10.00")),
        ]
        assert Dispute.objects.count() == 1
