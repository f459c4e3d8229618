"""Admin logins: repeated failures lock out a user name from an address (and the lockout
expires), and with ZOSBOOT_ADMIN_REQUIRE_OTP staff need a verified TOTP device."""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.core.management.base import CommandError
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def lockout(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


def log_in(client, password="password", address="10.0.0.1", **extra):
    data = {"username": "admin", "password": password, **extra}
    return client.post(LOGIN, data, REMOTE_ADDR=address)


def test_repeated_failures_lock_the_user_out_from_that_address(client, admin_user, lockout):
    for _ in range(2):
        assert log_in(client, "wrong").status_code == 200  # the form again, with its error
    assert log_in(client, "wrong").status_code == 429
    # Locked out: even the right password is refused now, without being checked.
    refused = log_in(client)
    assert refused.status_code == 429
    assert b"Too many failed logins" in refused.content
    assert "_auth_user_id" not in client.session
    # Another address is not locked out of the same account.
    assert log_in(client, address="10.0.0.2").status_code == 302


def test_the_lockout_is_listed_for_ops_and_expires(client, admin_user, admin_client, lockout):
    for _ in range(3):
        log_in(client, "wrong")
    assert log_in(client).status_code == 429
    attempts = admin_client.get("/admin/axes/accessattempt/").content.decode()
    assert "10.0.0.1" in attempts and "admin" in attempts

    # Fifteen minutes later the failures have cooled off.
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )
    response = log_in(client)
    assert response.status_code == 302 and response.url == "/admin/"


def test_the_lockout_counts_the_address_the_trusted_proxy_saw(
    client, admin_user, lockout, settings
):
    settings.ZOSBOOT_TRUST_PROXY = True
    for _ in range(3):
        client.post(
            LOGIN, {"username": "admin", "password": "wrong"},
            REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.4",
        )  # fmt: skip
    assert AccessAttempt.objects.get().ip_address == "198.51.100.4"
    other = client.post(
        LOGIN, {"username": "admin", "password": "password"},
        REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.5",
    )  # fmt: skip
    assert other.status_code == 302  # the proxy's own address is not what was locked out


def test_api_tokens_are_not_logins(client, lockout):
    for _ in range(5):
        response = client.get("/api/v1/kernels", HTTP_AUTHORIZATION="Bearer nonsense")
        assert response.status_code == 401
        assert client.post("/api/kernel", HTTP_COOKIE="token=nonsense").status_code == 401
    assert not AccessAttempt.objects.exists()


@pytest.fixture
def require_otp(settings):
    settings.ZOSBOOT_ADMIN_REQUIRE_OTP = True


def test_without_a_verified_device_staff_cannot_reach_the_admin(client, admin_user, require_otp):
    response = log_in(client)
    assert response.status_code == 200  # the form again: a token is needed
    assert b"otp_token" in response.content
    assert client.get("/admin/").status_code == 302

    # A password login alone (a session without a second factor) does not count either.
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/provisioning/node/").status_code == 302


def test_with_a_verified_device_staff_reach_the_admin(client, admin_user, require_otp):
    device = TOTPDevice.objects.create(user=admin_user, name="phone", confirmed=True)
    code = f"{totp(device.bin_key):06d}"
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert log_in(client, otp_token=wrong).status_code == 200
    # A wrong code makes the device wait before it checks another: guessing is throttled.
    throttled = log_in(client, otp_token=code)
    assert (
        throttled.status_code == 200 and b"Verification temporarily disabled" in throttled.content
    )
    device.refresh_from_db()
    device.throttle_reset()

    response = log_in(client, otp_token=code)
    assert response.status_code == 302 and response.url == "/admin/"
    index = client.get("/admin/")
    assert index.status_code == 200
    # The admin's own customisations and registrations are still there.
    assert b"Boot service administration" in index.content
    assert b"/admin/provisioning/node/" in index.content
    assert client.get("/admin/provisioning/node/").status_code == 200


def test_without_the_setting_a_password_is_enough(client, admin_user, settings):
    settings.ZOSBOOT_ADMIN_REQUIRE_OTP = False
    assert log_in(client).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_enrol_totp_prints_the_uri_and_the_secret(admin_user, capsys):
    call_command("enrol_totp", "admin")
    out = capsys.readouterr().out
    device = TOTPDevice.objects.get(user=admin_user)
    uri = re.search(r"URI:\s+(otpauth://totp/\S+)", out).group(1)
    assert "issuer=zosboot" in uri and "secret=" in uri
    secret = re.search(r"secret:\s+([A-Z2-7=]+)", out).group(1)
    assert secret in uri.replace("%3D", "=") or secret.rstrip("=") in uri
    assert device.confirmed

    with pytest.raises(CommandError, match="already has a TOTP device"):
        call_command("enrol_totp", "admin")
    with pytest.raises(CommandError, match="no user"):
        call_command("enrol_totp", "nobody")


def test_enrol_totp_reset_replaces_the_device(admin_user, capsys):
    call_command("enrol_totp", "admin")
    old_key = TOTPDevice.objects.get(user=admin_user).key
    call_command("enrol_totp", "admin", "--reset")
    assert list(TOTPDevice.objects.filter(user=admin_user).values_list("key", flat=True)) != [
        old_key
    ]
    assert TOTPDevice.objects.filter(user=admin_user).count() == 1


def test_a_backup_code_logs_in_once(client, admin_user, require_otp, capsys):
    call_command("enrol_totp", "admin", "--backup-codes")
    codes = capsys.readouterr().out.strip().splitlines()[-10:]
    assert len(set(codes)) == 10
    backup = StaticDevice.objects.get(user=admin_user).persistent_id
    assert log_in(client, otp_device=backup, otp_token=codes[0]).status_code == 302
    assert client.get("/admin/").status_code == 200
    client.logout()
    assert log_in(client, otp_device=backup, otp_token=codes[0]).status_code == 200  # used up
    StaticDevice.objects.get(user=admin_user).throttle_reset()
    assert log_in(client, otp_device=backup, otp_token=codes[1]).status_code == 302
