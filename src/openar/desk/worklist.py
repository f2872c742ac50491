"""The collector's desk: the worklist (whom to work next, and why), callbacks, logging a call
attempt or a letter in two clicks, assigning accounts, and bulk actions on selected rows.

Who may do what:

- everyone on the desk (``DESK_VIEW``) sees the worklist and the callbacks;
- collectors (``DESK_COLLECT``) log calls and letters, mark callbacks done, place holds,
  mark creditor notes read, and take accounts for themselves ("assign to me");
- administrators (``DESK_ADMIN``) also give accounts to any collector, or unassign them.

Every action is a plain form (the pages work without JavaScript); ``openar/worklist.js``
adds keyboard shortcuts on top. After an action the desk goes back where it came from (a
``next`` path on the desk), else to the customer page.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from openar.core.errors import ServiceError
from openar.customers import worklist as selectors
from openar.customers.models import Activity, Customer, Task
from openar.customers.services import (
    accounts_assign,
    assignable_collectors,
    call_log,
    call_next_action_default,
    callbacks_done,
    creditor_notes_mark_read,
    hold_place,
    letter_log,
)
from openar.identity.models import User
from openar.notifications.models import Channel, MessageTemplate
from openar.reminders.models import DunningPolicy
from openar.tenants.access import access_of, actor_of, require, staff_required
from openar.tenants.models import Creditor, Organization
from openar.tenants.permissions import Perm

collector_required = require(Perm.DESK_COLLECT)

PAGE_SIZE = 50
BULK_LIMIT = 200  # rows one bulk action may touch (a page is 50)
WHO_CHOICES = (("me", "Mine"), ("unassigned", "Unassigned"), ("all", "Everyone's"))
OUTCOME_BUTTONS = [(value, label) for value, label in Activity.Outcome.choices]


def _organization(request: HttpRequest) -> Organization:
    organization: Organization = request.organization  # type: ignore[attr-defined]
    return organization


def _can(request: HttpRequest, perm: Perm) -> bool:
    access = access_of(request)
    return access is not None and access.can(perm)


def _next(request: HttpRequest, default: str) -> str:
    """The desk page to go back to (``next``), else ``default``: never another site."""
    target = str(request.POST.get("next") or request.GET.get("next") or "")
    if target.startswith("/desk/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _customer_url(customer: Customer) -> str:
    return reverse("desk:customer", args=[customer.pk])


# --- the worklist --------------------------------------------------------------------------------


def _int(value: str | None) -> int | None:
    """An id from the request: ASCII digits only ("²" or "١" are not ids), else None."""
    return int(value) if value and re.fullmatch(r"[0-9]{1,18}", value) else None


def _filters(request: HttpRequest, user: User | None) -> tuple[selectors.WorklistFilter, dict[str, str]]:
    """The worklist's filters from the query string; unknown values fall back to defaults."""
    who = request.GET.get("who") or "me"
    collector_id: int | None = None
    unassigned = False
    if who == "me":
        collector_id = user.pk if user is not None else None
        unassigned = user is None
    elif who == "unassigned":
        unassigned = True
    elif who != "all":
        collector_id = _int(who)
        if collector_id is None:
            who, collector_id = "me", user.pk if user is not None else None
    creditor_id = _int(request.GET.get("creditor"))
    segment_value = request.GET.get("segment")
    segment = None if segment_value in (None, "*") else str(segment_value)[:40]
    reason = request.GET.get("reason") or ""
    if reason not in selectors.REASON_KEYS:
        reason = ""
    chosen = {
        "who": who,
        "creditor": str(creditor_id or ""),
        "segment": "*" if segment is None else segment,
        "reason": reason,
    }
    return (
        selectors.WorklistFilter(
            collector_id=collector_id,
            unassigned=unassigned,
            creditor_id=creditor_id,
            segment=segment,
            reason=reason,
        ),
        chosen,
    )


def _choices(organization: Organization) -> dict[str, Any]:
    creditors = list(Creditor.objects.order_by("name", "pk"))
    segments = sorted(
        {s for s in DunningPolicy.objects.values_list("segment", flat=True) if s}
        | {s for s in Customer.objects.exclude(segment="").values_list("segment", flat=True).distinct()[:50]}
    )
    return {
        "collectors": assignable_collectors(organization),
        "creditors": creditors if len(creditors) > 1 else [],
        "segments": segments,
        "reasons": selectors.REASONS,
        "who_choices": WHO_CHOICES,
    }


