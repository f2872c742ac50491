"""Routes of the collector's desk (the worklist, callbacks, call and letter logging,
assignment, bulk actions), added to the desk's URL conf."""

from django.urls import path

from openar.desk import worklist

urlpatterns = [
    path("worklist/", worklist.worklist, name="worklist"),
    path("worklist/callbacks/", worklist.callbacks, name="worklist_callbacks"),
    path("worklist/bulk/", worklist.bulk, name="worklist_bulk"),
    path("callbacks/<int:task_id>/done/", worklist.callback_done, name="callback_done"),
    path("customers/<int:customer_id>/calls/new/", worklist.call_new, name="call_new"),
    path("customers/<int:customer_id>/letters/new/", worklist.letter_new, name="letter_new"),
    path("customers/<int:customer_id>/assign/", worklist.customer_assign, name="customer_assign"),
    path(
        "customers/<int:customer_id>/creditor-notes/read/",
        worklist.creditor_notes_read,
        name="creditor_notes_read",
    ),
]
