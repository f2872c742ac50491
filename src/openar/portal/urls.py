from django.urls import path

from openar.contracts import portal_urls as contract_urls
from openar.disputes import portal_urls as dispute_urls
from openar.portal import autopay, commitments, details, documents, messages, pay, views

app_name = "portal"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("invoices/", views.invoices, name="invoices"),
    path("invoices/<int:invoice_id>/", views.invoice_detail, name="invoice"),
    path("statement/", views.statement, name="statement"),
    path("statement.pdf", views.statement_pdf, name="statement_pdf"),
    path("invoices/<int:invoice_id>/invoice.pdf", documents.invoice_pdf, name="invoice_pdf"),
    path(
        "invoices/<int:invoice_id>/documents.zip",
        documents.invoice_documents_zip,
        name="invoice_documents_zip",
    ),
    path("documents/", documents.documents, name="documents"),
    path("documents/upload/", documents.upload, name="document_upload"),
    path("documents/<int:document_id>/download", views.document_download, name="document_download"),
    path("activity/", views.activity, name="activity"),
    path("messages/", messages.thread_list, name="threads"),
    path("messages/new/", messages.thread_new, name="thread_new"),
    path("messages/<int:thread_id>/", messages.thread_detail, name="thread"),
    path("details/", details.details, name="details"),
    path("step-up/", details.step_up, name="step_up"),
    path("pay/", pay.pay, name="pay"),
    path("pay/<int:payment_id>/", pay.payment, name="payment"),
    path("pay/<int:payment_id>/receipt.pdf", pay.receipt_pdf, name="payment_receipt"),
    path("autopay/", autopay.autopay, name="autopay"),
    path("promise/", commitments.promise, name="promise"),
    path("plan/", commitments.plan, name="plan"),
    path("plan/method/<int:setup_id>/", commitments.plan_method, name="plan_method_return"),
    path("autopay/setup/<int:setup_id>/", autopay.setup_return, name="autopay_return"),
]
urlpatterns += dispute_urls.urlpatterns + contract_urls.urlpatterns
