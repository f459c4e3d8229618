"""The admin, by idea: `networks` (networks, kernels, their audit trail), `fleet` (farms,
nodes, boot history), `publishing` (branch links, API tokens)."""

from django.contrib import admin

from . import fleet, networks, publishing  # noqa: F401  (each registers its model admins)

admin.site.site_header = "zosboot"
admin.site.site_title = "zosboot admin"
admin.site.index_title = "Boot service administration"
