"""The isolation harness: a world of three organizations whose every object carries a marker
that must never reach anyone outside it, and the routes of the portal and the desk, read from
the URL conf (not listed by hand), with the ids to fill each one.

A route added later is picked up by ``object_routes()``; if one of its parameters is not in
``FILLERS`` the harness fails (``test_every_object_route_can_be_filled``) instead of skipping it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver
from django.urls.resolvers import RoutePattern
from django.utils import timezone
from django_scopes import scope
from reportlab.pdfgen import canvas

from factories import (
    Users,
    days_ago,
    issue_credit_note,
    issue_invoice,
    make_contact,
    make_customer,
    make_document,
    make_member,
    make_user,
    record_payment,
)
from openar.billing.models import CreditNote, Document, Invoice, InvoiceLine
from openar.billing.services import LineInput
from openar.client.models import DirectPaymentReport, PlacementImport
from openar.client.payments import direct_payment_report
from openar.client.services import client_note_add
from openar.commitments.models import Plan, Promise
from openar.commitments.services import plan_create, plan_quote, plan_terms, promise_create
from openar.contracts.models import Contract
from openar.contracts.services import Signer, contract_send, contract_sign, contract_upload
from openar.contracts.services import consent_text as contract_consent
from openar.core.uploads import UploadKind, upload_check
from openar.customers.models import Activity, Contact, Customer, Hold, Task
from openar.customers.services import activity_record, task_create
from openar.disputes.models import Dispute
from openar.disputes.reasons import dispute_reasons
from openar.disputes.services import LineClaim, dispute_open
from openar.identity.magic import magic_link_create
from openar.identity.models import User
from openar.notifications.models import Channel, Message, MessageTemplate, Thread
from openar.notifications.services import Draft, creditor_message_post, message_create, message_receive
from openar.payments.autopay import autopay_enable, consent_text, setup_complete, setup_start
from openar.payments.models import MethodSetup, Payment, ProviderAccount
from openar.payments.online import choose_lines, payment_refund, payment_settings, payment_start
from openar.payments.sandbox import setup_save
from openar.reminders.models import DunningPolicy, DunningStep
from openar.tenants.models import Creditor, Membership, Organization, Role

DOORS = ("portal", "desk", "client")


# --- routes, from the URL conf ------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One page of a front door, e.g. ``desk:invoice`` at
    ``/desk/customers/<int:customer_id>/invoices/<int:invoice_id>/``."""

    door: str
    name: str
    template: str
    params: tuple[str, ...]
    unfillable: tuple[str, ...]  # parameters the harness cannot fill (not <int:...>, or no filler)
    perms: frozenset[str] = frozenset()  # what the view requires (openar.tenants.access.require)

    def open_to(self, perms: frozenset[str]) -> bool:
        return self.perms <= perms

    def fill(self, ids: dict[str, int]) -> str:
        return _PARAM.sub(lambda m: str(ids[m.group("name")]), self.template)

    def __str__(self) -> str:
        return self.name


_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")


def _walk(
    patterns: list[URLPattern | URLResolver], prefix: str, namespaces: tuple[str, ...]
) -> Iterator[tuple[str, tuple[str, ...], URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            spaces = (*namespaces, entry.namespace) if entry.namespace else namespaces
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), spaces)
        else:
            yield prefix + str(entry.pattern), namespaces, entry


def door_routes() -> list[Route]:
    """Every route of the portal and the desk, with and without parameters."""
    from openar import urls

    routes = []
    for template, namespaces, entry in _walk(urls.urlpatterns, "/", ()):
        if not namespaces or namespaces[0] not in DOORS:
            continue
        name = ":".join((*namespaces, entry.name or f"<unnamed {template}>"))
        params: list[str] = []
        unfillable: list[str] = []
        if not isinstance(entry.pattern, RoutePattern):
            unfillable.append(f"regex route {template!r}")
        for match in _PARAM.finditer(template):
            params.append(match.group("name"))
            if match.group("converter") != "int" or match.group("name") not in FILLERS:
                unfillable.append(match.group(0))
        perms = frozenset(str(p) for p in getattr(entry.callback, "openar_perms", frozenset()))
        routes.append(Route(namespaces[0], name, template, tuple(params), tuple(unfillable), perms))
    return routes


def object_routes() -> list[Route]:
    """The routes that take an object id: the ones a foreign id must 404 on."""
    return [route for route in door_routes() if route.params]


