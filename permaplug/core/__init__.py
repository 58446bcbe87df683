"""permaplug's small core: hook specs, plugin manager, contracts, schema, atomic output."""
