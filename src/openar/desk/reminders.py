"""Desk pages where admins shape reminders: the dunning policies and their steps, the
message templates (with a live preview on a real customer's data) and the reminder
settings (quiet hours, the frequency cap, the pause switch).

Everyone with ``desk.view`` may read the overview and the templates (collectors answer
customers who quote them); only ``desk.admin`` changes anything. Objects are looked up
through the tenant-scoped default managers, so another organization's id is a 404. The
services in ``openar.reminders.services`` validate, write and audit.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST

from openar.core.errors import ServiceError
from openar.customers.models import LANGUAGES, Customer
from openar.desk.forms import (
    PolicyCreateForm,
    PolicyForm,
    ReminderSettingsForm,
    StepForm,
    TemplateCreateForm,
    TemplateForm,
    TemplatePreviewForm,
)
from openar.notifications.models import Channel, MessageTemplate
from openar.notifications.rendering import VARIABLES, template_errors
from openar.notifications.rendering import render as render_message
from openar.notifications.services import Draft
from openar.reminders.engine import settings_of
from openar.reminders.models import DunningPolicy, DunningStep
from openar.reminders.services import (
    TemplateInvalid,
    offset_label,
    policy_create,
    policy_update,
    settings_update,
    step_add,
    step_remove,
    step_update,
    template_create,
    template_update,
)
from openar.tenants.access import Access, actor_of, require, staff_required
from openar.tenants.models import Organization
from openar.tenants.permissions import Perm

logger = logging.getLogger(__name__)

admin_required = require(Perm.DESK_ADMIN)
PREVIEW_CUSTOMERS = 100  # the select lists the customers with the most past-due invoices first
LANGUAGE_NAMES = dict(LANGUAGES)
NAV = "reminders"


def _access(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


def _organization(request: HttpRequest) -> Organization:
    return _access(request).organization


def _apply(form: Any, exc: ServiceError) -> None:
    """Show a service's refusal next to the field it is about (else above the form)."""
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


# --- what the pages say about steps and templates ----------------------------------------------


def _template_names() -> dict[tuple[str, str], str]:
    """(key, channel) → the name staff know it by (the English one when there is one)."""
    names: dict[tuple[str, str], str] = {}
    for key, channel, language, name in MessageTemplate.objects.order_by("key", "channel", "pk").values_list(
        "key", "channel", "language", "name"
    ):
        if (key, channel) not in names or language == "en":
            names[(key, channel)] = name
    return names


def _step_row(step: DunningStep, names: dict[tuple[str, str], str]) -> dict[str, Any]:
    template_name = names.get((step.template_key, step.channel))
    parts = [offset_label(step.offset_days), step.get_channel_display(), template_name or step.template_key]
    parts.append(step.get_tone_display().lower())
    return {
        "step": step,
        "summary": " · ".join(parts),
        "template_missing": template_name is None,
        "statement": step.attach_statement and step.channel == Channel.EMAIL,
    }


def _template_choices(names: dict[tuple[str, str], str]) -> list[tuple[str, str]]:
    by_key: dict[str, list[str]] = defaultdict(list)
    labels: dict[str, str] = {}
    for (key, channel), name in names.items():
        by_key[key].append(Channel(channel).label)
        labels.setdefault(key, name)
    return [(key, f"{labels[key]} ({key}; {', '.join(by_key[key])})") for key in sorted(by_key)]


def _segments() -> list[str]:
    return sorted(
        segment
        for segment in Customer.objects.exclude(segment="").values_list("segment", flat=True).distinct()
        if segment
    )


# --- the overview -------------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD"])
@staff_required
def overview(request: HttpRequest) -> HttpResponse:
    organization = _organization(request)
    names = _template_names()
    customers_by_segment = dict(
        Customer.objects.values_list("segment").annotate(n=Count("pk")).values_list("segment", "n")
    )
    active = list(DunningPolicy.objects.filter(is_active=True))
    policies = [
        {
            "policy": policy,
            "steps": [_step_row(step, names) for step in policy.steps.all()],
            "customers": customers_by_segment.get(policy.segment, 0),
        }
        for policy in DunningPolicy.objects.prefetch_related("steps").order_by(
            "-is_active", "segment", "name", "pk"
        )
    ]
    groups: dict[str, list[MessageTemplate]] = defaultdict(list)
    for template in MessageTemplate.objects.order_by("key", "channel", "language", "pk"):
        groups[template.key].append(template)
    used = set(DunningStep.objects.values_list("template_key", flat=True))
    templates = [
        {
            "key": key,
            "name": next((t.name for t in variants if t.language == "en"), variants[0].name),
            "variants": [
                {
                    "template": t,
                    "label": f"{t.get_channel_display()} · {LANGUAGE_NAMES.get(t.language, t.language)}",
                }
                for t in variants
            ],
            "used": key in used,
        }
        for key, variants in groups.items()
    ]
    return render(
        request,
        "desk/reminders/overview.html",
        {
            "policies": policies,
            "has_default": any(not policy.segment for policy in active),
            "settings": settings_of(organization),
            "templates": templates,
            "can_edit": _access(request).can(Perm.DESK_ADMIN),
            "nav": NAV,
        },
    )


