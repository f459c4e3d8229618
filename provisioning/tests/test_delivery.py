"""How kernel and image bytes leave: X-Accel-Redirect to the front server, or Django's own
stream with a cap across workers and a readable 503 beyond it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from provisioning import delivery
from provisioning.models import BootEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def front_server(settings):
    settings.ZOSBOOT_FILE_DELIVERY = "nginx"


def test_front_server_delivery_answers_an_internal_redirect_and_no_bytes(
    client, kernel, front_server
):
    response = client.get(f"/kernel/{kernel.name}")
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/_zosboot/internal/kernels/{kernel.name}"
    assert response.content == b""
    assert response["ETag"] == f'"{kernel.sha256}"'
    assert response["X-Checksum-Sha256"] == kernel.sha256
    assert response["Content-Disposition"] == f'attachment; filename="{kernel.name}"'
    # Django still decides: the download is in the boot history.
    assert BootEvent.objects.filter(kind="kernel", kernel_name=kernel.name).count() == 1


def test_front_server_delivery_of_the_network_kernel_and_of_head(
    client, prod, kernel, front_server
):
    response = client.get("/kernel/net/prod.efi")
    assert response["X-Accel-Redirect"] == f"/_zosboot/internal/kernels/{kernel.name}"
    head = client.head("/kernel/net/prod.efi")
    assert head["X-Accel-Redirect"] == response["X-Accel-Redirect"]
    assert BootEvent.objects.filter(kind="kernel").count() == 1  # HEAD is not a download


def test_front_server_delivery_still_answers_304_and_missing_files_itself(
    client, kernel, front_server
):
    response = client.get(f"/kernel/{kernel.name}", HTTP_IF_NONE_MATCH=f'"{kernel.sha256}"')
    assert response.status_code == 304 and "X-Accel-Redirect" not in response
    kernel.file.delete(save=False)
    response = client.get(f"/kernel/{kernel.name}")
    assert response.status_code == 503 and "X-Accel-Redirect" not in response
    assert b"is missing on the server" in response.content


def test_front_server_delivery_of_an_image_points_into_the_artifact_store(
    client, prod, front_server
):
    response = client.get("/iso/prod/1234")
    assert response.status_code == 200
    target = response["X-Accel-Redirect"]
    assert target.startswith("/_zosboot/internal/artifacts/") and target.endswith(".iso")
    assert response["X-Zosboot-Cache"] == "miss"
    assert response["Content-Type"] == "application/x-iso9660-image"
    assert response["Content-Disposition"] == 'attachment; filename="zos-prod-1234.iso"'


def test_the_site_config_sends_from_the_stores_the_service_names(settings, tmp_path):
    from provisioning import frontserver

    config = frontserver.site_config("127.0.0.1:8000", "unix:/run/zosboot.sock")
    for store in ("kernels", "artifacts"):
        location = f"location {delivery.INTERNAL_PREFIX}{store}/ {{\n        internal;"
        assert location in config
        assert f"alias {delivery.store_root(store).resolve()}/;" in config
    assert "add_header X-Checksum-Sha256 $upstream_http_x_checksum_sha256;" in config
    with pytest.raises(ValueError, match="cannot go into an nginx config"):
        frontserver.site_config("127.0.0.1:80; include /etc/passwd", "unix:/x")


def _stream(client, name):
    response = client.get(f"/kernel/{name}")
    assert response.status_code == 200
    return response


def _finish(response):
    # Read to the end, as a node does; the server then closes the file, freeing the slot.
    assert b"".join(response.streaming_content) == b"kernel bytes"


def test_django_delivery_sheds_beyond_the_cap_with_a_jittered_retry_after(
    client, prod, kernel, settings
):
    settings.ZOSBOOT_MAX_STREAMS = 2
    held = [_stream(client, kernel.name) for _ in range(2)]
    shed = [client.get(f"/kernel/{kernel.name}") for _ in range(20)]
    assert {response.status_code for response in shed} == {503}
    waits = {int(response["Retry-After"]) for response in shed}
    assert waits <= set(range(2, 8)) and len(waits) > 1  # spread, not one value for all
    body = shed[0].content.decode()
    assert body.startswith("#!ipxe") and "sending kernels to many nodes" in body
    # Scripts are never refused because of kernel load.
    assert client.get("/ipxe/prod").status_code == 200
    for response in held:
        _finish(response)
    _finish(_stream(client, kernel.name))


def test_each_worker_keeps_two_threads_for_scripts(client, kernel, settings):
    settings.ZOSBOOT_MAX_STREAMS = 100
    settings.ZOSBOOT_THREADS = 4
    held = [_stream(client, kernel.name) for _ in range(2)]
    assert client.get(f"/kernel/{kernel.name}").status_code == 503
    _finish(held[0])
    _finish(_stream(client, kernel.name))
    _finish(held[1])


def test_the_stream_cap_holds_across_processes_and_frees_a_dead_workers_slot(settings):
    # A slot is an flock on a file: another worker process holding one counts too, and its
    # slot comes free when it dies, however it dies.
    settings.ZOSBOOT_MAX_STREAMS = 1
    directory = settings.ZOSBOOT_RUN_DIR / "streams"
    directory.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(directory / 'slot-0.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert delivery.streams.acquire() is None
    finally:
        holder.kill()
        holder.wait()
    slot = delivery.streams.acquire()
    assert slot is not None
    slot.release()
