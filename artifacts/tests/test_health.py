"""/healthz and /readyz: what a load balancer and an operator ask of an instance."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_healthz_says_the_process_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_names_each_check_and_passes_on_a_working_instance(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {
        "database",
        "kernel_store",
        "ipxe_binaries",
        "image_cache",
        "static_files",
    }
    assert all(check["ok"] for check in body["checks"].values())


def test_readyz_fails_with_the_reason_when_the_ipxe_binaries_are_missing(
    client, settings, tmp_path
):
    settings.ZOSBOOT_IPXE_DIR = tmp_path / "nothing-here"
    response = client.get("/readyz")
    assert response.status_code == 503
    check = response.json()["checks"]["ipxe_binaries"]
    assert not check["ok"] and "ipxe.lkrn not found" in check["detail"]


def test_readyz_fails_when_the_kernel_store_is_gone(client, settings, tmp_path):
    settings.ZOSBOOT_KERNELS_DIR = tmp_path / "gone"
    body = client.get("/readyz").json()
    assert body["status"] == "failing" and not body["checks"]["kernel_store"]["ok"]


def test_readyz_fails_when_the_database_does_not_answer(client, monkeypatch):
    from django.db import DatabaseError

    def broken(*args, **kwargs):
        raise DatabaseError("database is locked")

    monkeypatch.setattr(connection, "cursor", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["detail"] == "database is locked"


@pytest.fixture
def manifest_storage(settings):
    """Static files as production serves them: through collectstatic's manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }


def test_readyz_fails_when_the_static_files_were_never_collected(client, manifest_storage):
    response = client.get("/readyz")
    assert response.status_code == 503
    check = response.json()["checks"]["static_files"]
    assert not check["ok"] and "run manage.py collectstatic" in check["detail"]


def test_readyz_fails_when_collected_static_files_are_gone_and_passes_once_collected(
    client, settings, manifest_storage
):
    from django.core.management import call_command

    call_command("collectstatic", "--noinput", verbosity=0)
    body = client.get("/readyz").json()
    assert body["checks"]["static_files"]["ok"], body
    stylesheet = next(settings.STATIC_ROOT.glob("portal/portal.*.css"))
    stylesheet.unlink()
    check = client.get("/readyz").json()["checks"]["static_files"]
    assert not check["ok"] and "portal/portal." in check["detail"]
