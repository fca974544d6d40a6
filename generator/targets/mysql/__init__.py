"""The MySQL / MariaDB target: one bundle under ``targets/mysql/`` plus ``sql/mysql/`` and the C
plugin in ``mysql_udf/``.

- ``target``: :class:`MysqlTarget`, the protocol of ``targets/base.py`` (facts, lock, registry,
  the step hooks, catalog status, calls);
- ``render``: spec -> artifacts (definer account, the plugin's loadable functions, the generic
  stored functions under the original's and Aurora MySQL's names, typed wrappers, grants, outbox);
- ``plugin``: building the C plugin with the server's key and placing it in plugin_dir;
- ``script`` (``render -o``), ``doctor``, ``drain`` (the outbox backend);
- ``cluster``: a throwaway MariaDB for tests, the demo and benchmarks.
"""

from sqlambda.targets.mysql.target import MysqlTarget  # noqa: F401