def letter_templates() -> list[MessageTemplate]:
    return list(MessageTemplate.objects.filter(channel=Channel.LETTER).order_by("name", "language", "pk"))


@require_safe
@staff_required
def worklist(request: HttpRequest) -> HttpResponse:
    """The accounts to work now, best first, with the reasons of each score."""
    organization = _organization(request)
    user = actor_of(request)
    today = organization.today()
    now = timezone.now()
    filters, chosen = _filters(request, user)
    page = Paginator(selectors.worklist(today=today, now=now, filters=filters), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = [selectors.worklist_row(customer, today) for customer in page.object_list]
    choices = _choices(organization)
    return render(
        request,
        "desk/worklist.html",
        {
            "rows": rows,
            "page": page,
            "chosen": chosen,
            "on_hold": selectors.on_hold_count(now=now, filters=filters),
            "held": selectors.on_hold_accounts(now=now, filters=filters) if request.GET.get("held") else None,
            "callbacks_due": selectors.callbacks(today=today, now=now, filters=filters).due_count,
            "today": today,
            "outcomes": OUTCOME_BUTTONS,
            "letter_templates": letter_templates(),
            "can_collect": _can(request, Perm.DESK_COLLECT),
            "can_assign_anyone": _can(request, Perm.DESK_ADMIN),
            "here": request.get_full_path(),
            "nav": "worklist",
            "tab": "worklist",
            **choices,
        },
    )


@require_safe
@staff_required
def callbacks(request: HttpRequest) -> HttpResponse:
    """Callbacks due today, overdue and upcoming, for the same people as the worklist."""
    organization = _organization(request)
    today = organization.today()
    filters, chosen = _filters(request, actor_of(request))
    found = selectors.callbacks(today=today, now=timezone.now(), filters=filters)
    return render(
        request,
        "desk/worklist_callbacks.html",
        {
            "sections": [
                ("overdue", "Overdue", found.overdue, "No overdue callbacks."),
                ("today", "Due today", found.today, "No callbacks due today."),
                ("upcoming", "Upcoming (30 days)", found.upcoming, "Nothing planned."),
            ],
            "callbacks_due": found.due_count,
            "chosen": chosen,
            "today": today,
            "can_collect": _can(request, Perm.DESK_COLLECT),
            "here": request.get_full_path(),
            "nav": "worklist",
            "tab": "callbacks",
            **_choices(organization),
        },
    )


@require_POST
@collector_required
def callback_done(request: HttpRequest, task_id: int) -> HttpResponse:
    task = get_object_or_404(Task.objects.select_related("customer"), pk=task_id, kind=Task.Kind.CALLBACK)
    if callbacks_done(task_ids=[task.pk], actor=actor_of(request)):
        messages.success(request, f"Callback done: {task.customer.name}.")
    else:
        messages.info(request, "That callback was already done.")
    return HttpResponseRedirect(_next(request, reverse("desk:worklist_callbacks")))


# --- logging a call or a letter -------------------------------------------------------------------


class CallForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=Activity.Outcome.choices, error_messages={"required": "Choose how the call ended."}
    )
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)
    next_action_date = forms.DateField(
        required=False, error_messages={"invalid": "Enter a date, e.g. 2026-12-31."}
    )
    no_callback = forms.BooleanField(required=False)


class LetterForm(forms.Form):
    sent_on = forms.DateField(
        error_messages={
            "required": "Enter the date it was sent.",
            "invalid": "Enter a date, e.g. 2026-12-31.",
        }
    )
    template = forms.IntegerField(required=False)
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)


