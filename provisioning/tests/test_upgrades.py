"""Upgrades keep data: a database at every earlier migration state, with rows in every table,
migrated to the current state keeps those rows and serves them.

The states come from the migration graph, so a new migration is covered the day it lands. Rows
are made by one builder for every model of the historical state: it fills each field from its
type (choices, MACs, sha256s, slugs, relations to rows it makes too), so fields a later release
adds need no change here. What the test compares is every field the old and new states share.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import itertools
import uuid

import pytest
from django.db import IntegrityError, connection, models, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

APPS = ("provisioning", "artifacts")
_counter = itertools.count(1)


def plan_of(app: str) -> list[tuple[str, str]]:
    """The app's migrations in the order they apply."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph  # no database needed
    (leaf,) = [node for node in graph.leaf_nodes() if node[0] == app]
    return [node for node in graph.forwards_plan(leaf) if node[0] == app]


def earlier_states() -> list[tuple[str, str]]:
    return [(app, node[1]) for app in APPS for node in plan_of(app)[:-1]]


def current_targets() -> list[tuple[str, str]]:
    return MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes()


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


def value_for(field: models.Field, n: int):
    """A plausible value of the field's type; unique per call."""
    if field.choices:
        return field.choices[0][0]
    name = field.name
    if isinstance(field, models.BooleanField):
        return True
    if isinstance(field, models.DateTimeField):
        return timezone.now() - datetime.timedelta(minutes=n)
    if isinstance(field, models.DateField):
        return datetime.date.today()
    if isinstance(field, models.GenericIPAddressField):
        return f"10.0.{n // 250}.{n % 250 + 1}"
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, models.DurationField):
        return datetime.timedelta(seconds=n)
    if isinstance(field, models.DecimalField):
        return decimal.Decimal(1)
    if isinstance(field, models.FloatField):
        return 1.5
    if isinstance(field, models.IntegerField):  # every integer kind, positive ones too
        return n
    if isinstance(field, models.JSONField):
        return {"n": n}
    if isinstance(field, models.BinaryField):
        return b"x"
    if isinstance(field, models.FileField):
        return f"upgrade-{n}.efi"
    if isinstance(field, models.SlugField):
        return f"net{n}"
    if "mac" in name:
        return f"52:54:00:00:{n // 256:02x}:{n % 256:02x}"
    if "sha256" in name or name in ("key", "digest", "token_hash"):
        return hashlib.sha256(str(n).encode()).hexdigest()[: field.max_length or 64]
    if isinstance(field, models.CharField | models.TextField):
        text = f"{name}-{n}"
        return text[-field.max_length :] if field.max_length else text
    raise AssertionError(f"no test value for {field.model.__name__}.{name} ({type(field)})")


def build(model, made: dict, full: bool = True):
    """One row of `model` (a historical model), with rows it refers to made first."""
    n = next(_counter)
    pk = model._meta.pk
    if not pk.auto_created and not isinstance(pk, models.AutoField) and pk.has_default():
        existing = model.objects.filter(pk=pk.get_default()).first()
        if existing is not None:  # a single row by design (the configuration generation)
            return existing
    values = {}
    for field in model._meta.concrete_fields:
        if field.primary_key and (field.auto_created or field.has_default()):
            continue
        if isinstance(field, models.AutoField):
            continue
        optional = field.null or field.has_default() or field.blank
        if optional and not full:
            continue
        if field.is_relation:
            target = field.related_model
            if target is model:
                continue  # no self-references
            if target not in made:
                made[target] = [build(target, made)]
            values[field.attname] = made[target][0].pk
            continue
        values[field.attname] = value_for(field, n)
    try:
        with transaction.atomic():
            return model.objects.create(**values)
    except IntegrityError:
        if not full:
            raise
        # A rule between fields (a network follows a kernel or a link, not both): only
        # what is required, the rest by its defaults.
        return build(model, made, full=False)


def snapshot(model, pk) -> dict:
    row = model.objects.filter(pk=pk).values().first()
    assert row is not None, f"{model.__name__} {pk} is gone"
    return row


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("state", earlier_states(), ids="{0[0]}.{0[1]}".format)
def test_an_earlier_database_migrates_with_its_data_intact_and_served(state, client, settings):
    try:
        # This app at the earlier state, every other one as it is now.
        targets = [state, *(leaf for leaf in current_targets() if leaf[0] != state[0])]
        old_apps = migrate(targets).loader.project_state(targets).apps
        made: dict = {}
        rows = []  # (app label, model name, pk, values)
        for model in old_apps.get_models():
            if model._meta.app_label not in APPS:
                continue
            if model not in made:
                made[model] = [build(model, made)]
            made[model].append(build(model, made))
        for model, instances in made.items():
            for instance in instances:
                rows.append(
                    (
                        model._meta.app_label,
                        model.__name__,
                        instance.pk,
                        snapshot(model, instance.pk),
                    )
                )
        new_apps = migrate(current_targets()).loader.project_state().apps
        for app_label, name, pk, before in rows:
            try:
                model = new_apps.get_model(app_label, name)
            except LookupError:
                continue  # a model a later release removed
            after = snapshot(model, pk)
            shared = before.keys() & after.keys()
            assert {k: before[k] for k in shared} == {k: after[k] for k in shared}, name
        served(client, settings, made)
    finally:
        migrate(current_targets())


def served(client, settings, made) -> None:
    """The migrated rows answer nodes: networks their scripts, nodes theirs."""
    from provisioning.models import Network, Node

    slugs = [n.slug for m, ns in made.items() if m.__name__ == "Network" for n in ns]
    networks = Network.objects.filter(slug__in=slugs)
    assert networks.count() == len(slugs)
    pointed = [network for network in networks if network.active and network.kernel_id]
    assert pointed, "no migrated network points at a kernel: the builder lost its pointers"
    for network in pointed:
        response = client.get(f"/ipxe/{network.slug}/1234")
        assert response.status_code == 200, response.content
        kernel = network.current_kernel
        assert f"set zos_source0 /kernel/sha256/{kernel.sha256}".encode() in response.content
    macs = [n.mac for m, ns in made.items() if m.__name__ == "Node" for n in ns]
    assert Node.objects.filter(mac__in=macs).count() == len(macs)
    for mac in macs:
        response = client.get(f"/provision/{mac}")
        assert response.status_code in (200, 403), (mac, response.content)


@pytest.mark.django_db(transaction=True)
def test_migrate_check_refuses_a_database_behind_this_release_in_one_clear_line():
    from django.core.management import CommandError, call_command

    call_command("migrate", "--check", verbosity=0)  # current: nothing to say
    earlier = plan_of("provisioning")[-2]
    try:
        migrate([earlier, *(leaf for leaf in current_targets() if leaf[0] != earlier[0])])
        with pytest.raises(CommandError) as refused:
            call_command("migrate", "--check", verbosity=0)
        message = str(refused.value)
        latest = plan_of("provisioning")[-1][1]
        assert f"lacks 1 migration(s) of this release (provisioning.{latest})" in message
        assert "refusing to serve" in message and "manage.py migrate" in message
    finally:
        migrate(current_targets())
