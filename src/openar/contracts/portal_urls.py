"""The contracts pages of the portal, added to its URLs (and its namespace) by openar.portal.urls."""

from django.urls import URLPattern, path

from openar.contracts import portal_views

urlpatterns: list[URLPattern] = [
    path("contracts/", portal_views.contract_list, name="contracts"),
    path("contracts/<int:contract_id>/", portal_views.contract_detail, name="contract"),
    path("contracts/<int:contract_id>/confirm/", portal_views.contract_confirm, name="contract_confirm"),
    path("contracts/<int:contract_id>/document/", portal_views.contract_document, name="contract_document"),
    path("contracts/<int:contract_id>/signed/", portal_views.contract_signed, name="contract_signed"),
    path("contracts/<int:contract_id>/verify/", portal_views.contract_verify, name="contract_verify"),
]
