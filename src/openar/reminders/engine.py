"""The reminder engine: which reminder each customer is due, and the messages that say it.

A customer's **dunning cycle** is anchored on its oldest open invoice that is not on hold:
the steps of the customer's policy count their offsets from that invoice's due date. When
the invoice is paid (or put on hold), the next oldest anchors a new cycle.

``plan`` finds, in SQL, the customers who have a step due today: an anchor invoice old
enough for the policy's earliest step, no hold on the customer, no reminder within the
frequency cap. For each, only the **latest** step that is due, among those whose channel can
reach the customer (consent, a working address), is planned: after an outage a step that
fell due meanwhile is sent once, and one that a later step superseded is skipped.
A step already recorded for the cycle (sent, failed or skipped) is never planned again:
``Message`` has a unique key on (customer, step, cycle), which also makes two workers
running the same tick create each reminder once.

``run`` turns the plan into messages: the contact who may receive the channel (consent, a
working address), the template in the contact's language, a sign-in link to the past-due
invoices, an unsubscribe link, the statement when the step attaches it, and quiet hours in
the contact's time zone (the message waits until they end).
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings as django_settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone
from django_scopes import scope
from django_tasks import task

from openar.billing.models import Document, Invoice
from openar.billing.services import document_store
from openar.billing.statements import render_statement_pdf, statement_for
from openar.core.files import atomic_with_files
from openar.customers.models import Contact, Customer, Hold
from openar.identity.magic import magic_links_issue
from openar.identity.models import MagicLink, User
from openar.notifications.models import Channel, Message, MessageTemplate, Thread
from openar.notifications.rendering import render
from openar.notifications.services import THREADED_CHANNELS, address_of
from openar.notifications.tasks import send_messages
from openar.reminders.context import context_from, remindable_invoices
from openar.reminders.models import DunningPolicy, DunningStep, ReminderSettings
from openar.tenants.models import Organization

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "openar.reminders.unsubscribe"
# The one-click Easy Pay link: for what is past due, a pay-page link (``/pay/<token>/``: pay,
# promise or arrange, nothing else of the account); before anything is due, the portal's
# payment page.
EASY_PAY_TARGET = "/portal/pay/"
PAY_PAGE_TARGET = "/pay/"


class NothingToRemind(Exception):
    pass


@dataclass(frozen=True)
class Planned:
    customer_id: int
    step: DunningStep
    cycle: int  # the anchor invoice's id
    anchor_due: datetime.date


@dataclass
class RunResult:
    created: int = 0
    blocked: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    already: int = 0


def settings_of(organization: Organization) -> ReminderSettings:
    found, _ = ReminderSettings.objects.get_or_create(organization=organization)
    return found


def policies_of() -> tuple[dict[str, list[DunningStep]], list[DunningStep]]:
    """Steps by segment, and the default policy's steps (in the current scope)."""
    by_segment: dict[str, list[DunningStep]] = {}
    for policy in DunningPolicy.objects.filter(is_active=True).prefetch_related("steps"):
        by_segment[policy.segment] = sorted(policy.steps.all(), key=lambda s: (s.offset_days, s.channel))
    return by_segment, by_segment.get("", [])


def customer_hold(moment: datetime.datetime) -> Exists:
    return Exists(
        Hold.objects.filter(customer=OuterRef("pk"), invoice__isnull=True, released_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=moment)
        )
    )


