"""The PostgreSQL target (PL/Python bridge), one bundle under ``targets/postgres/`` plus ``sql/postgres/``.

- ``target``: :class:`PostgresTarget`, the protocol of ``targets/base.py`` (facts, lock, registry,
  the step hooks, catalog status);
- ``render``: spec -> artifacts for the core, generic functions, invoke(), settings(), RDS
  compatibility and typed wrappers (pure; PL/Python bodies from ``plpython/``);
- ``triggers``: spec triggers -> immediate batching triggers and the transactional outbox;
- ``calls`` (invoke and verify --probe through the database), ``doctor``;
- ``drain``: the outbox backend (claim, send through a delivery Sink, record, dead letters, status);
- ``connection`` (the one psycopg connect) and ``cluster`` (a throwaway cluster for tests and the demo).
"""

from sqlambda.targets.postgres.target import PostgresTarget  # noqa: F401
