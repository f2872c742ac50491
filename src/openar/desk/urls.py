from django.urls import path

from openar.desk import views

app_name = "desk"
urlpatterns = [
    path("", views.customers, name="customers"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer"),
    path("customers/<int:customer_id>/invoices/<int:invoice_id>/", views.invoice_detail, name="invoice"),
    path("customers/<int:customer_id>/statement.pdf", views.statement_pdf, name="statement_pdf"),
    path("documents/<int:document_id>/download", views.document_download, name="document_download"),
]
