"""Organizations that existed before reminders get the default templates and policy (new
ones get them when they are created: openar.reminders.signals)."""

from typing import Any

from django.db import migrations


def install(apps: Any, schema_editor: Any) -> None:
    from openar.reminders.defaults import DEFAULT_STEPS, DEFAULT_TEMPLATES

    Organization = apps.get_model("tenants", "Organization")
    MessageTemplate = apps.get_model("notifications", "MessageTemplate")
    DunningPolicy = apps.get_model("reminders", "DunningPolicy")
    DunningStep = apps.get_model("reminders", "DunningStep")
    ReminderSettings = apps.get_model("reminders", "ReminderSettings")
    for organization in Organization.objects.all():
        ReminderSettings.objects.get_or_create(organization=organization)
        for default in DEFAULT_TEMPLATES:
            MessageTemplate.objects.get_or_create(
                organization=organization,
                key=default.key,
                channel=default.channel,
                language=default.language,
                defaults={"name": default.name, "subject": default.subject, "body": default.body},
            )
        if not DunningPolicy.objects.filter(organization=organization).exists():
            policy = DunningPolicy.objects.create(organization=organization, name="Standard reminders")
            for offset, channel, key, tone, statement in DEFAULT_STEPS:
                DunningStep.objects.create(
                    organization=organization,
                    policy=policy,
                    offset_days=offset,
                    channel=channel,
                    template_key=key,
                    tone=tone,
                    attach_statement=statement,
                )


class Migration(migrations.Migration):
    dependencies = [
        ("reminders", "0001_initial"),
        ("notifications", "0002_initial"),
        ("tenants", "0004_securitypolicy_view_as_can_act"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
