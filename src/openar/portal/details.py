"""The customer's own contact details, changed from the portal. A magic-link session must
step up first (an emailed code, where the policy allows, or a full sign-in)."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from openar.core.errors import ServiceError
from openar.core.http import client_ip
from openar.customers.models import Contact
from openar.customers.services import contact_update
from openar.identity.stepup import step_up_check_code, step_up_fresh, step_up_send_code
from openar.tenants.access import Access, actor_of, customer_required
from openar.tenants.models import policy_for


class DetailsForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = ("name", "email", "phone", "language", "consent_email", "consent_sms")
        labels = {
            "language": "Language of our messages",
            "consent_email": "Email me reminders and statements",
            "consent_sms": "Text me reminders",
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["language"].required = False  # left out: unchanged

    def clean_language(self) -> str:
        return str(self.cleaned_data.get("language") or self.instance.language)


def _access(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


def _contact(request: HttpRequest) -> Contact | None:
    access = _access(request)
    if access.contact is not None:
        return access.contact
    if access.is_view_as and access.customer is not None:  # staff viewing as the customer
        return Contact.objects.filter(customer=access.customer).order_by("-is_primary", "pk").first()
    if request.user.is_authenticated and access.customer is not None:
        return Contact.objects.filter(customer=access.customer, user=request.user).first()
    return None


@require_http_methods(["GET", "POST"])
@customer_required
def details(request: HttpRequest) -> HttpResponse:
    access = _access(request)
    if access.read_only and request.method == "POST":
        messages.error(request, "Viewing as the customer: nothing can be changed from here.")
        return HttpResponseRedirect(reverse("portal:details"))
    contact = _contact(request)
    context: dict[str, object] = {
        "customer": access.customer,
        "access": access,
        "nav": "details",
        "full": "portal.full" in access.perm_names,
    }
    if contact is None:
        return render(request, "portal/details.html", {**context, "contact": None})
    form = DetailsForm(
        request.POST or None,
        instance=Contact(pk=contact.pk, **{name: getattr(contact, name) for name in DetailsForm.Meta.fields}),
    )
    if request.method == "POST":
        if access.is_narrow and not step_up_fresh(request.session, contact):
            return HttpResponseRedirect(reverse("portal:step_up") + "?" + urlencode({"next": request.path}))
        if form.is_valid():
            try:
                contact_update(
                    contact=contact,
                    changes={name: form.cleaned_data[name] for name in DetailsForm.Meta.fields},
                    actor=actor_of(request),
                    by_contact=not access.is_view_as,
                    ip=client_ip(request),
                )
            except ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, "Your details are saved.")
                return HttpResponseRedirect(reverse("portal:details"))
    needs_step_up = access.is_narrow and not step_up_fresh(request.session, contact)
    return render(
        request,
        "portal/details.html",
        {**context, "contact": contact, "form": form, "needs_step_up": needs_step_up},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@customer_required
def step_up(request: HttpRequest) -> HttpResponse:
    return step_up_page(
        request, door="/portal/", default_next=reverse("portal:details"), base="portal/base.html"
    )


def step_up_page(request: HttpRequest, *, door: str, default_next: str, base: str) -> HttpResponse:
    """Confirm it is you (an emailed code) before a sensitive change, then go on to ``next``
    (a page of the same ``door``). Shared by the portal and the pay page."""
    access = _access(request)
    contact = _contact(request)
    next_url = request.GET.get("next") or request.POST.get("next") or default_next
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts=None) or not next_url.startswith(door):
        next_url = default_next
    if not access.is_narrow:  # a full sign-in needs no further proof
        return render(
            request,
            "portal/step_up.html",
            {
                "customer": access.customer,
                "access": access,
                "next": next_url,
                "full": True,
                "not_needed": True,
                "base": base,
            },
        )
    policy = policy_for(access.organization)
    context: dict[str, object] = {
        "customer": access.customer,
        "access": access,
        "next": next_url,
        "full": False,
        "by_email": policy.step_up_by_email_code and contact is not None and bool(contact.email),
        "contact": contact,
        "base": base,
    }
    if request.method == "POST" and context["by_email"] and contact is not None:
        if "send" in request.POST:
            step_up_send_code(session=request.session, contact=contact, ip=client_ip(request))
            context["sent"] = True
        else:
            outcome = step_up_check_code(
                session=request.session,
                contact=contact,
                code=str(request.POST.get("code", ""))[:12],
                ip=client_ip(request),
            )
            if outcome == "ok":
                return HttpResponseRedirect(next_url)
            context["sent"] = outcome == "wrong"
            context["error"] = {
                "wrong": "That code is not right. Check the latest email and try again.",
                "expired": "That code has expired. Send a new one.",
                "locked": "Too many wrong codes. Send a new one.",
            }[outcome]
            return render(request, "portal/step_up.html", context, status=400)
    return render(request, "portal/step_up.html", context)
