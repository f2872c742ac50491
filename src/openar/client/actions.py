"""What a creditor client does on an account it placed (POST, CSRF-protected): add a note,
place or release a hold, correct the debtor's contact details. Each calls one service of
``openar.client.services``; a refused request says why and loses nothing typed."""

from __future__ import annotations

import datetime

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from openar.client.services import (
    ACCOUNT_FIELDS,
    CONTACT_FIELDS,
    MAX_NOTE,
    client_account_update,
    client_contact_update,
    client_hold_place,
    client_hold_release,
    client_note_add,
)
from openar.client.views import client_required, context, placed_account
from openar.core.errors import ServiceError
from openar.customers.models import Contact, Customer, Hold
from openar.identity.models import User
from openar.tenants.access import actor_of


def _back(customer: Customer, anchor: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("client:account", args=[customer.pk]) + f"#{anchor}")


def _add_errors(form: forms.Form, error: ValidationError) -> None:
    for field, errors in error.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _author(request: HttpRequest) -> User:
    user = actor_of(request)
    assert user is not None  # noqa: S101  (the client door is for signed-in users only)
    return user


class NoteForm(forms.Form):
    body = forms.CharField(
        label="Note for the collectors",
        max_length=MAX_NOTE,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={
            "required": "Write the note first.",
            "max_length": "Keep the note to %(limit_value)s characters or fewer (it has %(show_value)s).",
        },
    )


class HoldForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=300,
        error_messages={
            "required": "Say why collection should pause.",
            "max_length": "Keep the reason short.",
        },
    )
    until = forms.DateField(
        label="Until (optional)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter the end date as a date, e.g. 2026-12-31."},
    )


class AccountForm(forms.Form):
    email = forms.EmailField(label="Email", required=False, max_length=254)
    phone = forms.CharField(label="Phone", required=False, max_length=40)
    address_line1 = forms.CharField(label="Address", required=False, max_length=200)
    address_line2 = forms.CharField(label="Address, second line", required=False, max_length=200)
    city = forms.CharField(label="City", required=False, max_length=100)
    region = forms.CharField(label="Province or state", required=False, max_length=100)
    postal_code = forms.CharField(label="Postal code", required=False, max_length=20)
    country = forms.CharField(
        label="Country", required=False, max_length=2, help_text="Two letters, e.g. CA or US."
    )

    def clean_country(self) -> str:
        country = str(self.cleaned_data.get("country", "")).strip().upper()
        if country and not (len(country) == 2 and country.isalpha()):
            raise forms.ValidationError("Enter the country as two letters, e.g. CA or US.")
        return country


class ContactForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=200, error_messages={"required": "A contact needs a name."}
    )
    email = forms.EmailField(label="Email", required=False, max_length=254)
    phone = forms.CharField(label="Phone", required=False, max_length=40)


@require_POST
@client_required
def note_add(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = placed_account(request, customer_id)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            client_note_add(customer=customer, author=_author(request), body=form.cleaned_data["body"])
        except ServiceError as exc:
            form.add_error("body", exc.message)
        else:
            messages.success(request, "Your note is on the account's timeline; the collector is told.")
            return _back(customer, "timeline")
    return render(
        request,
        "client/action_form.html",
        context(request, customer=customer, form=form, action="note", nav="accounts"),
        status=400,
    )


@require_POST
@client_required
def hold_create(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = placed_account(request, customer_id)
    form = HoldForm(request.POST)
    if form.is_valid():
        day: datetime.date | None = form.cleaned_data["until"]
        expires_at = None
        if day is not None:
            # The hold covers the whole day chosen, in the organization's time zone.
            start = datetime.datetime.combine(day, datetime.time.min, tzinfo=customer.organization.tz)
            expires_at = start + datetime.timedelta(days=1)
        try:
            client_hold_place(
                customer=customer,
                author=_author(request),
                reason=form.cleaned_data["reason"],
                expires_at=expires_at,
            )
        except ServiceError as exc:
            form.add_error("until" if exc.field == "expires_at" else "reason", exc.message)
        else:
            until = f" until {day:%-d %b %Y}" if day else " until you release it"
            messages.success(
                request, f"Collection on {customer.name} is on hold{until}: no reminders, no calls."
            )
            return _back(customer, "holds")
    return render(
        request,
        "client/action_form.html",
        context(request, customer=customer, form=form, action="hold", nav="accounts"),
        status=400,
    )


@require_POST
@client_required
def hold_release(request: HttpRequest, customer_id: int, hold_id: int) -> HttpResponse:
    customer = placed_account(request, customer_id)
    hold = get_object_or_404(Hold.objects.select_related("customer__creditor"), pk=hold_id, customer=customer)
    try:
        released = client_hold_release(hold=hold, author=_author(request))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        if released:
            messages.success(request, "Hold released: reminders resume when they are due.")
        else:
            messages.info(request, "That hold had ended already.")
    return _back(customer, "holds")


@require_http_methods(["GET", "HEAD", "POST"])
@client_required
def details_edit(request: HttpRequest, customer_id: int) -> HttpResponse:
    """The debtor's email, phone and address, corrected by the creditor."""
    customer = placed_account(request, customer_id)
    initial = {name: getattr(customer, name) for name in ACCOUNT_FIELDS}
    form = AccountForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            changed = client_account_update(
                customer=customer,
                author=_author(request),
                changes={name: str(form.cleaned_data[name]) for name in ACCOUNT_FIELDS},
            )
        except ServiceError as exc:
            form.add_error(None, exc.message)
        except ValidationError as exc:  # the model's own rules: say which field, keep the input
            _add_errors(form, exc)
        else:
            messages.success(
                request,
                "The account's details are updated; the collector is told."
                if changed
                else "Nothing changed: the details were already these.",
            )
            return _back(customer, "contacts")
    return render(
        request,
        "client/details_edit.html",
        context(request, customer=customer, form=form, nav="accounts"),
        status=400 if request.method == "POST" else 200,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@client_required
def contact_edit(request: HttpRequest, customer_id: int, contact_id: int) -> HttpResponse:
    customer = placed_account(request, customer_id)
    contact = get_object_or_404(
        Contact.objects.select_related("customer__creditor"), pk=contact_id, customer=customer
    )
    initial = {name: getattr(contact, name) for name in CONTACT_FIELDS}
    form = ContactForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            changed = client_contact_update(
                contact=contact,
                author=_author(request),
                changes={name: str(form.cleaned_data[name]) for name in CONTACT_FIELDS},
            )
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request,
                f"The details of {form.cleaned_data['name']} are updated; the collector is told."
                if changed
                else "Nothing changed: the details were already these.",
            )
            return _back(customer, "contacts")
    return render(
        request,
        "client/contact_edit.html",
        context(request, customer=customer, contact=contact, form=form, nav="accounts"),
        status=400 if request.method == "POST" else 200,
    )
