from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("provisioning.urls")),
    path("", include("artifacts.urls")),
    path("", include("portal.urls")),
]

handler400 = "provisioning.views.error_400"
handler403 = "provisioning.views.error_403"
handler404 = "provisioning.views.error_404"
handler500 = "provisioning.views.error_500"
