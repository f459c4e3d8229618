"""The URLs nodes ask for, alone: what the node handler resolves against
(provisioning.frontdoor), so a boot script is found without walking past the admin and the API.
The same patterns and error pages as zosboot/urls.py (which includes these apps too)."""

from django.urls import include, path

from zosboot.urls import handler400, handler403, handler404, handler500  # noqa: F401

urlpatterns = [
    path("", include("provisioning.urls")),
    path("", include("artifacts.urls")),
]
