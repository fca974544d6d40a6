"""The Oracle target (Java stored procedure + PL/SQL), one bundle under ``targets/oracle/`` plus ``sql/oracle/``.

Split by concern, like the PostgreSQL target:
- ``target``: :class:`OracleTarget`, the protocol of ``targets/base.py`` (python-oracledb thin mode,
  DBMS_LOCK, registry, status checks after each statement, non-transactional DDL);
- ``render``: spec -> artifacts (pure; templates in ``sql/oracle/``, Java sources from ``oracle_java/``);
- ``script``: the SQL*Plus ``install.sql`` / ``uninstall.sql`` for DBAs who run them by hand, and the
  statement classifier the installer shares;
- ``calls`` (invoke through the database), ``doctor``, ``drain`` (the outbox backend: the PL/SQL
  drainer run from a client session, queue status, retry-dead).
"""

from sqlambda.targets.oracle.target import OracleTarget  # noqa: F401