def plan(
    organization: Organization, now: datetime.datetime, *, today: datetime.date | None = None
) -> list[Planned]:
    """The reminders due for the organization's customers on ``today`` (in its time zone):
    for each, the latest due step on a channel that can reach them."""
    settings = settings_of(organization)
    if settings.is_paused:
        return []
    today = today or now.astimezone(organization.tz).date()
    by_segment, default_steps = policies_of()
    all_steps = [step for steps in by_segment.values() for step in steps]
    if not all_steps:
        return []
    earliest = min(step.offset_days for step in all_steps)
    anchor = remindable_invoices(now).filter(customer=OuterRef("pk")).order_by("due_date", "pk")
    recent = Message.objects.filter(
        customer=OuterRef("pk"),
        dunning_step__isnull=False,
        created_at__gte=now - datetime.timedelta(days=settings.min_days_between),
    ).exclude(state=Message.State.SKIPPED)
    customers = (
        Customer.objects.annotate(
            anchor_id=Subquery(anchor.values("pk")[:1]), anchor_due=Subquery(anchor.values("due_date")[:1])
        )
        .filter(anchor_id__isnull=False, anchor_due__lte=today - datetime.timedelta(days=earliest))
        .exclude(customer_hold(now))
    )
    if settings.min_days_between:
        customers = customers.exclude(Exists(recent))
    reachable = Contact.objects.filter(customer=OuterRef("pk"))
    rows = customers.annotate(
        email_ok=Exists(reachable.filter(consent_email=True, email_problem="").exclude(email="")),
        sms_ok=Exists(reachable.filter(consent_sms=True, phone_problem="").exclude(phone="")),
    ).values_list("pk", "segment", "anchor_id", "anchor_due", "email_ok", "sms_ok", "address_line1")
    candidates: list[Planned] = []
    for customer_id, segment, anchor_id, anchor_due, email_ok, sms_ok, street in rows.iterator(
        chunk_size=5000
    ):
        steps = by_segment.get(segment, default_steps) if segment else default_steps
        days = (today - anchor_due).days
        # A step on a channel that cannot reach the customer (no consent, no working
        # address) is passed over: the latest step that can reach them is the one due.
        open_channels = {Channel.PORTAL} | {
            channel
            for channel, ok in (
                (Channel.EMAIL, email_ok),
                (Channel.SMS, sms_ok),
                (Channel.LETTER, bool(street)),
            )
            if ok
        }
        due = [step for step in steps if step.offset_days <= days and step.channel in open_channels]
        if not due:
            continue
        latest = max(step.offset_days for step in due)
        candidates += [
            Planned(customer_id, step, anchor_id, anchor_due) for step in due if step.offset_days == latest
        ]
    if not candidates:
        return []
    done = _recorded({planned.cycle for planned in candidates}, {planned.step.pk for planned in candidates})
    return [p for p in candidates if (p.customer_id, p.step.pk, p.cycle) not in done]


def _recorded(cycles: set[int], step_ids: set[int]) -> set[tuple[int, int, int]]:
    found: set[tuple[int, int, int]] = set()
    cycle_list = sorted(cycles)
    for start in range(0, len(cycle_list), 5000):
        rows = Message.objects.filter(
            dunning_cycle__in=cycle_list[start : start + 5000], dunning_step_id__in=step_ids
        ).values_list("customer_id", "dunning_step_id", "dunning_cycle")
        found.update((customer, step, cycle) for customer, step, cycle in rows if step and cycle)
    return found


# --- who receives it, and when ------------------------------------------------------------


def recipient(contacts: list[Contact], channel: str) -> Contact | None:
    """The primary contact if the channel may reach them, else the first other who can."""
    for contact in sorted(contacts, key=lambda c: (not c.is_primary, c.pk)):
        if channel == Channel.EMAIL and contact.email and contact.consent_email and not contact.email_problem:
            return contact
        if channel == Channel.SMS and contact.phone and contact.consent_sms and not contact.phone_problem:
            return contact
        if channel == Channel.LETTER:
            return contact
    return None


def blocked_reason(customer: Customer, contacts: list[Contact], channel: str) -> str:
    if channel == Channel.LETTER:
        return "" if customer.address_lines else "no postal address"
    if recipient(contacts, channel) is not None:
        return ""
    if channel == Channel.EMAIL:
        if not any(c.email for c in contacts):
            return "no email address"
        if not any(c.consent_email for c in contacts if c.email):
            return "opted out of email"
        return "email address not working"
    if not any(c.phone for c in contacts):
        return "no mobile number"
    if not any(c.consent_sms for c in contacts if c.phone):
        return "no consent to texts"
    return "mobile number not working"


