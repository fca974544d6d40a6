"""``FakePlpy``: stands in for the ``plpy`` module where pure logic needs it (a module of its own name,
not conftest, so importing it can never pick another directory's conftest)."""


class FakePlpy:
    class Error(Exception):
        pass

    GUCS = ("endpoint_url", "region", "connect_timeout_ms", "request_timeout_ms", "max_attempts")

    def __init__(self, database=None, session=None, cluster=None):
        self.database = dict(database or {})
        self.cluster = dict(cluster or {})
        self.session = dict(session or {})
        self.executed = []
        self.warnings = []

    def prepare(self, sql, types=None):
        return ("plan", sql)

    @staticmethod
    def _config(values):
        return [f"sqlambda.{k}={v}" for k, v in values.items()] or None

    def execute(self, plan_or_sql, *args):
        self.executed.append(plan_or_sql)
        if isinstance(plan_or_sql, tuple):
            row = {"cluster": self._config(self.cluster), "database": self._config(self.database)}
            for g in self.GUCS:
                row[g] = self.session.get(g, self.database.get(g, self.cluster.get(g)))
            return [row]
        return []

    def warning(self, message, hint=None):
        self.warnings.append((message, hint))
