"""The disputes pages of the desk, added to its URLs (and its namespace) by openar.desk.urls."""

from django.urls import URLPattern, path

from openar.disputes import desk_views

urlpatterns: list[URLPattern] = [
    path("disputes/", desk_views.queue, name="disputes"),
    path("disputes/reasons/", desk_views.reasons, name="dispute_reasons"),
    path("disputes/<int:dispute_id>/", desk_views.detail, name="dispute"),
    path("disputes/<int:dispute_id>/review/", desk_views.review_start, name="dispute_review"),
    path("disputes/<int:dispute_id>/assign/", desk_views.assign, name="dispute_assign"),
    path("disputes/<int:dispute_id>/reply/", desk_views.reply, name="dispute_reply"),
    path("disputes/<int:dispute_id>/resolve/", desk_views.resolve, name="dispute_resolve"),
]
