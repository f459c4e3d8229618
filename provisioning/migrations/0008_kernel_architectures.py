# Kernels per architecture: a kernel records what it is built for; a network points at one
# kernel per architecture (the amd64 fields keep their names), and each switch says which.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("provisioning", "0007_boot_history_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="kernel",
            name="arch",
            field=models.CharField(
                choices=[("amd64", "amd64 (x86-64)"), ("arm64", "arm64 (AArch64)")],
                default="amd64",
                help_text="The machines it is built for. A network boots one kernel per "
                "architecture.",
                max_length=8,
                verbose_name="architecture",
            ),
        ),
        migrations.AddField(
            model_name="kernelchange",
            name="arch",
            field=models.CharField(
                choices=[("amd64", "amd64 (x86-64)"), ("arm64", "arm64 (AArch64)")],
                default="amd64",
                help_text="Which of the network's pointers changed: what machines of this "
                "architecture boot.",
                max_length=8,
                verbose_name="architecture",
            ),
        ),
        migrations.AddField(
            model_name="network",
            name="kernel_arm64",
            field=models.ForeignKey(
                blank=True,
                help_text="The kernel arm64 machines of this network boot (served as "
                "/kernel/net/arm64/SLUG.efi). Empty: arm64 machines are told there is none.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="networks_arm64",
                to="provisioning.kernel",
                verbose_name="arm64 kernel",
            ),
        ),
        migrations.AddField(
            model_name="network",
            name="link_arm64",
            field=models.ForeignKey(
                blank=True,
                help_text="Instead of an arm64 kernel: follow this branch link on arm64 machines.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="networks_arm64",
                to="provisioning.branchlink",
                verbose_name="arm64 branch link",
            ),
        ),
    ]
