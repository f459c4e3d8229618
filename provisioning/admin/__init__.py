"""The admin, by idea: `home` (the index: the fleet's state), `networks` (networks, what they
boot and their audit trail, confirmed switches), `kernels` (kernels and their records),
`fleet` (farms, nodes, their trail), `history` (boot events, who runs what), `boots` (which
boots failed today, a machine's timeline), `publishing` (branch links, API tokens); `search`
reads what operators type, `filters` the lists' filters, `export` writes any list as CSV."""

from django.contrib import admin

# Each registers its model admins.
from . import boots, fleet, history, kernels, networks, publishing  # noqa: F401

admin.site.site_header = "zosboot"
admin.site.site_title = "zosboot admin"
admin.site.index_title = "Boot service administration"
