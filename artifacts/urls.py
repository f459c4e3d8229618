from django.urls import path

from provisioning.paths import boot_target_patterns

from . import views
from .views import STATIC_TARGETS

app_name = "artifacts"

urlpatterns = [
    pattern
    for fmt in ("iso", "usb", "uefi", "uefimg", "krn")
    for pattern in boot_target_patterns(fmt, views.image, fmt, fmt=fmt)
] + [
    route
    for target in STATIC_TARGETS
    for route in (
        path(target, views.static_image, {"target": target}, name=target),
        path(f"{target}/", views.static_image, {"target": target}),
    )
]