# --- the world ----------------------------------------------------------------------------------


PDF_MARKER = "PDF-CONTENT-"


def small_pdf(text: str) -> bytes:
    """A one-page PDF whose content stream (uncompressed) holds ``text``."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pageCompression=0)
    pdf.drawString(72, 720, text)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


@dataclass
class Account:
    """One customer with everything the portal and the desk show about it."""

    tag: str
    organization: Organization
    customer: Customer
    contact: Contact
    invoices: list[Invoice]
    lines: list[InvoiceLine]
    payment: Payment
    credit_note: CreditNote
    document: Document
    hidden_document: Document
    pdf: bytes
    internal_note: Activity
    membership: Membership  # a portal user of the customer (the desk's People page lists it)
    message: Message  # an email sent to the contact (the desk's outbox shows it)
    hold: Hold  # a released hold (the desk's customer page can release holds)
    thread: Thread  # the email's thread, where the contact asked a question (portal and desk inbox)
    template: MessageTemplate  # the reminder setup of the organization (installed with it)
    policy: DunningPolicy
    step: DunningStep
    setup: MethodSetup  # a card saved for autopay, and autopay on with it
    promise: Promise  # a promise on the late invoice (replaced by the plan: cancelled)
    plan: Plan  # a payment plan of the late invoice
    task: Task  # an open task on the collectors' worklist (the desk's plans page can mark it done)
    contract: Contract  # a signed contract (its portal and desk pages, the signed copy)
    dispute: Dispute  # an open dispute of a line of the late invoice, with its comment
    direct_report: DirectPaymentReport  # a payment its creditor says it was paid directly
    placement: PlacementImport  # a placement file of its creditor
    activities: list[Activity] = field(default_factory=list)
    # An agency's debtor: its creditor client's conversation with the collectors, and a note
    # of the creditor (set by the world; None for a supplier's customer).
    creditor_thread: Thread | None = None
    creditor_note: Activity | None = None

    @property
    def ids(self) -> dict[str, int]:
        """The id for each route parameter, from this account's objects."""
        return {name: fill(self) for name, fill in FILLERS.items()}

    @property
    def secrets(self) -> set[str]:
        """Strings that only someone entitled to this account may ever see."""
        return {
            self.customer.name,
            self.customer.email,
            self.contact.name,
            self.contact.email,
            *(invoice.number for invoice in self.invoices),
            *(invoice.po_number for invoice in self.invoices if invoice.po_number),
            *(line.description for line in self.lines),
            *(line.sku for line in self.lines if line.sku),
            self.payment.reference,
            self.credit_note.number,
            self.credit_note.reason,
            self.document.title,
            self.hidden_document.title,
            self.document.filename,
            self.internal_note.summary,
            f"{PDF_MARKER}{self.tag}",
            self.membership.user.email,
            self.message.subject,
            self.promise.note,
            self.task.summary,
            self.contract.title,
            f"DIRECT-{self.tag}",
            f"placement-{self.tag.lower()}.csv",
            f"Dispute comment {self.tag}",
            f"Creditor question {self.tag}",
            f"Creditor note {self.tag}",
        } - {""}


# How to fill each route parameter from an account. A route with any other parameter makes
# the harness fail until a filler is added here (and the object to the world).
FILLERS: dict[str, Callable[[Account], int]] = {
    "customer_id": lambda a: a.customer.pk,
    "invoice_id": lambda a: a.invoices[0].pk,
    "line_id": lambda a: a.lines[0].pk,
    "invoice_line_id": lambda a: a.lines[0].pk,
    "payment_id": lambda a: a.payment.pk,
    "credit_note_id": lambda a: a.credit_note.pk,
    "document_id": lambda a: a.document.pk,
    "contact_id": lambda a: a.contact.pk,
    "activity_id": lambda a: a.activities[0].pk,
    "note_id": lambda a: a.internal_note.pk,
    "membership_id": lambda a: a.membership.pk,
    "template_id": lambda a: a.template.pk,
    "policy_id": lambda a: a.policy.pk,
    "step_id": lambda a: a.step.pk,
    "message_id": lambda a: a.message.pk,
    "hold_id": lambda a: a.hold.pk,
    "thread_id": lambda a: a.thread.pk,
    "setup_id": lambda a: a.setup.pk,
    "promise_id": lambda a: a.promise.pk,
    "plan_id": lambda a: a.plan.pk,
    "task_id": lambda a: a.task.pk,
    "contract_id": lambda a: a.contract.pk,
    "dispute_id": lambda a: a.dispute.pk,
    # The creditor conversations (every account has one in the world; the client door only
    # ever answers its own creditor's).
    "conversation_id": lambda a: (a.creditor_thread or a.thread).pk,
    "report_id": lambda a: a.direct_report.pk,
    "import_id": lambda a: a.placement.pk,
}


