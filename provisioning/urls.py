from django.urls import path

from . import views
from .paths import boot_target_patterns

app_name = "provisioning"

urlpatterns = [
    *boot_target_patterns("ipxe", views.ipxe_script, "ipxe"),
    path("provision/<str:mac>", views.provision, name="provision"),
    path("provision/<str:mac>/", views.provision),
    path("kernel/net/<str:net>.efi", views.kernel_for_network, name="network-kernel"),
    path("kernel/<str:name>", views.kernel_by_name, name="kernel"),
]
