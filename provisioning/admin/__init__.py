"""The admin, by idea: `networks` (networks, kernels, their audit trail), `fleet` (farms,
nodes, their trail), `history` (boot events, who runs what), `boots` (which boots failed
today), `publishing` (branch links, API tokens)."""

from django.contrib import admin

from . import boots, fleet, history, networks, publishing  # noqa: F401  (each registers its model admins)

admin.site.site_header = "zosboot"
admin.site.site_title = "zosboot admin"
admin.site.index_title = "Boot service administration"
