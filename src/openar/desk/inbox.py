"""The desk's inbox: conversations with customers, the unread ones first, and replies.

Every email, text or letter goes in a thread, so most threads are one reminder nobody
answered. The inbox lists conversations: threads with something from the customer (a portal
message, an email or text reply) or something staff typed themselves. Any thread can still
be opened from the customer's page.

A reply goes to the customer by email when there is an address to send it to: the contact
who wrote last in the thread, else the customer's primary contact (an address flagged as
not working is passed over). The email's Reply-To is the thread's reply address, so the
answer comes back here. The reply is in the portal thread either way; a customer without a
usable email address gets it there only, as a portal message.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Left
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from openar.customers.models import Contact
from openar.notifications.models import Channel, Message, Thread
from openar.notifications.rendering import text_to_html
from openar.notifications.services import Draft, message_create, thread_mark_read
from openar.tenants.access import Access, actor_of, require, staff_required
from openar.tenants.permissions import Perm

collector_required = require(Perm.DESK_COLLECT)
PAGE_SIZE = 50
MAX_BODY = 5000
SNIPPET = 160
SHOW = {"": "All", "unread": "Unread"}


class ReplyForm(forms.Form):
    body = forms.CharField(
        label="Your reply",
        max_length=MAX_BODY,
        widget=forms.Textarea,
        error_messages={
            "required": "Write the reply first.",
            "max_length": "Keep the reply to %(limit_value)s characters or fewer (it has %(show_value)s).",
        },
    )


def _access(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


def conversations() -> QuerySet[Thread]:
    """Threads someone took part in: anything from the customer, or typed by staff (not a
    reminder). Runs inside the request's organization scope."""
    taking_part = Message.objects.filter(thread=OuterRef("pk")).filter(
        Q(direction=Message.Direction.IN) | Q(created_by__isnull=False, dunning_step__isnull=True)
    )
    return Thread.objects.filter(Exists(taking_part))


def unread_count(access: Access | None) -> int:
    """Customer messages no one at the organization has read yet, for the nav: one query."""
    if access is None or not access.can(Perm.DESK_VIEW):
        return 0
    total = Thread.objects.filter(organization=access.organization, unread_by_staff__gt=0).aggregate(
        unread=Sum("unread_by_staff")
    )["unread"]
    return int(total or 0)


def reply_contact(thread: Thread) -> Contact | None:
    """Who an emailed reply goes to: the contact of the latest message from the customer
    that has one, else the primary contact (then any contact) with a working address. None:
    no one to email, the reply is a portal message."""
    usable = Q(email__gt="", email_problem="")
    latest = (
        thread.messages.filter(direction=Message.Direction.IN, contact__isnull=False)
        .select_related("contact")
        .order_by("-created_at", "-pk")
        .first()
    )
    if latest is not None and latest.contact is not None:
        contact: Contact = latest.contact
        if contact.email and not contact.email_problem:
            return contact
    return (
        Contact.objects.filter(usable, customer_id=thread.customer_id).order_by("-is_primary", "pk").first()
    )


def reply_subject(subject: str) -> str:
    """The subject of a reply: one "Re: ", however long the conversation goes on."""
    return (subject if subject.lower().startswith("re:") else f"Re: {subject}")[:300]


@require_safe
@staff_required
def inbox(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show", "")
    if show not in SHOW:
        show = ""
    latest = Message.objects.filter(thread=OuterRef("pk")).order_by("-created_at", "-pk")
    threads = (
        conversations()
        .select_related("customer")
        .annotate(
            unread_first=Case(When(unread_by_staff__gt=0, then=Value(0)), default=Value(1)),
            latest_text=Subquery(latest.annotate(snippet=Left("body_text", SNIPPET)).values("snippet")[:1]),
            latest_direction=Subquery(latest.values("direction")[:1]),
        )
        .order_by("unread_first", F("last_message_at").desc(nulls_last=True), "-pk")
    )
    if show == "unread":
        threads = threads.filter(unread_by_staff__gt=0)
    page = Paginator(threads, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "desk/inbox.html", {"page": page, "show": show, "filters": SHOW, "nav": "inbox"})


def _thread_page(request: HttpRequest, thread: Thread, form: ReplyForm, *, status: int = 200) -> HttpResponse:
    items = thread.messages.select_related("contact", "created_by", "dunning_step").order_by(
        "created_at", "pk"
    )
    return render(
        request,
        "desk/inbox_thread.html",
        {
            "thread": thread,
            "customer": thread.customer,
            "items": list(items),
            "form": form,
            "can_reply": _access(request).can(Perm.DESK_COLLECT),
            "recipient": reply_contact(thread),
            "max_body": MAX_BODY,
            "nav": "inbox",
        },
        status=status,
    )


@require_safe
@staff_required
def thread_detail(request: HttpRequest, thread_id: int) -> HttpResponse:
    """The thread whole, oldest first; opening it marks the customer's messages read."""
    thread = get_object_or_404(Thread.objects.select_related("customer"), pk=thread_id)
    if thread.unread_by_staff:
        thread_mark_read(thread=thread, by_staff=True)
    return _thread_page(request, thread, ReplyForm())


@require_POST
@collector_required
def thread_reply(request: HttpRequest, thread_id: int) -> HttpResponse:
    thread = get_object_or_404(Thread.objects.select_related("customer"), pk=thread_id)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return _thread_page(request, thread, form, status=400)
    text = form.cleaned_data["body"]
    contact = reply_contact(thread)
    message = message_create(
        customer=thread.customer,
        channel=Channel.EMAIL if contact is not None else Channel.PORTAL,
        thread=thread,
        draft=Draft(subject=reply_subject(thread.subject), text=text, html=text_to_html(text)),
        contact=contact,
        created_by=actor_of(request),
    )
    if contact is not None:
        messages.success(
            request, f"Your reply is on its way to {contact.name} ({contact.email}) and in the portal."
        )
    else:
        messages.success(
            request, "No one at the customer has a working email address: your reply is in the portal."
        )
    return HttpResponseRedirect(reverse("desk:thread", args=[thread.pk]) + f"#m-{message.pk}")