def quiet_until(
    moment: datetime.datetime, zone: datetime.tzinfo, start: datetime.time, end: datetime.time
) -> datetime.datetime | None:
    """When quiet hours (start → end, in ``zone``) are on at ``moment``, the moment they
    end (in UTC); else None. A window may span midnight (20:00 → 08:00)."""
    local = moment.astimezone(zone)
    clock = local.time()
    if start == end:
        return None
    quiet = (start <= clock or clock < end) if start > end else (start <= clock < end)
    if not quiet:
        return None
    day = local.date() if clock < end else local.date() + datetime.timedelta(days=1)
    return datetime.datetime.combine(day, end, tzinfo=zone).astimezone(datetime.UTC)


def unsubscribe_url(contact: Contact, channel: str) -> str:
    """A link that stops ``channel`` reminders to the contact. It does not expire: an old
    email's link must still work."""
    token = signing.dumps({"c": contact.pk, "ch": channel}, salt=UNSUBSCRIBE_SALT, compress=True)
    return f"{django_settings.SITE_URL}/u/{token}/"


# --- turning the plan into messages --------------------------------------------------------


BATCH = 200  # reminders created per transaction (and queued as one send task)


def run(
    organization: Organization, now: datetime.datetime | None = None, *, limit: int | None = None
) -> RunResult:
    """Plan and create the organization's reminders now, in this process (``run_all``, the
    periodic job, spreads the creating over the workers instead). ``limit`` creates only
    the first ones (the rest stay planned)."""
    now = now or timezone.now()
    with scope(organization=organization):
        planned = plan(organization, now)[:limit]
    return make(organization, planned, now)


def make(organization: Organization, planned: list[Planned], now: datetime.datetime) -> RunResult:
    """Create the planned reminders, in batches of ``BATCH`` (each batch one transaction; a
    batch that meets a reminder another worker made first, or any error, is redone one
    reminder at a time, so one customer never stops the others)."""
    result = RunResult()
    if not planned:
        return result
    with scope(organization=organization):
        settings = settings_of(organization)
        customers = Customer.objects.in_bulk({p.customer_id for p in planned})
        for customer in customers.values():
            customer.organization = organization
        contacts: dict[int, list[Contact]] = defaultdict(list)
        for contact in Contact.objects.filter(customer_id__in=customers):
            contact.customer = customers[contact.customer_id]
            contacts[contact.customer_id].append(contact)
        templates = {
            (t.key, t.channel, t.language): t
            for t in MessageTemplate.objects.filter(key__in={p.step.template_key for p in planned})
        }
        today = now.astimezone(organization.tz).date()
        batch = Batch(customers, contacts, templates, settings, now, today)
        for start in range(0, len(planned), BATCH):
            chunk = [item for item in planned[start : start + BATCH] if item.customer_id in customers]
            try:
                outcomes = batch.create(chunk)
            except Exception as exc:
                if not isinstance(exc, IntegrityError):
                    logger.exception("a batch of reminders failed; making them one at a time")
                outcomes = [batch.create_one(item) for item in chunk]
            for outcome in outcomes:
                if outcome == "created":
                    result.created += 1
                elif outcome == "already":
                    result.already += 1
                else:
                    result.blocked[outcome] += 1
    return result


@dataclass
class _Ready:
    item: Planned
    customer: Customer
    contact: Contact | None
    template: MessageTemplate
    language: str


