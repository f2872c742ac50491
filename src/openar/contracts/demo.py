"""Demo data for contracts: the demo customer (Harbor Street Hardware, account NW1001, the
account whose portal the demo signs in to) gets one credit application waiting for its
signature, made and sent through the services like any other."""

from __future__ import annotations

import datetime

from django_scopes import scope

from openar.contracts import templates
from openar.contracts.models import Contract
from openar.contracts.services import contract_from_template, contract_send
from openar.customers.models import Customer
from openar.identity.models import User
from openar.tenants.models import Organization

DEMO_CUSTOMER = "NW1001"


def seed_demo(
    organization: Organization, *, actor: User | None = None, number: str = DEMO_CUSTOMER
) -> Contract | None:
    """One credit application sent to customer ``number`` of ``organization``, to sign within
    30 days; None when there is no such customer."""
    with scope(organization=organization):
        customer = Customer.objects.filter(number=number).select_related("organization").first()
        if customer is None:
            return None
        fields = templates.credit_fields(
            customer,
            templates.CreditInput(
                legal_name=customer.name,
                registration_number="BN 81234 5678",
                address="\n".join(customer.address_lines) or customer.name,
                contact_name=str(
                    customer.contacts.order_by("-is_primary", "pk").values_list("name", flat=True).first()
                    or ""
                ),
                contact_email=customer.email,
                credit_limit="25,000.00",
                terms_days=str(customer.payment_terms_days or 30),
                extra_terms="The limit is reviewed every twelve months.",
            ),
        )
        contract = contract_from_template(
            customer=customer,
            template=templates.CREDIT_APPLICATION,
            fields=fields,
            expires_on=organization.today() + datetime.timedelta(days=30),
            actor=actor,
        )
        return contract_send(contract=contract, actor=actor).contract
