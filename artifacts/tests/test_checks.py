from django.core import checks


def test_missing_ipxe_binaries_are_system_check_errors(settings, tmp_path):
    settings.ZOSBOOT_IPXE_DIR = tmp_path / "nothing-installed"
    errors = [m for m in checks.run_checks() if m.id == "artifacts.E001"]
    assert errors
    assert any("ipxe.lkrn not found" in e.msg and "setup/install-ipxe.sh" in e.msg for e in errors)


def test_a_complete_toolchain_passes_the_checks():
    assert not [m for m in checks.run_checks() if m.id.startswith("artifacts.")]


def test_unwritable_artifacts_dir_is_reported(settings, tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    settings.ZOSBOOT_ARTIFACTS_DIR = tmp_path / "a-file" / "cache"
    assert "artifacts.E002" in [m.id for m in checks.run_checks()]


def test_a_not_yet_created_artifacts_dir_is_fine(settings, tmp_path):
    settings.ZOSBOOT_ARTIFACTS_DIR = tmp_path / "new" / "deeper" / "cache"
    assert "artifacts.E002" not in [m.id for m in checks.run_checks()]
