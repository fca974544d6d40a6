"""Helpers of the MySQL / MariaDB tests: the test spec, mysqld's environment, a small server handle."""

from __future__ import annotations

from pathlib import Path

import pymysql

from sqlambda.targets.mysql.cluster import MariaDB

SPEC = """\
project: mytest
mysql:
  generic_roles: [lambda_caller]
functions:
  - name: order_status
    lambda: echo
    args: {order_id: bigint, note: text, flag: boolean}
    returns: {type: text, path: Status}
    roles: [app_reader]
  - name: order_echo
    lambda: echo
    args: {order_id: bigint, tags: jsonb}
    roles: [app_reader]
  - name: order_notify
    lambda: echo
    mode: async
    args: {msg: text}
    roles: [app_reader]
  - name: boom
    lambda: my_boom
    args: {}
    roles: [app_reader]
triggers:
  - name: orders_out
    table: shop.orders
    lambda: my_rec
    mode: sync
    columns: [id, status]
    retry: {base_delay_ms: 50, max_delay_ms: 200}
"""

#: mysqld's environment besides the stack's endpoint and credentials: short timeouts keep the fault tests quick
SERVER_ENV = {"SQLAMBDA_READ_TIMEOUT_MS": "3000", "SQLAMBDA_CONNECT_TIMEOUT_MS": "1000", "SQLAMBDA_MAX_ATTEMPTS": "3"}

BOOM = '''
def handler(event, context):
    if event.get("oversized"):
        return "x" * (7 * 1024 * 1024)
    raise ValueError("the boom Lambda failed on purpose")
'''


def server_env(stack, **extra: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": stack.endpoint_url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1", **SERVER_ENV, **extra}


class Server:
    def __init__(self, db: MariaDB, spec: Path) -> None:
        self.db, self.spec = db, spec

    @property
    def dsn(self) -> str:
        return self.db.dsn

    def connect(self, user: str = "root", password: str = "", **kw) -> pymysql.Connection:
        return pymysql.connect(host=self.db.host, port=self.db.port, user=user, password=password, autocommit=True,
                               charset="utf8mb4", **kw)

    def one(self, sql: str, params=None, **kw):
        with self.connect(**kw) as c, c.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
            return row[0] if row else None

    def run(self, *statements: str, **kw) -> None:
        with self.connect(**kw) as c, c.cursor() as cur:
            for st in statements:
                cur.execute(st)
