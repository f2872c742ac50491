from django.contrib import admin
from django.urls import include, path

from openar.core import views as core_views
from openar.portal.views import home

urlpatterns = [
    path("", home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("accounts/", include("allauth.urls")),
    path("portal/", include("openar.portal.urls")),
    path("desk/", include("openar.desk.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "openar.core.views.bad_request"
handler404 = "openar.core.views.not_found"
handler500 = "openar.core.views.server_error"
