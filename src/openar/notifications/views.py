"""Public pages of messages: the unsubscribe link at the foot of every reminder email.

Opening the link (a GET, as mail scanners do) changes nothing; it shows a page with one
button. The POST turns the contact's consent off, audited and on the customer's timeline.
The token is signed and does not expire: an old email's link must keep working.
"""

from __future__ import annotations

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from django_scopes import scope, scopes_disabled

from openar.core.http import client_ip
from openar.customers.models import Contact
from openar.customers.services import contact_update
from openar.notifications.models import Channel
from openar.reminders.engine import UNSUBSCRIBE_SALT

CONSENT_FIELD = {Channel.EMAIL: "consent_email", Channel.SMS: "consent_sms"}


@csrf_exempt  # one-click unsubscribe (RFC 8058) posts without a form; the signed token is the key
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        contact_id, channel = int(data["c"]), str(data["ch"])
        field = CONSENT_FIELD[Channel(channel)]
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=404)
    with scopes_disabled():
        contact = Contact.objects.select_related("customer__organization").filter(pk=contact_id).first()
    if contact is None:
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=404)
    organization = contact.customer.organization
    context = {"contact": contact, "organization": organization, "channel": Channel(channel).label.lower()}
    if request.method == "POST":
        with scope(organization=organization):
            contact_update(contact=contact, changes={field: False}, by_contact=True, ip=client_ip(request))
        return render(request, "notifications/unsubscribe.html", {**context, "done": True})
    context["already"] = not getattr(contact, field)
    response = render(request, "notifications/unsubscribe.html", context)
    response["Referrer-Policy"] = "no-referrer"
    return response