@dataclass
class Batch:
    """Makes the reminders of a run: hundreds in a few statements (links, threads,
    messages, their invoices and audit rows in bulk), or one at a time.

    ``ignore_quiet_hours``: staff chose the moment (send now), so the message does not wait
    for the organization's quiet hours to end. Consent and working addresses still decide
    who may receive it."""

    customers: dict[int, Customer]
    contacts: dict[int, list[Contact]]
    templates: dict[tuple[str, str, str], MessageTemplate]
    settings: ReminderSettings
    now: datetime.datetime
    today: datetime.date
    ignore_quiet_hours: bool = False

    def _ready(self, item: Planned) -> _Ready | str:
        customer = self.customers[item.customer_id]
        people = self.contacts[customer.pk]
        step = item.step
        reason = blocked_reason(customer, people, step.channel)
        if reason:
            return reason
        contact = recipient(people, step.channel)
        language = contact.language if contact else "en"
        template = self.templates.get((step.template_key, step.channel, language)) or self.templates.get(
            (step.template_key, step.channel, "en")
        )
        if template is None:
            return "template missing"
        return _Ready(item, customer, contact, template, language)

    def create_one(self, item: Planned) -> str:
        try:
            return self.create([item])[0]
        except NothingToRemind:
            return "nothing to remind"
        except IntegrityError:
            return "already"  # another worker created it first
        except Exception:
            logger.exception("reminder for customer %s failed", item.customer_id)
            return "error"

    def create(self, items: list[Planned]) -> list[str]:
        """Each item's outcome ("created" or why not), all written in one transaction."""
        outcomes: list[str] = []
        ready: list[_Ready] = []
        for item in items:
            found = self._ready(item)
            if isinstance(found, str):
                outcomes.append(found)
            else:
                ready.append(found)
                outcomes.append("created")
        if not ready:
            return outcomes
        open_invoices: dict[int, list[Invoice]] = defaultdict(list)
        for invoice in (
            remindable_invoices(self.now)
            .filter(customer_id__in={r.customer.pk for r in ready})
            .only("pk", "customer_id", "number", "po_number", "due_date", "open_amount", "currency")
            .order_by("customer_id", "due_date", "pk")
        ):
            open_invoices[invoice.customer_id].append(invoice)
        # The statements' files are written as the batch goes: a batch that rolls back (a
        # reminder another worker made first, an error) deletes them with their rows.
        with atomic_with_files():
            # Two links per reminder: one opens the invoices, one (Easy Pay) the payment page.
            wanted = [
                link
                for r in ready
                if r.contact is not None and r.item.step.channel != Channel.LETTER
                for link in (
                    [
                        (r.contact, MagicLink.Scope.PAST_DUE, ""),
                        (r.contact, MagicLink.Scope.PAY, PAY_PAGE_TARGET),
                    ]
                    if r.item.step.offset_days >= 0
                    else [
                        (r.contact, MagicLink.Scope.ACCOUNT, ""),
                        (r.contact, MagicLink.Scope.ACCOUNT, EASY_PAY_TARGET),
                    ]
                )
            ]
            links = iter(magic_links_issue(wanted))  # type: ignore[arg-type]
            messages: list[Message] = []
            concerns: list[list[int]] = []
            statements: list[Document | None] = []
            threads: list[Thread | None] = []
            for r in ready:
                step = r.item.step
                linked = r.contact is not None and step.channel != Channel.LETTER
                link, easy_pay = (next(links), next(links)) if linked else (None, None)
                statement = (
                    _statement(r.customer, self.today)
                    if step.attach_statement and step.channel == Channel.EMAIL
                    else None
                )
                unsubscribe = (
                    unsubscribe_url(r.contact, Channel.EMAIL)
                    if r.contact is not None and step.channel == Channel.EMAIL
                    else ""
                )
                context = context_from(
                    r.customer,
                    r.contact,
                    self.today,
                    r.language,
                    step.offset_days,
                    link.url if link else "",
                    unsubscribe,
                    statement is not None,
                    open_invoices[r.customer.pk],
                    easy_pay_link=easy_pay.url if easy_pay else "",
                )
                invoice_ids = context.pop("_invoice_ids")
                if not invoice_ids:
                    raise NothingToRemind  # cannot happen for a planned step; never sent empty
                draft = render(r.template.subject, r.template.body, context)
                not_before = None
                if step.channel in (Channel.EMAIL, Channel.SMS) and not self.ignore_quiet_hours:
                    zone = r.contact.tz if r.contact is not None else r.customer.organization.tz
                    not_before = quiet_until(
                        self.now, zone, self.settings.quiet_start, self.settings.quiet_end
                    )
                threads.append(
                    Thread(
                        organization_id=r.customer.organization_id, customer=r.customer, subject=draft.subject
                    )
                    if step.channel in THREADED_CHANNELS
                    else None
                )
                messages.append(
                    Message(
                        organization_id=r.customer.organization_id,
                        customer=r.customer,
                        contact=r.contact,
                        channel=step.channel,
                        to_address=address_of(r.contact, r.customer, step.channel),
                        subject=draft.subject,
                        body_text=draft.text,
                        body_html=draft.html if step.channel == Channel.EMAIL else "",
                        links=list(draft.links),
                        tone=step.tone,
                        dunning_step=step,
                        dunning_cycle=r.item.cycle,
                        not_before=not_before,
                    )
                )
                concerns.append(invoice_ids)
                statements.append(statement)
            Thread.objects.bulk_create([thread for thread in threads if thread is not None])
            for message, thread in zip(messages, threads, strict=True):
                message.thread = thread
            Message.objects.bulk_create(messages)
            invoice_links = Message.invoices.through
            invoice_links.objects.bulk_create(
                [
                    invoice_links(message_id=message.pk, invoice_id=invoice_id)
                    for message, ids in zip(messages, concerns, strict=True)
                    for invoice_id in ids
                ]
            )
            attachment_links = Message.attachments.through
            attachment_links.objects.bulk_create(
                [
                    attachment_links(message_id=message.pk, document_id=statement.pk)
                    for message, statement in zip(messages, statements, strict=True)
                    if statement is not None
                ]
            )
            due_now = [m.pk for m in messages if m.not_before is None]
            if due_now:
                transaction.on_commit(lambda: send_messages.enqueue(due_now))
        return outcomes


