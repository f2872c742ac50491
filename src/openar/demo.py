"""Demo data: three organizations and a user for every persona, built through the real
services so that the ledger, timeline and audit log are what production would hold."""

from __future__ import annotations

import datetime
import io
import random
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from openar.billing.models import Document, Invoice
from openar.billing.services import LineInput, credit_note_issue, document_store, invoice_issue
from openar.customers.models import Activity, Contact, Customer
from openar.customers.services import activity_record
from openar.identity.models import User
from openar.payments.services import AllocationInput, payment_record
from openar.tenants.models import Creditor, Membership, Organization, Role, SecurityPolicy

PRODUCTS = [
    ("PLB-1020", "Copper pipe 15 mm, 3 m", Decimal("18.40")),
    ("PLB-2204", 'Brass ball valve 3/4"', Decimal("12.95")),
    ("ELC-0310", "LED panel 600x600 40 W", Decimal("54.00")),
    ("ELC-1188", "Cable 3G2.5 mm², 100 m", Decimal("119.00")),
    ("HVC-0050", "Ventilation duct 125 mm", Decimal("22.10")),
    ("FST-0901", "Stainless screws A2, box of 500", Decimal("31.75")),
    ("TLS-4410", "Cordless drill 18 V kit", Decimal("189.00")),
    ("SAF-0012", "Safety gloves, pair", Decimal("4.80")),
    ("PNT-7781", "Primer, 10 l", Decimal("64.50")),
    ("TIM-3300", "Pine batten 44x44, 4.8 m", Decimal("9.60")),
]
FIRST = [
    "Harbor",
    "Maple",
    "Summit",
    "Riverside",
    "Granite",
    "Oak",
    "Cedar",
    "Lakeview",
    "Pioneer",
    "Beacon",
    "Northgate",
    "Sterling",
    "Copper",
    "Ironwood",
    "Bayside",
    "Prairie",
    "Redwood",
]
SECOND = [
    "Hardware",
    "Builders",
    "Plumbing",
    "Electric",
    "Contractors",
    "Renovations",
    "Supply",
    "Facilities",
    "Construction",
    "Mechanical",
    "Homes",
    "Property Services",
]
PEOPLE = [
    "Dana Whitfield",
    "Luis Ortega",
    "Priya Raman",
    "Tom Becker",
    "Aiko Tanaka",
    "Sam Okafor",
    "Marie Dubois",
    "Jonas Berg",
    "Chloé Martin",
    "Ravi Patel",
    "Grace Kim",
    "Noah Fischer",
]
CITIES = [
    ("Portland", "OR", "97201"),
    ("Tacoma", "WA", "98402"),
    ("Boise", "ID", "83702"),
    ("Spokane", "WA", "99201"),
    ("Eugene", "OR", "97401"),
    ("Salem", "OR", "97301"),
]


def demo_password() -> str:
    return str(getattr(settings, "OPENAR_DEMO_PASSWORD", "openar-demo"))


def demo_seed_if_empty() -> bool:
    """Create the demo data unless the database already holds an organization."""
    if Organization.objects.exists():
        return False
    demo_seed()
    return True


@transaction.atomic
def demo_seed(seed: int = 7) -> None:
    rng = random.Random(seed)
    password = demo_password()
    _distributor(rng, password)
    _agency(rng, password)
    _second_supplier(rng, password)
    # So that the printed staff links open the desk at once, the two organizations people try
    # do not force a second factor; their admins can turn it on at /desk/security/.
    SecurityPolicy.objects.filter(organization__slug__in=["northwind", "summit"]).update(
        mfa_staff=False, mfa_creditors=False
    )
    # Northwind's staff may also ask for a sign-in link by email (it lands in the outbox).
    SecurityPolicy.objects.filter(organization__slug="northwind").update(staff_magic_links=True)
    # Delivery receipts and a remittance advice for Harbor Street, dated from their invoices.
    from openar.billing.demo_documents import seed_demo as documents_seed

    documents_seed()
    # Summit's client Metro Dental: call attempts, letters, a note and a hold on its debtors; a
    # payment it was paid directly waiting for the collector, and a past placement file.
    from openar.client.demo import seed_demo as client_seed
    from openar.client.demo_money import seed_demo as client_money_seed

    client_seed()
    client_money_seed()


def _user(email: str, name: str, password: str) -> User:
    return User.objects.create_user(email=email, password=password, full_name=name)


