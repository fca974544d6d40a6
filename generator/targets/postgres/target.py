"""PostgresTarget: placeholder until the installer work lands it (connect, lock, registry, execute)."""