def _statement(customer: Customer, today: datetime.date) -> Document:
    pdf = render_statement_pdf(statement_for(customer, today))
    return document_store(
        customer=customer,
        kind=Document.Kind.STATEMENT,
        title=f"Statement {today:%Y-%m-%d}",
        filename=f"statement-{customer.number}-{today:%Y-%m-%d}.pdf",
        content=pdf,
        content_type="application/pdf",
    )


def run_all(now: datetime.datetime | None = None) -> dict[str, int]:
    """The periodic job: plan every organization's reminders, and queue their creation in
    tasks of ``BATCH`` reminders, which the workers share. Returns how many were queued per
    organization. A batch still waiting when the next plan runs is planned again; the
    unique key makes the second one create nothing."""
    now = now or timezone.now()
    queued: dict[str, int] = {}
    for organization in Organization.objects.order_by("pk"):
        with scope(organization=organization):
            planned = plan(organization, now)
        for start in range(0, len(planned), BATCH):
            make_reminders.enqueue(
                organization.pk,
                [
                    [item.customer_id, item.step.pk, item.cycle, item.anchor_due.isoformat()]
                    for item in planned[start : start + BATCH]
                ],
                now.isoformat(),
            )
        queued[organization.slug] = len(planned)
    return queued


@task()
def make_reminders(organization_id: int, items: list[list[Any]], now: str) -> dict[str, int]:
    """Create one batch of planned reminders (queued by ``run_all``)."""
    organization = Organization.objects.get(pk=organization_id)
    with scope(organization=organization):
        steps = DunningStep.objects.in_bulk({int(item[1]) for item in items})
    planned = [
        Planned(int(customer), steps[int(step)], int(cycle), datetime.date.fromisoformat(str(due)))
        for customer, step, cycle, due in items
        if int(step) in steps
    ]
    result = make(organization, planned, datetime.datetime.fromisoformat(now))
    return {"created": result.created, "already": result.already, **result.blocked}


