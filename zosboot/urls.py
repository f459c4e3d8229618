from django.contrib import admin
from django.urls import include, path

from provisioning.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("provisioning.urls")),
    path("", include("artifacts.urls")),
    path("", include("portal.urls")),
]

handler400 = "provisioning.http.error_400"
handler403 = "provisioning.http.error_403"
handler404 = "provisioning.http.error_404"
handler500 = "provisioning.http.error_500"