def build_account(tag: str, customer: Customer) -> Account:
    """Two invoices (three lines), a payment, a credit note, two documents (one for staff
    only), a contact and an internal note, every text carrying ``tag``."""
    organization = customer.organization
    lower = tag.lower()
    late = issue_invoice(
        customer,
        f"INV-{tag}-1",
        due_date=days_ago(40),
        po_number=f"PO-{tag}-7",
        lines=[
            LineInput(f"Hinges for {tag}", Decimal(4), Decimal("12.50"), sku=f"SKU-{tag}-H"),
            LineInput(f"Bolts for {tag}", Decimal(10), Decimal("5.00"), Decimal("0.10")),
        ],
    )
    upcoming = issue_invoice(
        customer,
        f"INV-{tag}-2",
        due_date=days_ago(-10),
        lines=[LineInput(f"Freight for {tag}", Decimal(1), Decimal("80.00"))],
    )
    payment = record_payment(customer, "30.00", allocations=[(late, "30.00")], reference=f"CHK-{tag}")
    credit_note = issue_credit_note(upcoming, f"CN-{tag}", "20.00", reason=f"Damaged crate {tag}")
    with scope(organization=organization):
        # Online payments are tenant data too: settings and a provider account per
        # organization, a checkout in flight (its target), and a refund.
        payment_settings(organization)
        ProviderAccount.objects.get_or_create(organization=organization, provider="sandbox")
        payment_start(
            customer=customer,
            lines=choose_lines(customer, organization.today(), invoice_ids=[upcoming.pk]),
            method="card",
            provider_name="sandbox",
            checkout_token=f"token-{tag}",
            return_url="http://testserver/portal/pay/",
            cancel_url="http://testserver/portal/pay/",
        )
        payment_refund(payment=payment, amount=Decimal("1.00"), reason=f"Refund {tag}", actor=None)
    pdf = small_pdf(f"{PDF_MARKER}{tag}")
    document = make_document(
        customer, title=f"Delivery note {tag}", filename=f"delivery-{lower}.pdf", content=pdf, invoice=late
    )
    hidden = make_document(
        customer,
        title=f"Collector memo {tag}",
        filename=f"memo-{lower}.pdf",
        content=pdf,
        kind=Document.Kind.ATTACHMENT,
        visible_to_customer=False,
    )
    contact = make_contact(customer, f"Payables {tag}", f"payables@{lower}.example")
    member = make_member(organization, Role.CUSTOMER, f"portal-{lower}@{lower}.example", customer=customer)
    with scope(organization=organization):
        membership = Membership.objects.get(user=member)
        hold = Hold.objects.create(  # released: in the tables, pausing nothing
            organization=organization,
            customer=customer,
            reason=f"Old hold {tag}",
            placed_at=timezone.now(),
            released_at=timezone.now(),
        )
        message = message_create(
            customer=customer,
            channel=Channel.EMAIL,
            draft=Draft(f"Statement reminder {tag}", f"Hello from {tag}"),
            contact=contact,
        )
        message_receive(
            customer=customer,
            channel=Channel.PORTAL,
            thread=message.thread,
            body=f"Question from {tag} about the statement",
            contact=contact,
        )
        thread = Thread.objects.get(pk=message.thread_id)
        # The reminder setup every organization starts with, named after the organization so
        # that its desk pages show whose it is (the shipped names are the same everywhere).
        friendly = MessageTemplate.objects.filter(
            key="reminder-friendly", channel=Channel.EMAIL, language="en"
        )
        friendly.update(name=f"Just past due at {organization.name}")
        DunningPolicy.objects.filter(segment="").update(name=f"Standard reminders of {organization.name}")
        template = friendly.get()
        policy = DunningPolicy.objects.get(segment="", is_active=True)
        step = policy.steps.order_by("offset_days", "pk")[0]
        # A sign-in link per contact: magic links are tenant data too.
        magic_link_create(contact=contact, created_by=None)
        note = activity_record(
            customer=customer,
            kind=Activity.Kind.NOTE,
            summary=f"Internal note {tag}: call the controller",
            visibility=Activity.Visibility.INTERNAL,
        )
        # A card saved at the sandbox's page, and autopay on with it.
        setup, _ = setup_start(customer=customer, contact=contact, method="card", actor=None)
        setup_save(setup.provider_setup_id, method="card", number="4242424242424242", expires=None)
        saved = setup_complete(setup=setup, actor=None)
        assert saved is not None
        autopay_enable(
            customer=customer,
            method=saved,
            agreed_text=consent_text(customer, saved),
            contact=contact,
            actor=None,
            ip="127.0.0.1",
        )
        # Commitments: a promise on the late invoice, then a payment plan that replaces it,
        # and a task on the collectors' worklist.
        today = organization.today()
        promise = promise_create(
            customer=customer,
            amount=Decimal("10.00"),
            promised_date=today + timedelta(days=5),
            invoices=[late],
            note=f"Promise note {tag}",
            contact=contact,
            actor=None,
            source="portal",
        )
        arrangement = {
            "invoices": [late],
            "down_payment": Decimal(0),
            "frequency": "monthly",
            "installment_count": 1,
            "first_date": today,
        }
        plan = plan_create(
            customer=customer,
            **arrangement,
            agreed_text=plan_terms(customer, plan_quote(customer=customer, **arrangement), None),
            contact=contact,
            actor=None,
            ip=None,
            source="portal",
        )
        task = task_create(
            customer=customer, kind=Task.Kind.CALLBACK, summary=f"Call {tag} back", due_date=today
        )
        # A contract sent and signed (signing files the signed copy among the documents).
        contract = contract_upload(
            customer=customer,
            title=f"Agreement {tag}",
            content=small_pdf(f"Agreement {tag}"),
            filename=f"agreement-{lower}.pdf",
            actor=None,
        )
        contract_send(contract=contract, actor=None)
        contract = Contract.objects.get(pk=contract.pk)
        contract = contract_sign(
            contract=contract,
            signer=Signer(
                user=member,
                contact=contact,
                ip="127.0.0.1",
                user_agent="isolation",
                auth_method="password + authenticator app",
            ),
            typed_name=f"Payables {tag}",
            consent=True,
            shown_consent=contract_consent(contract),
            seen_sha256=contract.sha256,
        )
        # A dispute of the late invoice's first line.
        price = dispute_reasons(organization).get(code="price")
        first_line = late.lines.order_by("position")[0]
        dispute = dispute_open(
            invoice=late,
            lines=[LineClaim(first_line.pk, price.pk, Decimal("5.00"), f"Dispute comment {tag}")],
            contact=contact,
            actor=None,
            attachments=[
                upload_check(
                    SimpleUploadedFile(f"photo-{lower}.pdf", pdf, content_type="application/pdf"),
                    kind=UploadKind.ATTACHMENT,
                )
            ],
        )
        # What a creditor client sends: a payment it was paid directly, and a placement file.
        direct_report = direct_payment_report(
            customer=customer,
            creditor=customer.creditor,
            amount=Decimal("1.00"),
            received_on=days_ago(1),
            method="cheque",
            reference=f"DIRECT-{tag}",
            actor=None,
        )
        placement = PlacementImport.objects.create(
            organization=organization,
            creditor=customer.creditor,
            filename=f"placement-{lower}.csv",
            size=1,
            sha256="0" * 64,
        )
        lines = list(InvoiceLine.objects.filter(invoice__customer=customer).order_by("pk"))
        activities = list(Activity.objects.filter(customer=customer).order_by("pk"))
    return Account(
        tag=tag,
        organization=organization,
        customer=customer,
        contact=contact,
        invoices=[late, upcoming],
        lines=lines,
        payment=payment,
        credit_note=credit_note,
        document=document,
        hidden_document=hidden,
        pdf=pdf,
        internal_note=note,
        membership=membership,
        message=message,
        hold=hold,
        thread=thread,
        template=template,
        policy=policy,
        step=step,
        setup=setup,
        promise=promise,
        plan=plan,
        task=task,
        contract=contract,
        dispute=dispute,
        direct_report=direct_report,
        placement=placement,
        activities=activities,
    )


