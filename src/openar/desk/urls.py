from django.urls import path

from openar.desk import contacts, people, security, views

app_name = "desk"
urlpatterns = [
    path("", views.customers, name="customers"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer"),
    path("customers/<int:customer_id>/invoices/<int:invoice_id>/", views.invoice_detail, name="invoice"),
    path("customers/<int:customer_id>/statement.pdf", views.statement_pdf, name="statement_pdf"),
    path("documents/<int:document_id>/download", views.document_download, name="document_download"),
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
    path("customers/<int:customer_id>/view-as/", contacts.view_as_start, name="view_as_start"),
    path("view-as/stop/", contacts.view_as_stop, name="view_as_stop"),
    path("people/", people.people, name="people"),
    path("people/invite/", people.invite, name="people_invite"),
    path("people/<int:membership_id>/deactivate/", people.deactivate, name="person_deactivate"),
    path("people/<int:membership_id>/reactivate/", people.reactivate, name="person_reactivate"),
    path("people/<int:membership_id>/resend/", people.resend, name="person_resend"),
    path("security/", security.policy, name="security"),
    path("security/revoke-links/", security.revoke_all_links, name="security_revoke_links"),
    path("security/log/", security.security_log, name="security_log"),
]
