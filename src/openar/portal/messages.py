"""Messages between the customer and the AR team, in the portal.

A thread is one conversation: the team's emails, texts, letters and portal messages, and the
customer's own portal messages and email replies, kept in one record (``Thread`` and
``Message`` of ``openar.notifications``). The customer sees their own threads only; a
thread of anyone else is a 404.

Who sees what:

* A full sign-in sees every thread of the customer that has something in it
  (``last_message_at`` is set when a message is sent or received, so a thread whose only
  message still waits in the queue, or was never sent, is not listed).
* A magic-link session is narrow: its link was emailed to one contact, so it sees the
  threads that contact took part in (what reached that contact anyway), and may write.
* Staff viewing the portal as the customer read what the customer reads, but never mark
  anything read (the customer has not seen it), and cannot write when read-only.

Inside a thread the customer sees what the team sent (once it went out) and what the
customer's side wrote. A reply typed by staff is shown from the moment it is written, even
if its email is still on its way or failed: the portal is one of its channels. Automatic
messages (reminders, notices) appear once sent; a reminder that was skipped never does.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from openar.customers.models import Contact, Customer
from openar.notifications.models import Channel, Message, Thread
from openar.notifications.services import message_receive, thread_mark_read
from openar.tenants.access import Access, actor_of, customer_required
from openar.tenants.permissions import Perm

MAX_BODY = 5000
MAX_SUBJECT = 200
THREAD_PAGE_SIZE = 25
READ_ONLY_REFUSAL = "Viewing as the customer: messages cannot be sent from here."

BODY_ERRORS = {
    "required": "Write your message first.",
    "max_length": "Keep the message to %(limit_value)s characters or fewer (it has %(show_value)s).",
}


class MessageForm(forms.Form):
    """A reply: plain text, shown escaped with its line breaks kept."""

    body = forms.CharField(
        label="Your message", max_length=MAX_BODY, widget=forms.Textarea, error_messages=BODY_ERRORS
    )


class NewThreadForm(forms.Form):
    subject = forms.CharField(
        label="Subject",
        max_length=MAX_SUBJECT,
        error_messages={
            "required": "Say in a few words what it is about.",
            "max_length": "Keep the subject to %(limit_value)s characters or fewer.",
        },
    )
    body = forms.CharField(
        label="Your message", max_length=MAX_BODY, widget=forms.Textarea, error_messages=BODY_ERRORS
    )


def _access(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


def _customer(access: Access) -> Customer:
    customer = access.customer
    assert customer is not None  # noqa: S101  (PORTAL_VIEW is only granted with a customer)
    return customer


def visible_threads(access: Access) -> QuerySet[Thread]:
    """The threads this portal session may read (see the module's docstring)."""
    threads = Thread.objects.filter(customer=_customer(access), last_message_at__isnull=False)
    if access.is_narrow:
        took_part = Message.objects.filter(thread=OuterRef("pk"), contact=access.contact)
        threads = threads.filter(Exists(took_part))
    return threads


def unread_count(access: Access | None) -> int:
    """Messages from the team not yet read by the customer, for the nav badge: one query."""
    if access is None or access.customer is None or not access.can(Perm.PORTAL_VIEW):
        return 0
    total = visible_threads(access).aggregate(unread=Sum("unread_by_customer"))["unread"]
    return int(total or 0)


def visible_messages(thread: Thread) -> QuerySet[Message]:
    """What the customer sees of a thread, oldest first."""
    sent = (Message.State.SENT, Message.State.DELIVERED, Message.State.BOUNCED)
    typed_by_staff = Q(created_by__isnull=False, dunning_step__isnull=True) & ~Q(state=Message.State.SKIPPED)
    return (
        thread.messages.filter(Q(direction=Message.Direction.IN) | Q(state__in=sent) | typed_by_staff)
        .select_related("contact", "created_by")
        .order_by("created_at", "pk")
    )


def _author_contact(request: HttpRequest, access: Access) -> Contact | None:
    """The contact writing: the link's contact, or the one linked to the signed-in user.
    Staff acting for the customer write as themselves (``created_by``), not as a contact."""
    if access.contact is not None:
        return access.contact
    if access.is_view_as or not request.user.is_authenticated:
        return None
    return Contact.objects.filter(customer=_customer(access), user=request.user).first()


def _post(
    request: HttpRequest, access: Access, *, body: str, thread: Thread | None, subject: str = ""
) -> Thread:
    contact = _author_contact(request, access)
    user = actor_of(request)
    message = message_receive(
        customer=_customer(access),
        channel=Channel.PORTAL,
        body=body,
        from_address=(contact.email if contact else "") or (user.email if user else ""),
        subject=subject,
        contact=contact,
        thread=thread,
        created_by=user,
    )
    assert message.thread is not None  # noqa: S101  (message_receive always files it in a thread)
    return message.thread


def _context(access: Access, **extra: object) -> dict[str, object]:
    return {
        "customer": access.customer,
        "access": access,
        "full": access.can(Perm.PORTAL_FULL),
        "nav": "messages",
        "max_body": MAX_BODY,
        **extra,
    }


@require_http_methods(["GET", "HEAD"])
@customer_required
def thread_list(request: HttpRequest) -> HttpResponse:
    access = _access(request)
    threads = visible_threads(access).order_by("-last_message_at", "-pk")
    page = Paginator(threads, THREAD_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "portal/messages.html", _context(access, page=page))


@require_http_methods(["GET", "HEAD", "POST"])
@customer_required
def thread_detail(request: HttpRequest, thread_id: int) -> HttpResponse:
    """The whole thread; opening it marks the team's messages read. The reply form posts
    here."""
    access = _access(request)
    thread = get_object_or_404(visible_threads(access), pk=thread_id)
    form = MessageForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if access.read_only:
            messages.error(request, READ_ONLY_REFUSAL)
            return HttpResponseRedirect(reverse("portal:thread", args=[thread.pk]))
        if form.is_valid():
            _post(request, access, body=form.cleaned_data["body"], thread=thread)
            messages.success(request, "Your message is sent. We will answer here.")
            return HttpResponseRedirect(reverse("portal:thread", args=[thread.pk]) + "#reply")
    if not access.is_view_as and thread.unread_by_customer:
        thread_mark_read(thread=thread, by_staff=False)
    return render(
        request,
        "portal/messages_thread.html",
        _context(access, thread=thread, items=list(visible_messages(thread)), form=form),
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@customer_required
def thread_new(request: HttpRequest) -> HttpResponse:
    access = _access(request)
    form = NewThreadForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if access.read_only:
            messages.error(request, READ_ONLY_REFUSAL)
            return HttpResponseRedirect(reverse("portal:threads"))
        if form.is_valid():
            thread = _post(
                request,
                access,
                body=form.cleaned_data["body"],
                thread=None,
                subject=form.cleaned_data["subject"],
            )
            messages.success(request, "Your message is sent. We will answer here.")
            return HttpResponseRedirect(reverse("portal:thread", args=[thread.pk]))
    return render(
        request, "portal/messages_new.html", _context(access, form=form), status=400 if form.errors else 200
    )