def _form_page(
    request: HttpRequest, template: str, customer: Customer, form: forms.Form, *, status: int = 200
) -> HttpResponse:
    return render(
        request,
        template,
        {
            "customer": customer,
            "form": form,
            "outcomes": OUTCOME_BUTTONS,
            "letter_templates": letter_templates(),
            "today": customer.organization.today(),
            "next": _next(request, ""),
            "nav": "worklist",
        },
        status=status,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@collector_required
def call_new(request: HttpRequest, customer_id: int) -> HttpResponse:
    """Log a call attempt: an outcome button, optionally a note and a next action date (left
    empty: what the outcome suggests; "no callback" for none)."""
    customer = get_object_or_404(Customer.objects.select_related("organization"), pk=customer_id)
    if request.method != "POST":
        return _form_page(request, "desk/worklist_call.html", customer, CallForm())
    form = CallForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        outcome = data["outcome"]
        next_date = data["next_action_date"]
        if next_date is None and not data["no_callback"]:
            next_date = call_next_action_default(outcome, customer.organization.today())
        if data["no_callback"]:
            next_date = None
        try:
            logged = call_log(
                customer=customer,
                outcome=outcome,
                actor=actor_of(request),
                note=data["note"],
                next_action_date=next_date,
            )
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            text = f"Call logged on {customer.name}: {logged.call.get_outcome_display().lower()}"
            if logged.callback is not None:
                text += f"; callback on {logged.callback.due_date:%a %d %b %Y}"
            messages.success(request, text + ".")
            if outcome == Activity.Outcome.PROMISED:
                messages.info(request, "Record the promise the customer made:")
                return HttpResponseRedirect(reverse("desk:promise_new", args=[customer.pk]))
            return HttpResponseRedirect(_next(request, _customer_url(customer)))
    return _form_page(request, "desk/worklist_call.html", customer, form, status=400)


@require_http_methods(["GET", "HEAD", "POST"])
@collector_required
def letter_new(request: HttpRequest, customer_id: int) -> HttpResponse:
    """Log a letter sent by post: its date and, optionally, which letter template it was."""
    customer = get_object_or_404(Customer.objects.select_related("organization"), pk=customer_id)
    if request.method != "POST":
        form = LetterForm(initial={"sent_on": customer.organization.today()})
        return _form_page(request, "desk/worklist_letter.html", customer, form)
    form = LetterForm(request.POST)
    if form.is_valid():
        name = _template_name(form)
        if name is not None:
            try:
                letter_log(
                    customer=customer,
                    actor=actor_of(request),
                    sent_on=form.cleaned_data["sent_on"],
                    template_name=name,
                    note=form.cleaned_data["note"],
                )
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, f"Letter logged on {customer.name}.")
                return HttpResponseRedirect(_next(request, _customer_url(customer)))
    return _form_page(request, "desk/worklist_letter.html", customer, form, status=400)


def _template_name(form: LetterForm) -> str | None:
    """The chosen letter template's name ("" for none); None (and a form error) when the
    id is not one of the organization's letter templates."""
    template_id = form.cleaned_data.get("template")
    if template_id is None:
        return ""
    template = MessageTemplate.objects.filter(pk=template_id, channel=Channel.LETTER).first()
    if template is None:
        form.add_error("template", "Choose one of the letter templates.")
        return None
    return template.name


# --- assignment, creditor notes --------------------------------------------------------------------


def _may_assign(request: HttpRequest, value: str) -> bool:
    """Collectors take accounts for themselves ("me"); administrators give them to anyone,
    or to nobody ("")."""
    me = actor_of(request)
    return value == "me" or (me is not None and value == str(me.pk)) or _can(request, Perm.DESK_ADMIN)


