"""Demo data for the creditor-client money pages, at the demo agency (Summit Recovery
Partners) for its client Metro Dental Group: a payment the client reported receiving
directly, waiting in the desk's queue (``/desk/client-payments/``), and a placement file
uploaded two weeks ago whose report shows three accounts placed and one line refused.

Run it after the demo data exists (``openar.demo.demo_seed``); running it again adds
nothing. Everything goes through the real services, so the audit log, the timelines and
the ledger are as production would leave them.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Sum
from django.utils import timezone
from django_scopes import scope

from openar.billing.models import Invoice
from openar.client.models import DirectPaymentReport, PlacementImport
from openar.client.payments import direct_payment_report
from openar.client.placements import placement_import
from openar.core.money import quantize
from openar.core.uploads import UploadKind, upload_check
from openar.customers.models import Customer
from openar.identity.models import User
from openar.tenants.models import Creditor, Membership, Organization, Role

AGENCY = "summit"
CREDITOR = "metro-dental"
PLACED_DAYS_AGO = 14


def _placement_csv(today: datetime.date) -> str:
    def day(days_ago: int) -> str:
        return (today - datetime.timedelta(days=days_ago)).isoformat()

    rows = [
        "account_number,name,email,phone,address_line1,city,region,postal_code,country,"
        "invoice_number,amount,invoice_date,due_date,note",
        f"MD-5001,Jordan Ellis,jordan.ellis@example.com,312-555-0141,88 Lake Shore Dr,Chicago,IL,60611,US,"
        f"MD-INV-5001,420.00,{day(150)},{day(120)},Crown and follow-up visit",
        f"MD-5001,Jordan Ellis,,,,,,,,MD-INV-5002,95.00,{day(110)},{day(80)},Cleaning",
        f"MD-5002,Riley Novak,riley.novak@example.com,312-555-0177,410 W Elm St,Chicago,IL,60610,US,"
        f"MD-INV-5003,1180.00,{day(200)},{day(170)},Orthodontic installment",
        f"MD-5003,Taylor Brooks,,773-555-0102,5 N Wabash Ave,Chicago,IL,60602,US,"
        f"MD-INV-5004,260.50,{day(95)},{day(65)},",
        # Refused, so the report shows what a bad line looks like.
        f"MD-5004,Morgan Diaz,morgan.diaz@example,,,,,,,MD-INV-5005,310.005,{day(90)},{day(60)},",
    ]
    return "\n".join(rows) + "\n"


def seed_demo() -> dict[str, int]:
    """Add the demo's reported payment and past placement for Metro Dental Group. Returns
    what was added: ``{"reports": n, "imports": n}`` (zeros when the agency is missing or
    already has them)."""
    added = {"reports": 0, "imports": 0}
    organization = Organization.objects.filter(slug=AGENCY).first()
    if organization is None:
        return added
    with scope(organization=organization):
        creditor = Creditor.objects.filter(code=CREDITOR).first()
        if creditor is None:
            return added
        membership = (
            Membership.objects.filter(creditor=creditor, role=Role.CREDITOR, is_active=True)
            .select_related("user")
            .order_by("pk")
            .first()
        )
        client: User | None = membership.user if membership is not None else None
        today = organization.today()
        if not PlacementImport.objects.filter(creditor=creditor).exists():
            content = _placement_csv(today).encode()
            checked = upload_check(
                SimpleUploadedFile("metro-dental-placements.csv", content, content_type="text/csv"),
                kind=UploadKind.IMPORT,
                organization=organization,
                actor=client,
            )
            record = placement_import(creditor=creditor, upload=checked, actor=client)
            then = timezone.now() - datetime.timedelta(days=PLACED_DAYS_AGO)
            PlacementImport.objects.filter(pk=record.pk).update(created_at=then)
            numbers = [line["account"] for line in record.report if line["ok"]]
            Customer.objects.filter(creditor=creditor, number__in=numbers).update(placed_at=then)
            added["imports"] = 1
        if not DirectPaymentReport.objects.filter(creditor=creditor).exists():
            balances = (
                Invoice.objects.filter(customer__creditor=creditor, open_amount__gt=0)
                .values("customer")
                .annotate(open=Sum("open_amount"))
                .order_by("-open", "customer")
            )
            first = balances.first()
            if first is not None:
                customer = Customer.objects.get(pk=first["customer"])
                owed = Decimal(str(first["open"]))
                amount = min(quantize(owed / 2, customer.currency), Decimal("250.00"))
                direct_payment_report(
                    customer=customer,
                    creditor=creditor,
                    amount=amount,
                    received_on=today - datetime.timedelta(days=3),
                    method=DirectPaymentReport.Method.CHEQUE,
                    reference="CHQ 10442",
                    note="The patient paid at our front desk; cheque deposited on Monday.",
                    actor=client,
                )
                added["reports"] = 1
    return added