@dataclass
class World:
    """Acme (customers A and B), Globex (X and Y), the agency Northwind (debtors D and E,
    placed by two different creditors), and who signs in where."""

    accounts: dict[str, Account]
    users: Users
    staff: dict[str, User]  # organization slug -> an admin of it
    portal_users: dict[str, User]  # account key -> its customer contact user
    client_users: dict[str, User]  # agency account key -> a user of the creditor that placed it
    stranger: User  # signed in, with no membership anywhere

    def account(self, tag: str) -> Account:
        return self.accounts[tag]

    def of(self, organization: Organization) -> list[Account]:
        return [a for a in self.accounts.values() if a.organization.pk == organization.pk]

    def secrets_outside(self, visible: list[Account]) -> set[str]:
        """Every marker of the accounts not in ``visible``, minus strings that the visible
        accounts legitimately show too (say, an account number used in both tenants)."""
        own = (
            set().union(*(a.secrets for a in visible))
            | {a.customer.number for a in visible}
            | {a.organization.name for a in visible}
        )
        foreign: set[str] = set()
        for account in self.accounts.values():
            if account not in visible:
                foreign |= account.secrets | {account.customer.number, account.organization.name}
        return foreign - own


TAGS = {"A": "BOLT", "B": "ANVIL", "X": "ZETA", "Y": "OMEGA", "D": "PATJ", "E": "RIVERS"}