def _assign(request: HttpRequest, customer_ids: list[int]) -> int | None:
    """Assign the accounts to the collector posted (``collector``: "me", a user id, "" for
    nobody); the outcome is flashed. None when refused (nothing changed)."""
    value = str(request.POST.get("collector", "me")).strip()
    if not _may_assign(request, value):
        messages.error(
            request, "You can take accounts for yourself; an administrator assigns them to others."
        )
        return None
    me = actor_of(request)
    collector: User | None
    if value == "me":
        collector = me
    elif value == "":
        collector = None
    else:
        collector_id = _int(value)
        found = {user.pk: user for user in assignable_collectors(_organization(request))}
        if collector_id is None or collector_id not in found:
            messages.error(request, "Choose one of the collectors.")
            return None
        collector = found[collector_id]
    try:
        changed = accounts_assign(
            organization=_organization(request),
            customer_ids=customer_ids,
            collector=collector,
            actor=me,
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return None
    who = (collector.get_full_name() or collector.email) if collector is not None else "nobody"
    if changed:
        messages.success(request, f"{changed} account{'s' if changed != 1 else ''} assigned to {who}.")
    else:
        messages.info(request, f"Already assigned to {who}: nothing changed.")
    return changed


@require_POST
@collector_required
def customer_assign(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    if not _may_assign(request, str(request.POST.get("collector", "me")).strip()):
        return render(request, "errors/no_access.html", {"door": "assigning accounts to others"}, status=403)
    _assign(request, [customer.pk])
    return HttpResponseRedirect(_next(request, _customer_url(customer)))


@require_POST
@collector_required
def creditor_notes_read(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer.objects.select_related("organization"), pk=customer_id)
    read = creditor_notes_mark_read(customer=customer, actor=actor_of(request))
    if read:
        messages.success(request, f"{read} creditor note{'s' if read != 1 else ''} marked read.")
    return HttpResponseRedirect(_next(request, _customer_url(customer)))


def creditor_notes_on_open(request: HttpRequest, customer: Customer) -> list[Activity]:
    """For the customer page: the creditor client's notes a collector had not read yet. A
    collector opening the page reads them (they leave the worklist); anyone else (a
    manager) only sees them."""
    unread = list(
        Activity.objects.filter(customer=customer, staff_unread=True)
        .select_related("actor")
        .order_by("occurred_at", "pk")
    )
    if unread and _can(request, Perm.DESK_COLLECT):
        creditor_notes_mark_read(customer=customer, actor=actor_of(request))
    return unread


# --- bulk actions ------------------------------------------------------------------------------------

BULK_ACTIONS = {
    "assign": "Assign",
    "letter": "Log a letter",
    "hold": "Put on hold",
    "callbacks_done": "Mark callbacks done",
}


def _until(value: str, organization: Organization) -> datetime.datetime | None:
    """The end of a hold chosen as a date: the whole day, in the organization's time zone."""
    day = datetime.date.fromisoformat(value)
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=organization.tz) + datetime.timedelta(
        days=1
    )


@require_POST
@collector_required
def bulk(request: HttpRequest) -> HttpResponse:
    """One action on the selected accounts: assign, log a letter, place a hold, mark their
    callbacks done. Ids of another organization are simply not found (nothing happens to
    them); a refused action changes nothing."""
    organization = _organization(request)
    back = _next(request, reverse("desk:worklist"))
    action = str(request.POST.get("action", ""))
    ids = sorted({i for i in (_int(v) for v in request.POST.getlist("customers")) if i is not None})
    if action not in BULK_ACTIONS:
        messages.error(request, "Choose what to do with the selected accounts.")
        return HttpResponseRedirect(back)
    if not ids:
        messages.error(request, "Select at least one account.")
        return HttpResponseRedirect(back)
    if len(ids) > BULK_LIMIT:
        messages.error(request, f"Select at most {BULK_LIMIT} accounts at a time.")
        return HttpResponseRedirect(back)
    customers = list(Customer.objects.filter(pk__in=ids).select_related("organization").order_by("pk"))
    if not customers:
        messages.error(request, "None of the selected accounts was found.")
        return HttpResponseRedirect(back)
    actor = actor_of(request)
    if action == "assign":
        _assign(request, [c.pk for c in customers])
    elif action == "letter":
        _bulk_letter(request, customers, actor)
    elif action == "hold":
        _bulk_hold(request, customers, actor, organization)
    else:
        done = callbacks_done(
            task_ids=list(
                Task.objects.filter(
                    customer__in=customers, kind=Task.Kind.CALLBACK, done_at__isnull=True
                ).values_list("pk", flat=True)
            ),
            actor=actor,
        )
        messages.success(request, f"{done} callback{'s' if done != 1 else ''} marked done.")
    return HttpResponseRedirect(back)


def _bulk_letter(request: HttpRequest, customers: list[Customer], actor: User | None) -> None:
    form = LetterForm(request.POST)
    name = _template_name(form) if form.is_valid() else None
    if not form.is_valid() or name is None:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return
    try:
        with transaction.atomic():  # all the letters or none
            for customer in customers:
                letter_log(
                    customer=customer,
                    actor=actor,
                    sent_on=form.cleaned_data["sent_on"],
                    template_name=name,
                    note=form.cleaned_data["note"],
                )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return
    n = len(customers)
    messages.success(request, f"Letter logged on {n} account{'s' if n != 1 else ''}.")


def _bulk_hold(
    request: HttpRequest, customers: list[Customer], actor: User | None, organization: Organization
) -> None:
    until = str(request.POST.get("until", "")).strip()
    try:
        expires_at = _until(until, organization) if until else None
    except (ValueError, OverflowError):
        messages.error(request, "Enter the end date as a date, e.g. 2026-12-31.")
        return
    try:
        with transaction.atomic():  # every hold or none
            for customer in customers:
                hold_place(
                    customer=customer,
                    reason=str(request.POST.get("reason", "")),
                    actor=actor,
                    expires_at=expires_at,
                )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return
    n = len(customers)
    messages.success(request, f"{n} account{'s' if n != 1 else ''} on hold: off the worklist, no reminders.")


def open_callbacks(customer: Customer) -> list[Task]:
    return list(
        Task.objects.filter(customer=customer, kind=Task.Kind.CALLBACK, done_at__isnull=True)
        .select_related("assigned_to")
        .order_by("due_date", "pk")
    )
