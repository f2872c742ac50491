"""The contracts pages of the desk, added to its URLs (and its namespace) by openar.desk.urls."""

from django.urls import URLPattern, path

from openar.contracts import desk_views

urlpatterns: list[URLPattern] = [
    path("contracts/", desk_views.contract_list, name="contracts"),
    path("customers/<int:customer_id>/contracts/new/", desk_views.contract_new, name="contract_new"),
    path("contracts/<int:contract_id>/", desk_views.contract_detail, name="contract"),
    path("contracts/<int:contract_id>/send/", desk_views.contract_send_view, name="contract_send"),
    path(
        "contracts/<int:contract_id>/withdraw/", desk_views.contract_withdraw_view, name="contract_withdraw"
    ),
    path("contracts/<int:contract_id>/document/", desk_views.contract_document, name="contract_document"),
    path("contracts/<int:contract_id>/signed/", desk_views.contract_signed, name="contract_signed"),
    path("contracts/<int:contract_id>/verify/", desk_views.contract_verify, name="contract_verify"),
]