def _customer(org: Organization, creditor: Creditor, number: str, name: str, rng: random.Random) -> Customer:
    city, region, postal = rng.choice(CITIES)
    slug = "".join(ch for ch in name.lower() if ch.isalnum())[:20]
    return Customer.objects.create(
        organization=org,
        creditor=creditor,
        number=number,
        name=name,
        currency=org.default_currency,
        email=f"ap@{slug}.example",
        phone=f"+1 503 555 {rng.randint(1000, 9999)}",
        address_line1=f"{rng.randint(10, 9999)} {rng.choice(['Main', 'Harbor', 'Industrial', 'Mill'])} St",
        city=city,
        region=region,
        postal_code=postal,
        country="US",
        payment_terms_days=30,
    )


def _contact(customer: Customer, name: str, *, primary: bool = True, user: User | None = None) -> Contact:
    first = name.split(" ")[0].lower()
    domain = customer.email.split("@")[-1] if customer.email else "example.com"
    return Contact.objects.create(
        organization_id=customer.organization_id,
        customer=customer,
        name=name,
        title="Accounts payable",
        email=user.email if user else f"{first}@{domain}",
        is_primary=primary,
        user=user,
    )


def _pdf(title: str, lines: list[str]) -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setTitle(title)
    pdf.setFont("Helvetica-Bold", 16)
    pdf.drawString(60, 780, title)
    pdf.setFont("Helvetica", 10)
    for index, line in enumerate(lines):
        pdf.drawString(60, 750 - 16 * index, line)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _document(customer: Customer, invoice: Invoice | None, kind: str, title: str, lines: list[str]) -> None:
    document_store(
        customer=customer,
        invoice=invoice,
        kind=kind,
        title=title,
        filename=title.lower().replace(" ", "-") + ".pdf",
        content=_pdf(title, lines),
        content_type="application/pdf",
    )


def _invoices(
    customer: Customer,
    rng: random.Random,
    today: datetime.date,
    prefix: str,
    counter: list[int],
    ages: list[int],
    documents: bool = False,
) -> list[Invoice]:
    """Invoices issued ``age`` days ago with net-30 terms, 1-4 lines each."""
    issued: list[Invoice] = []
    for age in sorted(ages, reverse=True):
        counter[0] += 1
        issue_date = today - datetime.timedelta(days=age)
        lines = [
            LineInput(
                description=desc,
                sku=sku,
                quantity=Decimal(rng.randint(1, 40)),
                unit_price=price,
                tax_rate=Decimal("0.08"),
            )
            for sku, desc, price in rng.sample(PRODUCTS, rng.randint(1, 4))
        ]
        invoice = invoice_issue(
            customer=customer,
            number=f"{prefix}-{counter[0]:05d}",
            po_number=f"PO-{rng.randint(10000, 99999)}",
            issue_date=issue_date,
            due_date=issue_date + datetime.timedelta(days=customer.payment_terms_days),
            lines=lines,
        )
        Activity.objects.filter(invoice=invoice, kind=Activity.Kind.INVOICE).update(
            occurred_at=_at(issue_date)
        )
        if documents:
            _document(
                customer,
                invoice,
                Document.Kind.PURCHASE_ORDER,
                f"Purchase order {invoice.po_number}",
                [
                    f"Purchase order {invoice.po_number}",
                    f"Buyer: {customer.name}",
                    f"For invoice {invoice.number}",
                ],
            )
            _document(
                customer,
                invoice,
                Document.Kind.BILL_OF_LADING,
                f"Bill of lading {invoice.number}",
                [
                    f"Bill of lading for {invoice.number}",
                    f"Consignee: {customer.name}",
                    f"Shipped {issue_date:%Y-%m-%d}",
                ],
            )
        issued.append(invoice)
    return issued


def _at(day: datetime.date, hour: int = 10) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour, 0), tzinfo=datetime.UTC)


def _pay(
    customer: Customer, invoice: Invoice, amount: Decimal, day: datetime.date, method: str, ref: str
) -> None:
    payment_record(
        customer=customer,
        amount=amount,
        method=method,
        received_at=_at(day, 14),
        reference=ref,
        allocations=[AllocationInput(invoice=invoice, amount=amount)],
    )