# --- staff: what will go out, skip it, or send it now ----------------------------------------


@dataclass(frozen=True)
class Upcoming:
    customer: Customer
    step: DunningStep
    cycle: int
    contact: Contact | None
    blocked: str  # why it would not go out ("" when it would)


def upcoming(organization: Organization, moment: datetime.datetime) -> list[Upcoming]:
    """What the engine would send at ``moment`` (staff look at tomorrow), with the recipient
    or the reason it would be blocked. Reads only."""
    with scope(organization=organization):
        planned = plan(organization, moment)
        customers = Customer.objects.in_bulk({p.customer_id for p in planned})
        contacts: dict[int, list[Contact]] = defaultdict(list)
        for contact in Contact.objects.filter(customer_id__in=customers):
            contacts[contact.customer_id].append(contact)
        rows = []
        for item in planned:
            customer = customers[item.customer_id]
            customer.organization = organization
            people = contacts[customer.pk]
            rows.append(
                Upcoming(
                    customer=customer,
                    step=item.step,
                    cycle=item.cycle,
                    contact=recipient(people, item.step.channel),
                    blocked=blocked_reason(customer, people, item.step.channel),
                )
            )
    rows.sort(key=lambda row: (row.customer.name, row.step.offset_days))
    return rows


def reminder_skip(*, customer: Customer, step: DunningStep, cycle: int, actor: User | None) -> Message:
    """Staff decide this reminder will not go out: it is recorded as skipped, so the engine
    never plans it again (the next step still comes when it is due)."""
    from openar.core.audit import log_event

    with transaction.atomic():
        message = Message.objects.create(
            organization_id=customer.organization_id,
            customer=customer,
            channel=step.channel,
            state=Message.State.SKIPPED,
            subject=f"Reminder skipped: {step}",
            tone=step.tone,
            dunning_step=step,
            dunning_cycle=cycle,
            created_by=actor,
            error=f"Skipped by {actor.get_full_name() if actor else 'staff'}.",
        )
        log_event(
            "openar.reminder.skipped",
            organization=customer.organization,
            obj=message,
            actor=actor,
            data={"customer": customer.pk, "step": step.pk, "cycle": cycle},
        )
    return message


def reminder_send_now(*, customer: Customer, step: DunningStep, cycle: int, actor: User | None) -> str:
    """Create the reminder now and queue it at once (no quiet-hours wait: staff chose the
    moment; nor a frequency cap, which only the engine's planning applies). Consent and
    working addresses count as for any reminder. Returns "created", or why it could not be
    (blocked, already recorded)."""
    from openar.core.audit import log_event

    now = timezone.now()
    organization = customer.organization
    settings = settings_of(organization)
    contacts = list(Contact.objects.filter(customer=customer))
    for contact in contacts:
        contact.customer = customer
    templates = {
        (t.key, t.channel, t.language): t for t in MessageTemplate.objects.filter(key=step.template_key)
    }
    anchor = Invoice.objects.filter(pk=cycle, customer=customer).first()
    if anchor is None:
        return "this cycle's invoice is gone"
    batch = Batch(
        {customer.pk: customer},
        {customer.pk: contacts},
        templates,
        settings,
        now,
        now.astimezone(organization.tz).date(),
        ignore_quiet_hours=True,
    )
    outcome = batch.create_one(Planned(customer.pk, step, cycle, anchor.due_date))
    if outcome == "already":
        return "already sent or skipped"
    if outcome == "created":
        log_event(
            "openar.reminder.sent_now",
            organization=organization,
            obj=customer,
            actor=actor,
            data={"step": step.pk, "cycle": cycle},
        )
    return outcome
