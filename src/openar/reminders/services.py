"""What admins change about reminders: the message templates, the dunning policies and their
steps, and the organization's reminder settings.

Each service validates everything before it writes (so the desk can show every problem at
once), then writes and audits in one transaction: a change is never stored without its audit
event, nor audited without being stored. Refusals are ``ServiceError``s whose message is
safe to show to the admin who asked; a template's problems come as ``TemplateInvalid`` with
each problem and its line number.

Audit events say *what* changed, never the full text of a template: the log is read in
security reviews, and a template body is long and not a security fact.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction

from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.customers.models import LANGUAGES
from openar.identity.models import User
from openar.notifications.models import Channel, Message, MessageTemplate
from openar.notifications.rendering import TemplateProblem, template_errors
from openar.reminders.models import DunningPolicy, DunningStep, ReminderSettings
from openar.tenants.models import Organization

OFFSET_MIN, OFFSET_MAX = -60, 365
MIN_DAYS_BETWEEN_MAX = 30
SUBJECT_MAX = 300  # MessageTemplate.subject
LANGUAGE_CODES = tuple(code for code, _ in LANGUAGES)
A_MESSAGE_BY: dict[str, str] = {
    Channel.EMAIL: "an email",
    Channel.SMS: "an SMS",
    Channel.LETTER: "a letter",
    Channel.PORTAL: "a portal message",
}
# Channels whose messages have a subject line (an SMS or a portal message has none).
SUBJECT_CHANNELS = (Channel.EMAIL, Channel.LETTER)


class TemplateInvalid(ServiceError):
    """A template whose text would fail at send time; ``problems`` lists each with its line."""

    def __init__(self, problems: list[TemplateProblem]) -> None:
        first = problems[0]
        super().__init__(str(first), field=first.part, code="template_invalid")
        self.problems = problems


# --- describing steps (the desk and the audit log say them the same way) -----------------------


def offset_label(offset_days: int) -> str:
    """``-3`` → "3 days before due", ``0`` → "On the due date", ``1`` → "1 day after due"."""
    if offset_days == 0:
        return "On the due date"
    days = abs(offset_days)
    unit = "day" if days == 1 else "days"
    return f"{days} {unit} {'before' if offset_days < 0 else 'after'} due"


def step_summary(step: DunningStep) -> str:
    return (
        f"{offset_label(step.offset_days)} · {step.get_channel_display()} · {step.template_key}"
        f" · {step.get_tone_display().lower()}"
    )


# --- templates ----------------------------------------------------------------------------------


def _text_problems(channel: str, subject: str, body: str) -> list[TemplateProblem]:
    problems: list[TemplateProblem] = []
    if channel == Channel.EMAIL and not subject.strip():
        problems.append(TemplateProblem("subject", 1, "An email needs a subject."))
    if len(subject) > SUBJECT_MAX:
        problems.append(TemplateProblem("subject", 1, "The subject is too long (300 characters at most)."))
    if not body.strip():
        problems.append(TemplateProblem("body", 1, "The message cannot be empty."))
    return problems + template_errors(subject, body)


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ServiceError("Give the template a name staff will recognize.", field="name")
    if len(name) > 120:
        raise ServiceError("The name is too long (120 characters at most).", field="name")
    return name


def template_update(
    *, template: MessageTemplate, subject: str, body: str, name: str, actor: User | None
) -> MessageTemplate:
    """Save new text for ``template`` once it is valid; audit which fields changed."""
    name = _clean_name(name)
    if template.channel not in SUBJECT_CHANNELS:
        subject = ""  # never sent: keeping a stale one would only confuse the next editor
    problems = _text_problems(template.channel, subject, body)
    if problems:
        raise TemplateInvalid(problems)
    with transaction.atomic():
        current = MessageTemplate.objects.select_for_update().get(pk=template.pk)
        changed = [
            field
            for field, value in (("name", name), ("subject", subject), ("body", body))
            if getattr(current, field) != value
        ]
        if not changed:
            return current
        current.name, current.subject, current.body, current.updated_by = name, subject, body, actor
        current.save(update_fields=["name", "subject", "body", "updated_by", "updated_at"])
        log_event(
            "openar.template.changed",
            organization=current.organization,
            obj=current,
            actor=actor,
            data={
                "fields": changed,
                "key": current.key,
                "channel": current.channel,
                "language": current.language,
            },
        )
    return current


def template_create(
    *,
    organization: Organization,
    key: str,
    channel: str,
    language: str,
    name: str,
    subject: str,
    body: str,
    actor: User | None,
) -> MessageTemplate:
    """A new template: a language an existing key lacks, or a new key for steps to use."""
    key = key.strip().lower()
    try:
        validate_slug(key)
    except ValidationError as exc:
        raise ServiceError(
            "Use lowercase letters, digits and hyphens for the key (e.g. reminder-gentle).", field="key"
        ) from exc
    if len(key) > 60:
        raise ServiceError("The key is too long (60 characters at most).", field="key")
    if channel not in Channel.values:
        raise ServiceError("Choose a channel.", field="channel")
    if language not in LANGUAGE_CODES:
        raise ServiceError(
            f"Choose one of the languages contacts can have: {', '.join(LANGUAGE_CODES)}.", field="language"
        )
    name = _clean_name(name)
    if channel not in SUBJECT_CHANNELS:
        subject = ""
    problems = _text_problems(channel, subject, body)
    if problems:
        raise TemplateInvalid(problems)
    duplicate = ServiceError(
        f"The {Channel(channel).label.lower()} template “{key}” already exists in "
        f"{dict(LANGUAGES)[language]}: edit that one instead.",
        field="key",
        code="duplicate",
    )
    if MessageTemplate.objects.filter(key=key, channel=channel, language=language).exists():
        raise duplicate
    try:
        with transaction.atomic():
            template = MessageTemplate.objects.create(
                organization=organization,
                key=key,
                channel=channel,
                language=language,
                name=name,
                subject=subject,
                body=body,
                updated_by=actor,
            )
            log_event(
                "openar.template.created",
                organization=organization,
                obj=template,
                actor=actor,
                data={"key": key, "channel": channel, "language": language},
            )
    except IntegrityError as exc:  # created by someone else since the check above
        raise duplicate from exc
    return template


# --- policies -----------------------------------------------------------------------------------


def _policy_fields(name: str, segment: str) -> tuple[str, str]:
    name = name.strip()
    if not name:
        raise ServiceError("Give the policy a name.", field="name")
    if len(name) > 120:
        raise ServiceError("The name is too long (120 characters at most).", field="name")
    segment = segment.strip()
    if len(segment) > 40:
        raise ServiceError("The segment is too long (40 characters at most).", field="segment")
    return name, segment


def _segment_taken(segment: str, *, other_than: int | None = None) -> ServiceError | None:
    others = DunningPolicy.objects.filter(segment=segment, is_active=True)
    if other_than is not None:
        others = others.exclude(pk=other_than)
    taken = others.first()
    if taken is None:
        return None
    which = f"segment “{segment}”" if segment else "customers without a segment"
    return ServiceError(
        f"The active policy “{taken.name}” already covers {which}. Deactivate it first, or choose "
        "another segment.",
        field="segment",
        code="segment_taken",
    )


def policy_create(
    *,
    organization: Organization,
    name: str,
    segment: str,
    is_active: bool,
    actor: User | None,
    copy_steps_from: DunningPolicy | None = None,
) -> DunningPolicy:
    """A policy for a segment (blank: the default). ``copy_steps_from`` starts it with a
    copy of another policy's steps, which is how most segment policies begin."""
    name, segment = _policy_fields(name, segment)
    taken = _segment_taken(segment) if is_active else None
    if taken:
        raise taken
    try:
        with transaction.atomic():
            policy = DunningPolicy.objects.create(
                organization=organization, name=name, segment=segment, is_active=is_active
            )
            copied = 0
            if copy_steps_from is not None:
                steps = DunningStep.objects.bulk_create(
                    DunningStep(
                        organization=organization,
                        policy=policy,
                        offset_days=step.offset_days,
                        channel=step.channel,
                        template_key=step.template_key,
                        tone=step.tone,
                        attach_statement=step.attach_statement,
                    )
                    for step in copy_steps_from.steps.all()
                )
                copied = len(steps)
            log_event(
                "openar.dunning_policy.created",
                organization=organization,
                obj=policy,
                actor=actor,
                data={
                    "name": name,
                    "segment": segment,
                    "is_active": is_active,
                    "steps_copied_from": copy_steps_from.pk if copy_steps_from else None,
                    "steps": copied,
                },
            )
    except IntegrityError as exc:  # another active policy for the segment, created meanwhile
        raise (_segment_taken(segment) or ServiceError("The policy could not be saved.")) from exc
    return policy


