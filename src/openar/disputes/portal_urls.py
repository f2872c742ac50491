"""The disputes pages of the portal, added to its URLs (and its namespace) by openar.portal.urls."""

from django.urls import URLPattern, path

from openar.disputes import portal_views

urlpatterns: list[URLPattern] = [
    path("invoices/<int:invoice_id>/dispute/", portal_views.dispute_new, name="dispute_new"),
    path("disputes/", portal_views.dispute_list, name="disputes"),
    path("disputes/<int:dispute_id>/", portal_views.dispute_detail, name="dispute"),
]
