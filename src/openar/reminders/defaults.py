"""What every organization starts with: a default dunning policy and warm, plain reminder
templates in English and French. Organizations change them in the desk; ``install_defaults``
only adds what is missing, so running it again never overwrites their edits."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django_scopes import scope

from openar.notifications.models import Channel, Message, MessageTemplate
from openar.reminders.models import DunningPolicy, DunningStep, ReminderSettings
from openar.tenants.models import Organization

_INVOICE_LINES_EN = (
    "{% for invoice in invoices %}  - {{ invoice.number }}"
    "{% if invoice.po_number %} (PO {{ invoice.po_number }}){% endif %}"
    ": {{ invoice.open_amount }}, due {{ invoice.due_date }}\n{% endfor %}"
)
_INVOICE_LINES_FR = (
    "{% for invoice in invoices %}  - {{ invoice.number }}{% if invoice.po_number %} (bon de commande "
    "{{ invoice.po_number }}){% endif %} : {{ invoice.open_amount }}, échéance le {{ invoice.due_date }}\n"
    "{% endfor %}"
)
_SIGNATURE = "{{ organization_name }}{% if organization_phone %}\n{{ organization_phone }}{% endif %}"

_UNSUBSCRIBE_EN = "You can stop these reminders by email at any time: {{ unsubscribe_link }}"
_UNSUBSCRIBE_FR = "Pour ne plus recevoir ces rappels par courriel : {{ unsubscribe_link }}"


@dataclass(frozen=True)
class DefaultTemplate:
    key: str
    channel: str
    language: str
    name: str
    subject: str
    body: str


DEFAULT_TEMPLATES: tuple[DefaultTemplate, ...] = (
    # --- English ------------------------------------------------------------------------------
    DefaultTemplate(
        "reminder-upcoming",
        Channel.EMAIL,
        "en",
        "Before the due date",
        "Coming up: {{ total_open }} due on {{ oldest_due_date }}",
        f"""Hello {{{{ contact_name }}}},

A quick heads-up from {{{{ organization_name }}}}: the following is coming due on your account.

{_INVOICE_LINES_EN}
You can see the details and pay online here, no password needed:
{{{{ easy_pay_link }}}}
To see your invoices first: {{{{ pay_link }}}}

If payment is already on its way, thank you, and please ignore this note.

Kind regards,
{_SIGNATURE}

{_UNSUBSCRIBE_EN}
""",
    ),
    DefaultTemplate(
        "reminder-friendly",
        Channel.EMAIL,
        "en",
        "Just past due",
        "A friendly reminder: {{ total_past_due }} is now past due",
        f"""Hello {{{{ contact_name }}}},

We hope all is well. Our records show that {{{{ total_past_due }}}} on your account with \
{{{{ organization_name }}}} is now past due:

{_INVOICE_LINES_EN}
It only takes a minute to pay online, no password needed:
{{{{ easy_pay_link }}}}
To see your invoices first: {{{{ pay_link }}}}

If you have already paid, thank you, and please disregard this message. If something on an \
invoice doesn't look right, just reply to this email and we'll sort it out together.

Kind regards,
{_SIGNATURE}

{_UNSUBSCRIBE_EN}
""",
    ),
    DefaultTemplate(
        "reminder-firm",
        Channel.EMAIL,
        "en",
        "Second reminder",
        "Second reminder: {{ total_past_due }} past due since {{ oldest_due_date }}",
        f"""Hello {{{{ contact_name }}}},

We haven't yet received payment of {{{{ total_past_due }}}}, which is now {{{{ days_past_due }}}} \
days past due:

{_INVOICE_LINES_EN}
Please pay today, or let us know when you can. You can pay in full or in part, or propose a \
payment date, here:
{{{{ easy_pay_link }}}}
To see your invoices first: {{{{ pay_link }}}}
{{% if statement_attached %}}
Your statement of account is attached.
{{% endif %}}
If there is a problem with an invoice, reply to this email and tell us which line: we'd \
rather fix it than keep reminding you.

Thank you,
{_SIGNATURE}

{_UNSUBSCRIBE_EN}
""",
    ),
    DefaultTemplate(
        "reminder-final",
        Channel.EMAIL,
        "en",
        "Final reminder",
        "Final reminder: {{ total_past_due }} overdue",
        f"""Hello {{{{ contact_name }}}},

