"""The service's settings plus one bare view (bench/bare_urls.py): the framework's own floor,
measured on the same server, with the same middleware, as the boot script it is compared to."""

from zosboot.settings import *  # noqa: F403

ROOT_URLCONF = "bare_urls"