# --- settings -----------------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@admin_required
def settings_edit(request: HttpRequest) -> HttpResponse:
    current = settings_of(_organization(request))
    initial = {
        "quiet_start": current.quiet_start,
        "quiet_end": current.quiet_end,
        "min_days_between": current.min_days_between,
        "is_paused": current.is_paused,
    }
    form = ReminderSettingsForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            settings_update(settings=current, actor=actor_of(request), **form.cleaned_data)
        except ServiceError as exc:
            _apply(form, exc)
        else:
            messages.success(request, "Reminder settings saved.")
            return HttpResponseRedirect(reverse("desk:reminders"))
    return render(
        request,
        "desk/reminders/settings.html",
        {"form": form, "nav": NAV},
        status=400 if form.errors else 200,
    )


# --- policies and steps -------------------------------------------------------------------------


def _policy_page(
    request: HttpRequest,
    policy: DunningPolicy,
    *,
    form: PolicyForm | None = None,
    step_form: StepForm | None = None,
    status: int = 200,
) -> HttpResponse:
    names = _template_names()
    segments = _segments()
    if form is None:
        form = PolicyForm(
            initial={"name": policy.name, "segment": policy.segment, "is_active": policy.is_active},
            segments=segments,
        )
    if step_form is None:
        step_form = StepForm(templates=_template_choices(names), auto_id="id_step_%s")
    return render(
        request,
        "desk/reminders/policy.html",
        {
            "policy": policy,
            "form": form,
            "step_form": step_form,
            "steps": [_step_row(step, names) for step in policy.steps.all()],
            "segments": segments,
            "nav": NAV,
        },
        status=status,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@admin_required
def policy_new(request: HttpRequest) -> HttpResponse:
    policies = [(p.pk, p.name) for p in DunningPolicy.objects.order_by("-is_active", "segment", "name")]
    segments = _segments()
    default = next(iter(policies), (None, ""))[0]
    form = PolicyCreateForm(
        request.POST if request.method == "POST" else None,
        initial={"copy_steps_from": default, "is_active": True},
        policies=policies,
        segments=segments,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        source = data["copy_steps_from"]
        try:
            policy = policy_create(
                organization=_organization(request),
                name=data["name"],
                segment=data["segment"],
                is_active=data["is_active"],
                copy_steps_from=get_object_or_404(DunningPolicy, pk=source) if source else None,
                actor=actor_of(request),
            )
        except ServiceError as exc:
            _apply(form, exc)
        else:
            messages.success(request, f"Policy “{policy.name}” created.")
            return HttpResponseRedirect(reverse("desk:reminder_policy", args=[policy.pk]))
    return render(
        request,
        "desk/reminders/policy_new.html",
        {"form": form, "segments": segments, "nav": NAV},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@admin_required
def policy_edit(request: HttpRequest, policy_id: int) -> HttpResponse:
    policy = get_object_or_404(DunningPolicy, pk=policy_id)
    if request.method != "POST":
        return _policy_page(request, policy)
    form = PolicyForm(request.POST, segments=_segments())
    if form.is_valid():
        try:
            policy_update(policy=policy, actor=actor_of(request), **form.cleaned_data)
        except ServiceError as exc:
            _apply(form, exc)
        else:
            messages.success(request, "Policy saved.")
            return HttpResponseRedirect(reverse("desk:reminder_policy", args=[policy.pk]))
    return _policy_page(request, policy, form=form, status=400)


@require_POST
@admin_required
def step_new(request: HttpRequest, policy_id: int) -> HttpResponse:
    policy = get_object_or_404(DunningPolicy, pk=policy_id)
    form = StepForm(request.POST, templates=_template_choices(_template_names()), auto_id="id_step_%s")
    if form.is_valid():
        try:
            step = step_add(policy=policy, actor=actor_of(request), **form.cleaned_data)
        except ServiceError as exc:
            _apply(form, exc)
        else:
            messages.success(request, f"Step added: {_step_row(step, _template_names())['summary']}.")
            return HttpResponseRedirect(reverse("desk:reminder_policy", args=[policy.pk]))
    return _policy_page(request, policy, step_form=form, status=400)


def _step(step_id: int) -> DunningStep:
    return get_object_or_404(DunningStep.objects.select_related("policy"), pk=step_id)


@require_http_methods(["GET", "HEAD", "POST"])
@admin_required
def step_edit(request: HttpRequest, step_id: int) -> HttpResponse:
    step = _step(step_id)
    names = _template_names()
    initial = {
        "offset_days": step.offset_days,
        "channel": step.channel,
        "template_key": step.template_key,
        "tone": step.tone,
        "attach_statement": step.attach_statement,
    }
    form = StepForm(
        request.POST if request.method == "POST" else None,
        initial=initial,
        templates=_template_choices(names),
    )
    if request.method == "POST" and form.is_valid():
        try:
            step_update(step=step, actor=actor_of(request), **form.cleaned_data)
        except ServiceError as exc:
            _apply(form, exc)
        else:
            messages.success(request, "Step saved.")
            return HttpResponseRedirect(reverse("desk:reminder_policy", args=[step.policy_id]))
    return render(
        request,
        "desk/reminders/step.html",
        {"step": step, "row": _step_row(step, names), "form": form, "nav": NAV},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@admin_required
def step_delete(request: HttpRequest, step_id: int) -> HttpResponse:
    """GET asks to confirm (a link from the overview must never remove anything by itself)."""
    step = _step(step_id)
    row = _step_row(step, _template_names())
    if request.method == "POST":
        step_remove(step=step, actor=actor_of(request))
        messages.success(request, f"Step removed from “{step.policy.name}”: {row['summary']}.")
        return HttpResponseRedirect(reverse("desk:reminder_policy", args=[step.policy_id]))
    return render(request, "desk/reminders/step_remove.html", {"step": step, "row": row, "nav": NAV})


# --- templates ----------------------------------------------------------------------------------


def _preview_customers(organization: Organization) -> list[Customer]:
    """The customers offered for the preview, those with the most past-due invoices first:
    a template is best checked on an account it will actually be sent to."""
    today = organization.today()
    return list(
        Customer.objects.annotate(
            late=Count("invoices", filter=Q(invoices__open_amount__gt=0, invoices__due_date__lt=today))
        ).order_by("-late", "name", "pk")[:PREVIEW_CUSTOMERS]
    )


def _customer_label(customer: Customer) -> str:
    late = getattr(customer, "late", 0)
    suffix = f" · {late} past due" if late else ""
    return f"{customer.name} ({customer.number}){suffix}"


def _preview_step(template: MessageTemplate) -> DunningStep | None:
    """A step that sends this template: its lead time decides which invoices are listed."""
    return (
        DunningStep.objects.select_related("policy")
        .filter(template_key=template.key, channel=template.channel)
        .order_by("-policy__is_active", "offset_days", "pk")
        .first()
    )


def _preview(
    template: MessageTemplate, subject: str, body: str, customer: Customer, step: DunningStep | None
) -> Draft:
    """The submitted text rendered with the customer's real figures, as the engine would
    render it (nothing is stored: the links are examples, no sign-in link is created)."""
    from openar.reminders.context import reminder_context  # the engine's own context builder

    contact = customer.contacts.order_by("-is_primary", "pk").first()
    unsubscribe = (
        f"{settings.SITE_URL}/u/example-unsubscribe-link/" if template.channel == Channel.EMAIL else ""
    )
    context = reminder_context(
        customer,
        contact,
        customer.organization.today(),
        template.language,
        step.offset_days if step else 0,
        f"{settings.SITE_URL}/l/example-sign-in-link/",
        unsubscribe,
        bool(step and step.attach_statement and template.channel == Channel.EMAIL),
    )
    context.pop("_invoice_ids", None)
    return render_message(subject, body, context)


def _template_form(template: MessageTemplate, data: Any = None) -> TemplateForm:
    return TemplateForm(
        data,
        channel=template.channel,
        initial={"name": template.name, "subject": template.subject, "body": template.body},
    )


@require_http_methods(["GET", "HEAD", "POST"])
@staff_required
def template_edit(request: HttpRequest, template_id: int) -> HttpResponseBase:
    """Read (everyone at the desk), preview (the text as submitted, never saved) and save
    (admins). The preview and the save post the same form: "Preview" is how an admin checks
    an edit before customers get it."""
    template = get_object_or_404(MessageTemplate, pk=template_id)
    if request.method == "POST" and request.POST.get("action") == "save":
        return admin_required(_template_save)(request, template)
    return _template_page(request, template, request.POST if request.method == "POST" else None)


def _template_save(request: HttpRequest, template: MessageTemplate) -> HttpResponse:
    form = _template_form(template, request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            template_update(
                template=template,
                name=data["name"],
                subject=data.get("subject", ""),
                body=data["body"],
                actor=actor_of(request),
            )
        except TemplateInvalid as exc:
            for problem in exc.problems:
                form.add_error(problem.part if problem.part in form.fields else "body", str(problem))
        except ServiceError as exc:
            _apply(form, exc)
        else:
            messages.success(request, f"“{form.cleaned_data['name']}” saved.")
            url = reverse("desk:reminder_template", args=[template.pk])
            customer = request.POST.get("customer", "")
            return HttpResponseRedirect(f"{url}?{urlencode({'customer': customer})}" if customer else url)
    return _template_page(request, template, request.POST, form=form)


def _template_page(
    request: HttpRequest, template: MessageTemplate, data: Any, *, form: TemplateForm | None = None
) -> HttpResponse:
    organization = _organization(request)
    can_edit = _access(request).can(Perm.DESK_ADMIN)
    if form is None:
        form = _template_form(template, data)
    if not can_edit:
        for field in form.fields.values():
            field.widget.attrs["readonly"] = True

    candidates = _preview_customers(organization)
    wanted = (data or request.GET).get("customer", "")
    customer: Customer | None = None
    if wanted.isdecimal():
        customer = get_object_or_404(Customer, pk=int(wanted))
        if customer.pk not in {c.pk for c in candidates}:
            candidates.append(customer)
    elif candidates:
        customer = candidates[0]
    chooser = TemplatePreviewForm(initial={"customer": customer.pk if customer else None})
    chooser_field: Any = chooser.fields["customer"]
    chooser_field.choices = [(c.pk, _customer_label(c)) for c in candidates]

    # What is previewed: the submitted text when it is valid (its problems are listed next to
    # the fields otherwise, and nothing is previewed); on a plain GET, the stored text.
    subject, body, text_ok = template.subject, template.body, not form.is_bound
    if form.is_bound and form.is_valid():
        subject, body = form.cleaned_data.get("subject", ""), form.cleaned_data["body"]
        for problem in template_errors(subject, body):
            form.add_error(problem.part if problem.part in form.fields else "body", str(problem))
        text_ok = not form.errors
    step = _preview_step(template)
    preview: Draft | None = None
    preview_error = ""
    if customer is not None and text_ok:
        try:
            preview = _preview(template, subject, body, customer, step)
        except Exception:  # a text that passed the checks may still fail on odd data (a filter)
            logger.exception("preview of template %s failed", template.pk)
            preview_error = "This text could not be rendered for this customer; check the filters it uses."

    siblings = list(MessageTemplate.objects.filter(key=template.key).order_by("channel", "language", "pk"))
    variants = [
        {"template": t, "label": f"{t.get_channel_display()} · {LANGUAGE_NAMES.get(t.language, t.language)}"}
        for t in siblings
    ]
    languages = {t.language for t in siblings if t.channel == template.channel}
    return render(
        request,
        "desk/reminders/template.html",
        {
            "template": template,
            "language": LANGUAGE_NAMES.get(template.language, template.language),
            "form": form,
            "chooser": chooser,
            "customer": customer,
            "preview": preview,
            "preview_error": preview_error,
            "preview_step": step,
            "preview_step_label": offset_label(step.offset_days) if step else "",
            "variables": list(VARIABLES.items()),
            "variants": variants,
            "can_edit": can_edit,
            "missing_languages": [name for code, name in LANGUAGES if code not in languages],
            "nav": NAV,
        },
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@admin_required
def template_new(request: HttpRequest) -> HttpResponse:
    """A new template; ``?from=<id>`` starts from a copy (to translate it, say)."""
    initial: dict[str, Any] = {}
    source_id = request.GET.get("from", "")
    if source_id.isdecimal():
        source = get_object_or_404(MessageTemplate, pk=int(source_id))
        have = set(
            MessageTemplate.objects.filter(key=source.key, channel=source.channel).values_list(
                "language", flat=True
            )
        )
        initial = {
            "key": source.key,
            "channel": source.channel,
            "language": next((code for code, _ in LANGUAGES if code not in have), source.language),
            "name": source.name,
            "subject": source.subject,
            "body": source.body,
        }
    form = TemplateCreateForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            template = template_create(organization=_organization(request), actor=actor_of(request), **data)
        except TemplateInvalid as exc:
            for problem in exc.problems:
                form.add_error(problem.part, str(problem))
        except ServiceError as exc:
            _apply(form, exc)
        else:
            messages.success(request, f"“{template.name}” created.")
            return HttpResponseRedirect(reverse("desk:reminder_template", args=[template.pk]))
    return render(
        request,
        "desk/reminders/template_new.html",
        {"form": form, "variables": list(VARIABLES.items()), "nav": NAV},
        status=400 if form.errors else 200,
    )