def policy_update(
    *, policy: DunningPolicy, name: str, segment: str, is_active: bool, actor: User | None
) -> DunningPolicy:
    name, segment = _policy_fields(name, segment)
    taken = _segment_taken(segment, other_than=policy.pk) if is_active else None
    if taken:
        raise taken
    try:
        with transaction.atomic():
            current = DunningPolicy.objects.select_for_update().get(pk=policy.pk)
            diff = {
                field: [getattr(current, field), value]
                for field, value in (("name", name), ("segment", segment), ("is_active", is_active))
                if getattr(current, field) != value
            }
            if not diff:
                return current
            current.name, current.segment, current.is_active = name, segment, is_active
            current.save(update_fields=["name", "segment", "is_active"])
            log_event(
                "openar.dunning_policy.changed",
                organization=current.organization,
                obj=current,
                actor=actor,
                data=diff,
            )
    except IntegrityError as exc:
        raise (
            _segment_taken(segment, other_than=policy.pk) or ServiceError("The policy could not be saved.")
        ) from exc
    return current


# --- steps --------------------------------------------------------------------------------------


def _step_fields(
    *,
    policy: DunningPolicy,
    offset_days: int,
    channel: str,
    template_key: str,
    tone: str,
    attach_statement: bool,
    other_than: int | None = None,
) -> None:
    """Refuse a step the engine could not send: out-of-range offset, no template written for
    its channel, a statement on a channel that cannot carry it, or a second step on the same
    day and channel (the engine keys reminders by step, so one would shadow the other)."""
    if not OFFSET_MIN <= offset_days <= OFFSET_MAX:
        raise ServiceError(
            f"Choose a day from {-OFFSET_MIN} days before the due date ({OFFSET_MIN}) to {OFFSET_MAX} days "
            "after it.",
            field="offset_days",
        )
    if channel not in Channel.values:
        raise ServiceError("Choose a channel.", field="channel")
    channel_label = Channel(channel).label
    if not MessageTemplate.objects.filter(key=template_key, channel=channel).exists():
        others = sorted(set(MessageTemplate.objects.filter(channel=channel).values_list("key", flat=True)))
        elsewhere = sorted(
            Channel(c).label
            for c in set(MessageTemplate.objects.filter(key=template_key).values_list("channel", flat=True))
        )
        if elsewhere:
            written_for = ", ".join(elsewhere)
            problem = f"The template “{template_key}” is written for {written_for}, not {channel_label}."
        else:
            problem = f"There is no template “{template_key}”."
        hint = (
            f" {channel_label} templates: {', '.join(others)}."
            if others
            else f" Write a {channel_label} template first."
        )
        raise ServiceError(problem + hint, field="template_key", code="unknown_template")
    if tone not in Message.Tone.values:
        raise ServiceError("Choose a tone.", field="tone")
    if attach_statement and channel != Channel.EMAIL:
        raise ServiceError(
            "Only an email can carry the statement; untick it or choose Email.", field="attach_statement"
        )
    twins = DunningStep.objects.filter(policy=policy, offset_days=offset_days, channel=channel)
    if other_than is not None:
        twins = twins.exclude(pk=other_than)
    if twins.exists():
        raise ServiceError(
            f"This policy already sends {A_MESSAGE_BY[channel]} {offset_label(offset_days).lower()}.",
            field="offset_days",
            code="duplicate",
        )


