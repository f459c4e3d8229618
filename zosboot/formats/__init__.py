"""Date formats of the admin and the portal (FORMAT_MODULE_PATH)."""
