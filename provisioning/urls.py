from django.urls import path

from . import metrics, publishing, views
from .paths import boot_target_patterns

app_name = "provisioning"

urlpatterns = [
    *boot_target_patterns("ipxe", views.ipxe_script, "ipxe"),
    path("provision/<str:mac>", views.provision, name="provision"),
    path("provision/<str:mac>/", views.provision),
    path("kernel/net/<str:net>.efi", views.kernel_for_network, name="network-kernel"),
    path(
        "kernel/net/<str:arch>/<str:net>.efi", views.kernel_for_network, name="network-kernel-arch"
    ),
    path("kernel/sha256/<str:digest>", views.kernel_by_content, name="kernel-content"),
    path("kernel/<str:name>", views.kernel_by_name, name="kernel"),
    path("boot-report/<str:token>/<str:milestone>", views.boot_report, name="boot-report"),
    path("metrics", metrics.metrics, name="metrics"),
    # The build pipeline's calls, as the service zosboot replaces took them.
    path("api/kernel", publishing.publish_kernel, name="api-publish-kernel"),
    path("api/symlink/<str:link>/<str:kernel>", publishing.point_link, name="api-point-link"),
]
