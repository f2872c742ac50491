"""The creditor client's conversations with the agency's collectors, one per subject about
one placed account (``Thread.Audience.CREDITOR``, reached only through
``Thread.creditor_threads``).

A creditor thread is never shown to the customer and never sent to them; a customer thread
(reminders, the debtor's own messages) is never listed here: what went out to the debtor is
on the account's page as communications (channel, subject, date). Threads of accounts that
another creditor placed are a 404.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from openar.client.services import MAX_MESSAGE, client_message_send
from openar.client.views import client_required, context, creditor_of, placed_account
from openar.core.errors import ServiceError
from openar.identity.models import User
from openar.notifications.models import Thread
from openar.notifications.services import creditor_thread_mark_read
from openar.tenants.access import actor_of
from openar.tenants.models import Creditor

PAGE_SIZE = 30


class MessageForm(forms.Form):
    subject = forms.CharField(label="Subject", max_length=200, required=False)
    body = forms.CharField(
        label="Message",
        max_length=MAX_MESSAGE,
        widget=forms.Textarea(attrs={"rows": 5}),
        error_messages={
            "required": "Write the message first.",
            "max_length": "Keep the message to %(limit_value)s characters or fewer (it has %(show_value)s).",
        },
    )


class ReplyForm(forms.Form):
    body = MessageForm.base_fields["body"]


def creditor_threads(creditor: Creditor) -> QuerySet[Thread]:
    return Thread.creditor_threads.filter(customer__creditor=creditor).select_related("customer")


def _author(request: HttpRequest) -> User:
    user = actor_of(request)
    assert user is not None  # noqa: S101  (the client door is for signed-in users only)
    return user


@require_safe
@client_required
def thread_list(request: HttpRequest) -> HttpResponse:
    threads = creditor_threads(creditor_of(request)).order_by("-last_message_at", "-pk")
    page = Paginator(threads, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "client/messages.html", context(request, page=page, nav="messages"))


def _thread_page(
    request: HttpRequest, thread: Thread, form: forms.Form, *, status: int = 200
) -> HttpResponse:
    items = thread.messages.select_related("created_by").order_by("created_at", "pk")
    return render(
        request,
        "client/thread.html",
        context(
            request, thread=thread, customer=thread.customer, items=list(items), form=form, nav="messages"
        ),
        status=status,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@client_required
def thread_detail(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """The conversation whole, oldest first; opening it marks the collectors' answers read.
    The reply form posts here."""
    thread = get_object_or_404(creditor_threads(creditor_of(request)), pk=conversation_id)
    if request.method == "POST":
        form = ReplyForm(request.POST)
        if form.is_valid():
            try:
                message = client_message_send(
                    customer=thread.customer,
                    author=_author(request),
                    body=form.cleaned_data["body"],
                    thread=thread,
                )
            except ServiceError as exc:
                form.add_error("body", exc.message)
            else:
                messages.success(request, "Sent to the collectors.")
                return HttpResponseRedirect(reverse("client:thread", args=[thread.pk]) + f"#m-{message.pk}")
        return _thread_page(request, thread, form, status=400)
    if thread.unread_by_customer:
        creditor_thread_mark_read(thread=thread, by_staff=False)
    return _thread_page(request, thread, ReplyForm())


@require_http_methods(["GET", "HEAD", "POST"])
@client_required
def message_new(request: HttpRequest, customer_id: int) -> HttpResponse:
    """A new conversation with the collectors about one account."""
    customer = placed_account(request, customer_id)
    form = MessageForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            message = client_message_send(
                customer=customer,
                author=_author(request),
                body=form.cleaned_data["body"],
                subject=form.cleaned_data["subject"],
            )
        except ServiceError as exc:
            form.add_error("body", exc.message)
        else:
            messages.success(request, "Sent to the collectors: their answers show here and on the account.")
            return HttpResponseRedirect(
                reverse("client:thread", args=[message.thread_id]) + f"#m-{message.pk}"
            )
    return render(
        request,
        "client/message_new.html",
        context(request, customer=customer, form=form, nav="messages"),
        status=400 if request.method == "POST" else 200,
    )
