from django.db import migrations

DEFAULT_NETWORKS = [
    ("prod", "Production"),
    ("test", "Testnet"),
    ("dev", "Devnet"),
    ("qa", "QA-net"),
]


def create_networks(apps, schema_editor):
    Network = apps.get_model("provisioning", "Network")
    for slug, name in DEFAULT_NETWORKS:
        Network.objects.get_or_create(slug=slug, defaults={"name": name})


def remove_networks(apps, schema_editor):
    Network = apps.get_model("provisioning", "Network")
    Network.objects.filter(slug__in=[slug for slug, _ in DEFAULT_NETWORKS], kernel=None).delete()


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0001_initial")]

    operations = [migrations.RunPython(create_networks, remove_networks)]
