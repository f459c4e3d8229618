"""Give a staff user a second factor: a TOTP device for an authenticator app, and optionally
static backup codes for the day the phone is lost."""

from __future__ import annotations

import base64

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

BACKUP_CODES = 10


class Command(BaseCommand):
    help = (
        "Enrol USER for the admin's second factor: prints the otpauth:// URI (and the base32 "
        "secret) to add to an authenticator app. --reset replaces a lost or compromised device "
        f"(the old one stops working); --backup-codes issues {BACKUP_CODES} one-time codes, "
        "replacing earlier ones."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--reset", action="store_true", help="replace the user's TOTP device with a new one"
        )
        parser.add_argument(
            "--backup-codes",
            action="store_true",
            help=f"issue {BACKUP_CODES} one-time backup codes (earlier ones stop working)",
        )

    def handle(self, *args, username: str, reset: bool, backup_codes: bool, **options):
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f"no user {username!r}") from None
        enrolled = TOTPDevice.objects.devices_for_user(user).exists()
        if enrolled and not reset and not backup_codes:
            raise CommandError(
                f"{username} already has a TOTP device; --reset replaces it (after a lost "
                "phone), --backup-codes issues new one-time codes"
            )
        with transaction.atomic():
            if reset or not enrolled:
                self._enrol(user)
            if backup_codes:
                self._backup_codes(user)
        if not user.is_staff:
            self.stderr.write(
                self.style.WARNING(f"{username} is not staff: the admin will not let them in")
            )

    def _enrol(self, user) -> None:
        TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=True)
        secret = base64.b32encode(device.bin_key).decode()
        self.stdout.write(
            self.style.SUCCESS(f"TOTP device for {user.get_username()}; add it to the app:")
        )
        self.stdout.write(f"URI:    {device.config_url}")
        self.stdout.write(f"secret: {secret} (base32, 6 digits, 30 s)")

    def _backup_codes(self, user) -> None:
        StaticDevice.objects.filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name="backup codes", confirmed=True)
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
        self.stdout.write(
            self.style.SUCCESS("Backup codes, each good once (enter one as the OTP token):")
        )
        for code in codes:
            self.stdout.write(code)
