"""The admin, by idea: `networks` (networks, what they boot and their audit trail, confirmed
switches through `confirm`), `kernels` (kernels and their records), `fleet` (farms, nodes,
their trail), `history` (boot events, who runs what), `publishing` (branch links, API tokens);
`search` reads what operators type, `filters` the lists' filters."""

from django.contrib import admin

# Each registers its model admins.
from . import fleet, history, kernels, networks, publishing  # noqa: F401

admin.site.site_header = "zosboot"
admin.site.site_title = "zosboot admin"
admin.site.index_title = "Boot service administration"