def _settle_history(
    customer: Customer, invoices: list[Invoice], rng: random.Random, today: datetime.date, behaviour: str
) -> None:
    """Pay older invoices the way this kind of customer does."""
    for invoice in invoices:
        age = (today - invoice.issue_date).days
        if behaviour == "good" and invoice.due_date <= today + datetime.timedelta(days=10):
            day = min(invoice.due_date - datetime.timedelta(days=rng.randint(0, 5)), today)
            _pay(customer, invoice, invoice.total, day, "ach", f"ACH{rng.randint(100000, 999999)}")
        elif behaviour == "slow" and age > 75:
            day = min(invoice.due_date + datetime.timedelta(days=rng.randint(15, 40)), today)
            _pay(customer, invoice, invoice.total, day, "check", f"CHK{rng.randint(1000, 9999)}")
        elif behaviour == "partial" and age > 45 and rng.random() < 0.6:
            part = (invoice.total * Decimal("0.5")).quantize(Decimal("0.01"))
            _pay(
                customer,
                invoice,
                part,
                invoice.due_date + datetime.timedelta(days=7),
                "wire",
                f"WIRE{rng.randint(1000, 9999)}",
            )


def _distributor(rng: random.Random, password: str) -> None:
    org = Organization.objects.create(
        name="Northwind Supply Co.",
        slug="northwind",
        kind=Organization.Kind.SUPPLIER,
        default_currency="USD",
        timezone="America/Los_Angeles",
        email="ar@northwind.example",
        phone="+1 503 555 0100",
    )
    with scope(organization=org):
        creditor = Creditor.objects.create(organization=org, name=org.name, code="northwind", is_self=True)
        admin = _user("admin@northwind.example", "Alex Morgan", password)
        Membership.objects.create(organization=org, user=admin, role=Role.ADMIN)
        collector = _user("collector@northwind.example", "Jamie Chen", password)
        Membership.objects.create(organization=org, user=collector, role=Role.COLLECTOR)
        manager = _user("manager@northwind.example", "Robin Shaw", password)
        Membership.objects.create(organization=org, user=manager, role=Role.MANAGER)
        today = org.today()
        counter = [0]
        names: list[str] = []
        while len(names) < 50:
            name = f"{rng.choice(FIRST)} {rng.choice(SECOND)}"
            if name not in names:
                names.append(name)
        names[0] = "Harbor Street Hardware"
        for index, name in enumerate(names):
            customer = _customer(org, creditor, f"NW{1001 + index}", name, rng)
            customer.assigned_collector = collector
            customer.save(update_fields=["assigned_collector"])
            if index == 0:
                _harbor_street(customer, rng, today, counter, password)
                continue
            _contact(customer, rng.choice(PEOPLE))
            behaviour = rng.choice(["good", "good", "good", "slow", "partial", "late"])
            ages = sorted(rng.sample(range(3, 200), rng.randint(4, 10)))
            invoices = _invoices(customer, rng, today, "NW", counter, ages)
            _settle_history(customer, invoices, rng, today, behaviour)
        _commitments(org, collector, today)
        _contracts(org, collector)


def _contracts(org: Organization, collector: User) -> None:
    """A credit application waiting for Dana's signature (the portal's Contracts page)."""
    from openar.contracts.demo import seed_demo

    seed_demo(org, actor=collector)


def _commitments(org: Organization, collector: User, today: datetime.date) -> None:
    """Promises and plans for the desk's pages (Dana's own account is left free to try them):
    one promise due in a few days and one due today, promises of the past kept, partly kept
    and broken (with the worklist task of a broken one), and a plan paid by hand."""
    from openar.commitments.models import Promise
    from openar.commitments.services import plan_create, plan_quote, plan_terms, promise_create
    from openar.customers.models import Task
    from openar.customers.services import task_create

    late = [
        customer
        for customer in Customer.objects.filter(organization=org).exclude(number="NW1001").order_by("number")
        if Invoice.objects.filter(customer=customer, open_amount__gt=0, due_date__lt=today).exists()
    ]
    if len(late) < 6:
        return

    def past_due(customer: Customer) -> list[Invoice]:
        return list(
            Invoice.objects.filter(customer=customer, open_amount__gt=0, due_date__lt=today).order_by(
                "due_date"
            )
        )

    for customer, days in ((late[0], 3), (late[1], 0)):
        invoice = past_due(customer)[0]
        promise_create(
            customer=customer,
            amount=invoice.open_amount,
            promised_date=today + datetime.timedelta(days=days),
            invoices=[invoice],
            note="Said on the phone: paying once their customer pays them.",
            contact=customer.contacts.first(),
            actor=collector,
            source="desk",
        )
    for customer, state, share, ago in (
        (late[2], Promise.State.KEPT, Decimal(1), 12),
        (late[3], Promise.State.PARTLY_KEPT, Decimal("0.5"), 20),
        (late[4], Promise.State.BROKEN, Decimal(0), 9),
    ):
        invoice = past_due(customer)[0]
        promised = today - datetime.timedelta(days=ago)
        promise = Promise.objects.create(
            organization=org,
            customer=customer,
            contact=customer.contacts.first(),
            amount=invoice.open_amount,
            currency=invoice.currency,
            promised_date=promised,
            covers_until=_at(promised + datetime.timedelta(days=3), 23),
            state=state,
            paid_amount=(invoice.open_amount * share).quantize(Decimal("0.01")),
            source="desk",
            created_by=collector,
            resolved_at=_at(promised + datetime.timedelta(days=4)),
        )
        promise.invoices.set([invoice])
        Promise.objects.filter(pk=promise.pk).update(created_at=_at(promised - datetime.timedelta(days=10)))
        if state == Promise.State.BROKEN:
            task_create(
                customer=customer,
                kind=Task.Kind.BROKEN_PROMISE,
                summary=f"Broken promise: {customer.name} did not pay {invoice.open_amount} by {promised}",
                due_date=promised + datetime.timedelta(days=4),
                source_type="commitments.promise",
                source_id=promise.pk,
            )
    customer = late[5]
    invoices = past_due(customer)
    arrangement = {
        "invoices": invoices,
        "down_payment": Decimal(0),
        "frequency": "monthly",
        "installment_count": 3,
        "first_date": today + datetime.timedelta(days=7),
    }
    quote = plan_quote(customer=customer, **arrangement)  # type: ignore[arg-type]
    plan_create(
        customer=customer,
        **arrangement,  # type: ignore[arg-type]
        agreed_text=plan_terms(customer, quote, None),
        contact=customer.contacts.first(),
        actor=collector,
        ip=None,
        source="desk",
    )


