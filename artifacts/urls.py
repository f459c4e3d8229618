from django.urls import path

from provisioning.paths import boot_target_patterns

from . import health, views
from .formats import IMAGE_FORMATS, STATIC_TARGETS

app_name = "artifacts"

urlpatterns = (
    [
        path("healthz", health.healthz, name="healthz"),
        path("readyz", health.readyz, name="readyz"),
    ]
    + [
        pattern
        for fmt in IMAGE_FORMATS
        for pattern in boot_target_patterns(fmt, views.image, fmt, fmt=fmt)
    ]
    + boot_target_patterns("pxe-kit", views.farm_pxe_kit, "pxe-kit", depths=3)
    + [
        path("pxe-kit-provision", views.provisioning_pxe_kit, name="pxe-kit-provision"),
        path("pxe-kit-provision/", views.provisioning_pxe_kit),
    ]
    + [
        route
        for target in STATIC_TARGETS
        for route in (
            path(target, views.static_image, {"target": target}, name=target),
            path(f"{target}/", views.static_image, {"target": target}),
        )
    ]
)