Despite our earlier reminders, {{{{ total_past_due }}}} on your account remains unpaid; the \
oldest invoice was due on {{{{ oldest_due_date }}}}.

{_INVOICE_LINES_EN}
Please settle the balance, or set up a payment arrangement, within 7 days:
{{{{ easy_pay_link }}}}
To see your invoices first: {{{{ pay_link }}}}
{{% if statement_attached %}}
Your statement of account is attached.
{{% endif %}}
If you cannot pay in full, please contact us: we will work with you on a plan that fits.

Regards,
{_SIGNATURE}

{_UNSUBSCRIBE_EN}
""",
    ),
    DefaultTemplate(
        "reminder-sms",
        Channel.SMS,
        "en",
        "Text reminder",
        "",
        "{{ organization_name }}: {{ total_past_due }} is past due on account {{ customer_number }}. "
        "Pay or set a date here: {{ easy_pay_link }} Reply STOP to opt out.",
    ),
    DefaultTemplate(
        "reminder-letter",
        Channel.LETTER,
        "en",
        "Final letter",
        "Final notice: {{ total_past_due }} overdue",
        f"""Dear {{{{ contact_name }}}},

Our records show that the following invoices on account {{{{ customer_number }}}} remain unpaid:

{_INVOICE_LINES_EN}
The amount past due is {{{{ total_past_due }}}}. Please pay it, or contact us to agree on a \
payment arrangement, within 14 days of the date of this letter. You can pay online at \
{{{{ portal_link }}}}.

If you have paid in the meantime, thank you, and please disregard this letter.

Yours sincerely,
{_SIGNATURE}
""",
    ),
    # --- French -------------------------------------------------------------------------------
    DefaultTemplate(
        "reminder-upcoming",
        Channel.EMAIL,
        "fr",
        "Avant l'échéance",
        "Bientôt à échéance : {{ total_open }} le {{ oldest_due_date }}",
        f"""Bonjour {{{{ contact_name }}}},

Un petit mot de {{{{ organization_name }}}} : les montants suivants arrivent bientôt à échéance.

{_INVOICE_LINES_FR}
Vous pouvez consulter le détail et payer en ligne ici, sans mot de passe :
{{{{ easy_pay_link }}}}
Pour voir d'abord vos factures : {{{{ pay_link }}}}

Si votre paiement est déjà en route, merci, et ne tenez pas compte de ce message.

Cordialement,
{_SIGNATURE}

{_UNSUBSCRIBE_FR}
""",
    ),
    DefaultTemplate(
        "reminder-friendly",
        Channel.EMAIL,
        "fr",
        "Juste après l'échéance",
        "Petit rappel : {{ total_past_due }} est maintenant échu",
        f"""Bonjour {{{{ contact_name }}}},

Nous espérons que tout va bien. Selon nos dossiers, {{{{ total_past_due }}}} sur votre compte \
chez {{{{ organization_name }}}} est maintenant échu :

{_INVOICE_LINES_FR}
Payer en ligne ne prend qu'une minute, sans mot de passe :
{{{{ easy_pay_link }}}}
Pour voir d'abord vos factures : {{{{ pay_link }}}}

Si vous avez déjà payé, merci, et ne tenez pas compte de ce message. Si quelque chose vous \
semble incorrect sur une facture, répondez simplement à ce courriel et nous réglerons cela \
ensemble.

Cordialement,
{_SIGNATURE}

{_UNSUBSCRIBE_FR}
""",
    ),
    DefaultTemplate(
        "reminder-firm",
        Channel.EMAIL,
        "fr",
        "Deuxième rappel",
        "Deuxième rappel : {{ total_past_due }} échu depuis le {{ oldest_due_date }}",
        f"""Bonjour {{{{ contact_name }}}},

Nous n'avons pas encore reçu le paiement de {{{{ total_past_due }}}}, échu depuis \
{{{{ days_past_due }}}} jours :

{_INVOICE_LINES_FR}
Merci de payer dès aujourd'hui ou de nous indiquer quand vous le pourrez. Vous pouvez payer \
en totalité ou en partie, ou proposer une date de paiement, ici :
{{{{ easy_pay_link }}}}
Pour voir d'abord vos factures : {{{{ pay_link }}}}
{{% if statement_attached %}}
Votre relevé de compte est joint.
{{% endif %}}
Si une facture pose problème, répondez à ce courriel en précisant la ligne concernée : nous \
préférons la corriger plutôt que de vous relancer.

