"""The creditor-client portal's URLs (``/client/``, namespace ``client``)."""

from django.urls import URLPattern, path

from openar.client import actions, messages, money_views, views

app_name = "client"
urlpatterns: list[URLPattern] = [
    path("", views.accounts, name="accounts"),
    path("accounts/<int:customer_id>/", views.account, name="account"),
    path("documents/<int:document_id>/", views.document_download, name="document_download"),
    path("accounts/<int:customer_id>/notes/", actions.note_add, name="note_add"),
    path("accounts/<int:customer_id>/holds/", actions.hold_create, name="hold_create"),
    path(
        "accounts/<int:customer_id>/holds/<int:hold_id>/release/", actions.hold_release, name="hold_release"
    ),
    path("accounts/<int:customer_id>/details/", actions.details_edit, name="details_edit"),
    path("accounts/<int:customer_id>/contacts/<int:contact_id>/", actions.contact_edit, name="contact_edit"),
    path("accounts/<int:customer_id>/messages/new/", messages.message_new, name="message_new"),
    path("messages/", messages.thread_list, name="threads"),
    path("messages/<int:conversation_id>/", messages.thread_detail, name="thread"),
    path("accounts/<int:customer_id>/payments/report/", money_views.payment_report, name="payment_report"),
    path("placements/", money_views.placements, name="placements"),
    path("placements/template.csv", money_views.placements_template, name="placements_template"),
    path("placements/<int:import_id>/", money_views.placement_detail, name="placement"),
    path("reports/", money_views.reports, name="reports"),
    path("reports/monthly.csv", money_views.reports_monthly_csv, name="reports_monthly_csv"),
    path("reports/accounts.csv", money_views.reports_accounts_csv, name="reports_accounts_csv"),
]