def _harbor_street(
    customer: Customer, rng: random.Random, today: datetime.date, counter: list[int], password: str
) -> None:
    """The customer persona: past-due invoices, a partial payment, a credit note, documents."""
    user = _user("dana@harborstreet.example", "Dana Whitfield", password)
    _contact(customer, "Dana Whitfield", user=user)
    Membership.objects.create(
        organization_id=customer.organization_id, user=user, role=Role.CUSTOMER, customer=customer
    )
    invoices = _invoices(
        customer, rng, today, "NW", counter, [160, 128, 104, 75, 52, 38, 21, 9, 2], documents=True
    )
    oldest, second, third, _fourth, fifth = invoices[:5]
    _pay(customer, oldest, oldest.total, oldest.due_date - datetime.timedelta(days=2), "ach", "ACH482211")
    _pay(
        customer,
        second,
        (second.total / 2).quantize(Decimal("0.01")),
        second.due_date + datetime.timedelta(days=5),
        "check",
        "CHK2231",
    )
    credit_note_issue(
        invoice=third,
        number="CN-0001",
        amount=Decimal("45.00"),
        reason="Two damaged LED panels returned",
        issue_date=third.due_date - datetime.timedelta(days=3),
    )
    _pay(customer, fifth, Decimal("200.00"), fifth.due_date, "card", "VISA •4242")
    activity_record(
        customer=customer,
        kind=Activity.Kind.EMAIL,
        summary="Statement of account emailed",
        occurred_at=_at(today - datetime.timedelta(days=14)),
    )
    activity_record(
        customer=customer,
        kind=Activity.Kind.NOTE,
        visibility=Activity.Visibility.INTERNAL,
        summary="Dana says the June invoice is with their approver; follow up Friday.",
        occurred_at=_at(today - datetime.timedelta(days=6)),
    )
    _document(
        customer,
        None,
        Document.Kind.CONTRACT,
        "Credit application and terms",
        ["Credit application", f"Customer: {customer.name}", "Terms: net 30"],
    )
    from openar.disputes.demo import seed_demo as disputes_seed

    disputes_seed(customer)  # two lines of the newest open invoice in question