def _step_data(step: DunningStep) -> dict[str, Any]:
    return {
        "policy": step.policy_id,
        "offset_days": step.offset_days,
        "channel": step.channel,
        "template_key": step.template_key,
        "tone": step.tone,
        "attach_statement": step.attach_statement,
    }


STEP_FIELDS = ("offset_days", "channel", "template_key", "tone", "attach_statement")


def step_add(
    *,
    policy: DunningPolicy,
    offset_days: int,
    channel: str,
    template_key: str,
    tone: str,
    attach_statement: bool,
    actor: User | None,
) -> DunningStep:
    values: dict[str, Any] = {
        "offset_days": offset_days,
        "channel": channel,
        "template_key": template_key.strip(),
        "tone": tone,
        "attach_statement": attach_statement,
    }
    _step_fields(policy=policy, **values)
    try:
        with transaction.atomic():
            step = DunningStep.objects.create(organization=policy.organization, policy=policy, **values)
            log_event(
                "openar.dunning_step.added",
                organization=policy.organization,
                obj=step,
                actor=actor,
                data=_step_data(step),
            )
    except IntegrityError as exc:
        raise ServiceError(
            "This policy already has a step on that day and channel.", field="offset_days", code="duplicate"
        ) from exc
    return step


def step_update(
    *,
    step: DunningStep,
    offset_days: int,
    channel: str,
    template_key: str,
    tone: str,
    attach_statement: bool,
    actor: User | None,
) -> DunningStep:
    values: dict[str, Any] = {
        "offset_days": offset_days,
        "channel": channel,
        "template_key": template_key.strip(),
        "tone": tone,
        "attach_statement": attach_statement,
    }
    _step_fields(policy=step.policy, other_than=step.pk, **values)
    try:
        with transaction.atomic():
            current = DunningStep.objects.select_for_update().get(pk=step.pk)
            diff = {
                field: [getattr(current, field), value]
                for field, value in values.items()
                if getattr(current, field) != value
            }
            if not diff:
                return current
            for field, value in values.items():
                setattr(current, field, value)
            current.save(update_fields=list(STEP_FIELDS))
            log_event(
                "openar.dunning_step.changed",
                organization=current.organization,
                obj=current,
                actor=actor,
                data={"policy": current.policy_id, **diff},
            )
    except IntegrityError as exc:
        raise ServiceError(
            "This policy already has a step on that day and channel.", field="offset_days", code="duplicate"
        ) from exc
    return current


