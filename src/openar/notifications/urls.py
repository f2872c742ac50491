"""Webhooks of the messaging and payment providers, mounted under ``/hooks/``. The status callback's
path is also what ``message_send`` gives Twilio (``SITE_URL`` + ``/hooks/twilio/status/``)."""

from django.urls import path

from openar.notifications import inbound_email, webhooks
from openar.payments import webhooks as payment_webhooks

app_name = "hooks"

urlpatterns = [
    path("twilio/status/", webhooks.twilio_status, name="twilio_status"),
    path("twilio/inbound/", webhooks.twilio_inbound, name="twilio_inbound"),
    path("email/inbound/", inbound_email.email_inbound, name="email_inbound"),
    path("payments/<str:provider>/<slug:organization>/", payment_webhooks.provider_webhook, name="payments"),
]
