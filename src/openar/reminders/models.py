"""Dunning policies: which reminders a customer gets, when, on which channel, in which tone.

A ``DunningPolicy`` is a sequence of ``DunningStep``s, each an offset in days from the due
date of the oldest open invoice (negative: before it is due), a channel, a template key and
a tone. A customer follows the policy of its segment, else the organization's default.
Organization-wide settings (quiet hours, the frequency cap) live on the
``ReminderSettings`` row of each organization.
"""

from __future__ import annotations

import datetime

from django.db import models

from openar.core.models import TenantModel
from openar.notifications.models import Channel, Message


class DunningPolicy(TenantModel):
    name = models.CharField(max_length=120)
    segment = models.CharField(
        max_length=40, blank=True, help_text="Customers of this segment follow it; blank: the default policy."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "segment"],
                condition=models.Q(is_active=True),
                name="dunning_policy_one_per_segment",
            )
        ]
        verbose_name_plural = "dunning policies"

    def __str__(self) -> str:
        return self.name


class DunningStep(TenantModel):
    policy = models.ForeignKey(DunningPolicy, on_delete=models.CASCADE, related_name="steps")
    offset_days = models.SmallIntegerField(help_text="Days after the due date; negative: before it.")
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    template_key = models.SlugField(max_length=60)
    tone = models.CharField(max_length=10, choices=Message.Tone.choices, default=Message.Tone.FRIENDLY)
    attach_statement = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["policy", "offset_days", "channel"], name="dunning_step_unique")
        ]
        ordering = ["offset_days", "channel"]

    def __str__(self) -> str:
        when = f"{abs(self.offset_days)} days {'before' if self.offset_days < 0 else 'after'} due"
        return f"{self.get_channel_display()} {when} ({self.get_tone_display().lower()})"


class ReminderSettings(TenantModel):
    """When reminders may go out, and how often, for one organization."""

    quiet_start = models.TimeField(
        default=datetime.time(20, 0), help_text="No email or SMS from this time (contact's time zone)."
    )
    quiet_end = models.TimeField(default=datetime.time(8, 0), help_text="...until this time.")
    min_days_between = models.PositiveSmallIntegerField(
        default=3, help_text="At most one reminder per customer in this many days."
    )
    is_paused = models.BooleanField(default=False, help_text="Stop planning reminders for everyone.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="reminder_settings_one_per_organization")
        ]
        verbose_name_plural = "reminder settings"

    def __str__(self) -> str:
        return f"reminder settings of {self.organization_id}"