def step_remove(*, step: DunningStep, actor: User | None) -> int:
    """Remove the step; returns how many sent reminders it was recorded on.

    Those messages stay in the customers' timelines. They lose their link to the step (and
    their dunning cycle with it: ``Message`` keeps the two together), which only matters to
    the engine, and the engine no longer has the step to plan."""
    with transaction.atomic():
        current = DunningStep.objects.select_for_update().get(pk=step.pk)
        detached = Message.objects.filter(dunning_step=current).update(dunning_step=None, dunning_cycle=None)
        data = {**_step_data(current), "summary": step_summary(current), "messages_detached": detached}
        log_event(
            "openar.dunning_step.removed",
            organization=current.organization,
            obj=current,
            actor=actor,
            data=data,
        )
        current.delete()
    return detached


# --- settings -----------------------------------------------------------------------------------


def settings_update(
    *,
    settings: ReminderSettings,
    quiet_start: datetime.time,
    quiet_end: datetime.time,
    min_days_between: int,
    is_paused: bool,
    actor: User | None,
) -> ReminderSettings:
    """Quiet hours (the same start and end: none), the frequency cap, and the pause switch."""
    if not 0 <= min_days_between <= MIN_DAYS_BETWEEN_MAX:
        raise ServiceError(
            f"Enter a whole number of days from 0 to {MIN_DAYS_BETWEEN_MAX}.", field="min_days_between"
        )
    values: dict[str, Any] = {
        "quiet_start": quiet_start.replace(second=0, microsecond=0),
        "quiet_end": quiet_end.replace(second=0, microsecond=0),
        "min_days_between": min_days_between,
        "is_paused": is_paused,
    }
    with transaction.atomic():
        current = ReminderSettings.objects.select_for_update().get(pk=settings.pk)
        diff = {
            field: [_jsonable(getattr(current, field)), _jsonable(value)]
            for field, value in values.items()
            if getattr(current, field) != value
        }
        if not diff:
            return current
        for field, value in values.items():
            setattr(current, field, value)
        current.save(update_fields=list(values))
        log_event(
            "openar.reminder_settings.changed",
            organization=current.organization,
            obj=current,
            actor=actor,
            data=diff,
        )
    return current


def _jsonable(value: Any) -> Any:
    return value.strftime("%H:%M") if isinstance(value, datetime.time) else value
