"""The PostgreSQL target (PL/Python bridge).

Split by concern so each part can be read alone:
- ``render``: spec -> artifacts for the core, generic functions, invoke(), RDS compatibility and
  typed wrappers (pure; templates in ``sql/postgres/``, PL/Python bodies from ``plpython/``);
- ``outbox``: spec triggers -> artifacts for immediate batching triggers and the transactional outbox;
- ``target``: :class:`PostgresTarget`, the facts and the database side (connect, advisory lock,
  registry, execution, catalog status).
"""

from sqlambda.targets.postgres.target import PostgresTarget  # noqa: F401
