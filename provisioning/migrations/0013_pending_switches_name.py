from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('provisioning', '0012_boot_reports'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='pendingswitch',
            options={'ordering': ['-changed_at', '-pk'], 'verbose_name': 'pending kernel switch', 'verbose_name_plural': 'pending kernel switches'},
        ),
    ]
