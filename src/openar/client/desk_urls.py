"""The desk's pages about what creditor clients send (added to the desk's URLs and namespace
by ``openar.desk.urls``)."""

from django.urls import URLPattern, path

from openar.client import desk_views

urlpatterns: list[URLPattern] = [
    path("client-payments/", desk_views.client_payments, name="client_payments"),
    path("client-payments/<int:report_id>/", desk_views.client_payment_detail, name="client_payment"),
    path("creditor-messages/", desk_views.creditor_threads, name="creditor_threads"),
    path("creditor-messages/<int:conversation_id>/", desk_views.creditor_thread, name="creditor_thread"),
    path(
        "creditor-messages/<int:conversation_id>/reply/",
        desk_views.creditor_thread_reply,
        name="creditor_thread_reply",
    ),
]
