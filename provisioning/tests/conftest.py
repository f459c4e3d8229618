from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from provisioning.models import Kernel, Network


@pytest.fixture
def make_kernel(db):
    def make(
        name: str = "zero-os-development-amd64.efi", content: bytes = b"kernel bytes"
    ) -> Kernel:
        kernel = Kernel(name=name)
        kernel.file.save(name, ContentFile(content), save=False)
        kernel.save()
        return kernel

    return make


@pytest.fixture
def kernel(make_kernel) -> Kernel:
    return make_kernel()


@pytest.fixture
def prod(kernel) -> Network:
    network = Network.objects.get(slug="prod")
    network.switch_kernel(kernel)
    return network
