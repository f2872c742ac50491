from django.urls import path

from openar.client import desk_urls as client_urls
from openar.contracts import desk_urls as contract_urls
from openar.desk import (
    collection,
    commitments,
    contacts,
    documents,
    inbox,
    outbox,
    payment_setup,
    payments,
    people,
    reminders,
    security,
    views,
    worklist_urls,
)
from openar.disputes import desk_urls as dispute_urls

app_name = "desk"
urlpatterns = [
    path("", views.customers, name="customers"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer"),
    path("customers/<int:customer_id>/invoices/<int:invoice_id>/", views.invoice_detail, name="invoice"),
    path("customers/<int:customer_id>/statement.pdf", views.statement_pdf, name="statement_pdf"),
    path("documents/<int:document_id>/download", views.document_download, name="document_download"),
    path(
        "customers/<int:customer_id>/invoices/<int:invoice_id>/invoice.pdf",
        documents.invoice_pdf,
        name="invoice_pdf",
    ),
    path("customers/<int:customer_id>/documents/", documents.customer_documents, name="customer_documents"),
    path("customers/<int:customer_id>/documents/upload/", documents.upload, name="document_upload"),
    path("documents/<int:document_id>/visibility/", documents.visibility, name="document_visibility"),
    path(
        "customers/<int:customer_id>/contacts/<int:contact_id>/links/",
        contacts.link_create,
        name="contact_link_create",
    ),
    path(
        "customers/<int:customer_id>/contacts/<int:contact_id>/links/revoke/",
        contacts.links_revoke,
        name="contact_links_revoke",
    ),
    path("customers/<int:customer_id>/invite/", contacts.invite, name="customer_invite"),
    path("customers/<int:customer_id>/segment/", collection.segment_set, name="customer_segment"),
    path("customers/<int:customer_id>/holds/", collection.hold_create, name="hold_create"),
    path("customers/<int:customer_id>/autopay/off/", collection.autopay_off, name="autopay_off"),
    path(
        "customers/<int:customer_id>/holds/<int:hold_id>/release/", collection.hold_end, name="hold_release"
    ),
    path("customers/<int:customer_id>/promises/new/", commitments.promise_new, name="promise_new"),
    path(
        "customers/<int:customer_id>/promises/<int:promise_id>/cancel/",
        commitments.promise_cancel_view,
        name="promise_cancel",
    ),
    path("customers/<int:customer_id>/plans/new/", commitments.plan_new, name="plan_new"),
    path(
        "customers/<int:customer_id>/plans/<int:plan_id>/approve/",
        commitments.plan_approve_view,
        name="plan_approve",
    ),
    path(
        "customers/<int:customer_id>/plans/<int:plan_id>/change/",
        commitments.plan_change_view,
        name="plan_change",
    ),
    path(
        "customers/<int:customer_id>/plans/<int:plan_id>/cancel/",
        commitments.plan_cancel_view,
        name="plan_cancel",
    ),
    path("promises/", commitments.promises, name="promises"),
    path("plans/", commitments.plans, name="plans"),
    path("tasks/<int:task_id>/done/", commitments.task_done_view, name="task_done"),
    path("customers/<int:customer_id>/view-as/", contacts.view_as_start, name="view_as_start"),
    path("view-as/stop/", contacts.view_as_stop, name="view_as_stop"),
    path("inbox/", inbox.inbox, name="inbox"),
    path("inbox/<int:thread_id>/", inbox.thread_detail, name="thread"),
    path("inbox/<int:thread_id>/reply/", inbox.thread_reply, name="thread_reply"),
    path("outbox/", outbox.outbox, name="outbox"),
    path("messages/<int:message_id>/", outbox.message_detail, name="message"),
    path("messages/<int:message_id>/send-again/", outbox.message_send_again, name="message_send_again"),
    path("reminders/upcoming/", outbox.reminders_upcoming, name="reminders_upcoming"),
    path("reminders/upcoming/skip/", outbox.reminder_skip_view, name="reminder_skip"),
    path("reminders/upcoming/send-now/", outbox.reminder_send_now_view, name="reminder_send_now"),
    path("payments/", payments.payment_list, name="payments"),
    path("payments/export.csv", payments.payments_export, name="payments_export"),
    path("payments/<int:payment_id>/", payments.payment_detail, name="payment"),
    path("payments/<int:payment_id>/refund/", payments.payment_refund_view, name="payment_refund"),
    path("payments/<int:payment_id>/apply-credit/", payments.credit_apply_view, name="payment_apply_credit"),
    path("customers/<int:customer_id>/payments/new/", payments.payment_record_view, name="payment_record"),
    path("payments/setup/", payment_setup.payment_setup, name="payment_setup"),
    path("people/", people.people, name="people"),
    path("people/invite/", people.invite, name="people_invite"),
    path("people/<int:membership_id>/deactivate/", people.deactivate, name="person_deactivate"),
    path("people/<int:membership_id>/reactivate/", people.reactivate, name="person_reactivate"),
    path("people/<int:membership_id>/resend/", people.resend, name="person_resend"),
    path("security/", security.policy, name="security"),
    path("security/revoke-links/", security.revoke_all_links, name="security_revoke_links"),
    path("security/log/", security.security_log, name="security_log"),
    path("reminders/", reminders.overview, name="reminders"),
    path("reminders/settings/", reminders.settings_edit, name="reminder_settings"),
    path("reminders/policies/new/", reminders.policy_new, name="reminder_policy_new"),
    path("reminders/policies/<int:policy_id>/", reminders.policy_edit, name="reminder_policy"),
    path("reminders/policies/<int:policy_id>/steps/", reminders.step_new, name="reminder_step_new"),
    path("reminders/steps/<int:step_id>/", reminders.step_edit, name="reminder_step"),
    path("reminders/steps/<int:step_id>/remove/", reminders.step_delete, name="reminder_step_remove"),
    path("reminders/templates/new/", reminders.template_new, name="reminder_template_new"),
    path("reminders/templates/<int:template_id>/", reminders.template_edit, name="reminder_template"),
]
urlpatterns += (
    worklist_urls.urlpatterns + dispute_urls.urlpatterns + contract_urls.urlpatterns + client_urls.urlpatterns
)