def _agency(rng: random.Random, password: str) -> None:
    org = Organization.objects.create(
        name="Summit Recovery Partners",
        slug="summit",
        kind=Organization.Kind.AGENCY,
        default_currency="USD",
        timezone="America/Chicago",
        email="help@summitrecovery.example",
    )
    with scope(organization=org):
        collector = _user("collector@summitrecovery.example", "Morgan Lee", password)
        Membership.objects.create(organization=org, user=collector, role=Role.COLLECTOR)
        admin = _user("admin@summitrecovery.example", "Casey Brooks", password)
        Membership.objects.create(organization=org, user=admin, role=Role.ADMIN)
        today = org.today()
        counter = [0]
        clients = [
            ("Metro Dental Group", "metro-dental"),
            ("Lakeside Property Management", "lakeside"),
            ("Prairie Wireless", "prairie-wireless"),
        ]
        for c_index, (name, code) in enumerate(clients):
            creditor = Creditor.objects.create(
                organization=org, name=name, code=code, commission_rate=Decimal("0.2500")
            )
            if c_index == 0:
                client_user = _user("client@metrodental.example", "Pat Rivera", password)
                Membership.objects.create(
                    organization=org, user=client_user, role=Role.CREDITOR, creditor=creditor
                )
            for d_index in range(8):
                person = rng.choice(PEOPLE)
                debtor = _customer(org, creditor, f"SR{c_index + 1}{d_index + 101}", person, rng)
                debtor.placed_at = timezone.now() - datetime.timedelta(days=rng.randint(10, 120))
                debtor.assigned_collector = collector
                debtor.save(update_fields=["placed_at", "assigned_collector"])
                _contact(debtor, person)
                invoices = _invoices(
                    debtor, rng, today, "SR", counter, sorted(rng.sample(range(120, 400), 2))
                )
                if rng.random() < 0.4:
                    _pay(
                        debtor,
                        invoices[0],
                        (invoices[0].total / 4).quantize(Decimal("0.01")),
                        today - datetime.timedelta(days=rng.randint(1, 20)),
                        "card",
                        "VISA •1881",
                    )
                activity_record(
                    customer=debtor,
                    kind=Activity.Kind.LETTER,
                    visibility=Activity.Visibility.CREDITOR,
                    summary="Validation notice mailed",
                    occurred_at=debtor.placed_at + datetime.timedelta(days=1),
                )
                activity_record(
                    customer=debtor,
                    kind=Activity.Kind.CALL,
                    visibility=Activity.Visibility.CREDITOR,
                    summary="Call attempt: left voicemail",
                    occurred_at=debtor.placed_at + datetime.timedelta(days=5),
                )


def _second_supplier(rng: random.Random, password: str) -> None:
    """Exists to prove isolation: nobody of the other organizations ever sees it."""
    org = Organization.objects.create(
        name="Bluewater Foods Ltd.",
        slug="bluewater",
        kind=Organization.Kind.SUPPLIER,
        default_currency="CAD",
        timezone="America/Toronto",
        email="ar@bluewater.example",
    )
    with scope(organization=org):
        creditor = Creditor.objects.create(organization=org, name=org.name, code="bluewater", is_self=True)
        admin = _user("admin@bluewater.example", "Jordan Blake", password)
        Membership.objects.create(organization=org, user=admin, role=Role.ADMIN)
        today = org.today()
        counter = [0]
        for index in range(6):
            customer = _customer(org, creditor, f"BW{2001 + index}", f"{rng.choice(FIRST)} Grocers", rng)
            _contact(customer, rng.choice(PEOPLE))
            invoices = _invoices(customer, rng, today, "BW", counter, sorted(rng.sample(range(5, 120), 4)))
            _settle_history(customer, invoices, rng, today, "good")


PERSONAS = [
    ("Customer contact", "dana@harborstreet.example"),
    ("Creditor client", "client@metrodental.example"),
    ("Collector", "collector@summitrecovery.example"),
    ("Organization admin", "admin@northwind.example"),
]


def demo_links(base_url: str) -> list[tuple[str, str, str]]:
    """(persona, email, one-click sign-in URL) for each persona, plus a real magic link of the
    customer contact that opens what is past due (a narrow, password-less session), and a
    pay-page link that opens the login-free pay page (pay, promise or arrange)."""
    from openar.identity.magic import magic_link_create
    from openar.identity.models import MagicLink
    from openar.identity.views import demo_signin_token

    links = []
    with scopes_disabled():
        for persona, email in PERSONAS:
            user = User.objects.filter(email=email).first()
            if user is None:
                continue
            links.append((persona, email, f"{base_url}/demo/sign-in/{demo_signin_token(user)}/"))
        contacts = Contact.objects.select_related("customer__organization")
        contact = contacts.filter(email=PERSONAS[0][1]).first()
    if contact is not None:
        with scope(organization=contact.customer.organization):
            issued = magic_link_create(
                contact=contact,
                scope_=MagicLink.Scope.PAST_DUE,
                max_uses=100,
                ttl=datetime.timedelta(days=30),
            )
            pay_page = magic_link_create(
                contact=contact,
                scope_=MagicLink.Scope.PAY,
                max_uses=100,
                ttl=datetime.timedelta(days=30),
            )
        links.insert(1, ("Magic link (past due)", contact.email, f"{base_url}/l/{issued.token}/"))
        links.insert(2, ("Pay page (login-free)", contact.email, f"{base_url}/pay/{pay_page.token}/"))
    return links