@pytest.fixture
def world(
    users: Users,
    supplier: Organization,
    other_supplier: Organization,
    agency: Organization,
    customer: Customer,
    customer_2: Customer,
    other_customer: Customer,
    other_creditor: Creditor,
    agency_clients: tuple[Creditor, Creditor],
    debtor: Customer,
) -> World:
    second_other = make_customer(
        other_creditor, "C-2002", name="Omega KG", currency="EUR", email="ap@omega.example"
    )
    second_debtor = make_customer(agency_clients[1], "D-5002", name="Sam Rivers")
    customers = {
        "A": customer,
        "B": customer_2,
        "X": other_customer,
        "Y": second_other,
        "D": debtor,
        "E": second_debtor,
    }
    accounts = {key: build_account(TAGS[key], c) for key, c in customers.items()}
    staff = {
        supplier.slug: users.admin,
        other_supplier.slug: make_member(other_supplier, Role.ADMIN, "admin@globex.example"),
        agency.slug: make_member(agency, Role.COLLECTOR, "collector@northwind.example"),
    }
    portal_users = {
        "A": users.customer,
        "B": make_member(supplier, Role.CUSTOMER, "ap@anvil-user.example", customer=customer_2),
        "X": make_member(other_supplier, Role.CUSTOMER, "ap@zeta-user.example", customer=other_customer),
        "D": make_member(agency, Role.CUSTOMER, "pat@debtor.example", customer=debtor),
    }
    client_users = {
        "D": users.creditor,  # City Water placed D
        "E": make_member(agency, Role.CREDITOR, "client@mercy.example", creditor=agency_clients[1]),
    }
    # A supplier has no creditor clients, but its desk has the creditor-conversation pages
    # all the same: each of its customers gets one conversation, so that those pages answer
    # its own ids (and a customer thread's id stays a 404 there).
    for key in ("A", "B", "X", "Y"):
        account = accounts[key]
        with scope(organization=account.organization):
            message = creditor_message_post(
                customer=account.customer,
                author=make_user(f"creditor-{account.tag.lower()}@example.com"),
                subject=f"Creditor question {account.tag}",
                body=f"Creditor asks about {account.tag}",
            )
            account.creditor_thread = Thread.creditor_threads.get(pk=message.thread_id)
    for key, user in client_users.items():
        account = accounts[key]
        with scope(organization=agency):
            message = creditor_message_post(
                customer=account.customer,
                author=user,
                subject=f"Creditor question {account.tag}",
                body=f"Creditor asks about {account.tag}",
            )
            account.creditor_thread = Thread.creditor_threads.get(pk=message.thread_id)
            account.creditor_note = client_note_add(
                customer=account.customer, author=user, body=f"Creditor note {account.tag}"
            )
    return World(
        accounts=accounts,
        users=users,
        staff=staff,
        portal_users=portal_users,
        client_users=client_users,
        stranger=make_user("nobody@example.com"),
    )
