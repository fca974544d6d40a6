"""The Oracle target (Java stored procedure + PL/SQL).

Split by concern, like the PostgreSQL target:
- ``render``: spec -> artifacts (pure; templates in ``sql/oracle/``, Java sources from ``oracle_java/``);
- ``script``: the SQL*Plus ``install.sql`` / ``uninstall.sql`` for DBAs who run them by hand, and the
  statement classifier the installer shares;
- ``target``: :class:`OracleTarget`, the facts and the database side (python-oracledb thin mode,
  DBMS_LOCK, registry, status checks after each statement).
"""

from sqlambda.targets.oracle.target import OracleTarget  # noqa: F401