Merci,
{_SIGNATURE}

{_UNSUBSCRIBE_FR}
""",
    ),
    DefaultTemplate(
        "reminder-final",
        Channel.EMAIL,
        "fr",
        "Dernier rappel",
        "Dernier rappel : {{ total_past_due }} en souffrance",
        f"""Bonjour {{{{ contact_name }}}},

Malgré nos rappels, {{{{ total_past_due }}}} reste impayé sur votre compte ; la facture la \
plus ancienne était due le {{{{ oldest_due_date }}}}.

{_INVOICE_LINES_FR}
Merci de régler le solde, ou de mettre en place une entente de paiement, d'ici 7 jours :
{{{{ easy_pay_link }}}}
Pour voir d'abord vos factures : {{{{ pay_link }}}}
{{% if statement_attached %}}
Votre relevé de compte est joint.
{{% endif %}}
Si vous ne pouvez pas tout payer, contactez-nous : nous trouverons avec vous une entente qui \
vous convient.

Salutations,
{_SIGNATURE}

{_UNSUBSCRIBE_FR}
""",
    ),
    DefaultTemplate(
        "reminder-sms",
        Channel.SMS,
        "fr",
        "Rappel par texto",
        "",
        "{{ organization_name }} : {{ total_past_due }} est échu sur le compte {{ customer_number }}. "
        "Payez ou choisissez une date ici : {{ easy_pay_link }} "
        "Répondez STOP pour ne plus recevoir de textos.",
    ),
    DefaultTemplate(
        "reminder-letter",
        Channel.LETTER,
        "fr",
        "Lettre de dernier avis",
        "Dernier avis : {{ total_past_due }} en souffrance",
        f"""Madame, Monsieur,

Selon nos dossiers, les factures suivantes du compte {{{{ customer_number }}}} restent impayées :

{_INVOICE_LINES_FR}
Le montant échu est de {{{{ total_past_due }}}}. Merci de le régler, ou de nous contacter pour \
convenir d'une entente de paiement, dans les 14 jours suivant la date de cette lettre. Vous \
pouvez payer en ligne à l'adresse {{{{ portal_link }}}}.

Si vous avez payé entre-temps, merci, et veuillez ne pas tenir compte de cette lettre.

Veuillez agréer nos salutations distinguées,
{_SIGNATURE}
""",
    ),
)

# (offset in days from the oldest open invoice's due date, channel, template, tone, statement)
DEFAULT_STEPS: tuple[tuple[int, str, str, str, bool], ...] = (
    (-3, Channel.EMAIL, "reminder-upcoming", Message.Tone.FRIENDLY, False),
    (3, Channel.EMAIL, "reminder-friendly", Message.Tone.FRIENDLY, False),
    (10, Channel.SMS, "reminder-sms", Message.Tone.FRIENDLY, False),
    (15, Channel.EMAIL, "reminder-firm", Message.Tone.FIRM, True),
    (30, Channel.EMAIL, "reminder-final", Message.Tone.FINAL, True),
    (45, Channel.LETTER, "reminder-letter", Message.Tone.FINAL, False),
)


def install_defaults(organization: Organization) -> None:
    """Give ``organization`` the default templates, policy and settings it lacks."""
    with scope(organization=organization), transaction.atomic():
        ReminderSettings.objects.get_or_create(organization=organization)
        for default in DEFAULT_TEMPLATES:
            MessageTemplate.objects.get_or_create(
                organization=organization,
                key=default.key,
                channel=default.channel,
                language=default.language,
                defaults={"name": default.name, "subject": default.subject, "body": default.body},
            )
        if not DunningPolicy.objects.exists():
            policy = DunningPolicy.objects.create(organization=organization, name="Standard reminders")
            DunningStep.objects.bulk_create(
                DunningStep(
                    organization=organization,
                    policy=policy,
                    offset_days=offset,
                    channel=channel,
                    template_key=key,
                    tone=tone,
                    attach_statement=statement,
                )
                for offset, channel, key, tone, statement in DEFAULT_STEPS
            )
