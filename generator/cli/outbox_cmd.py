"""CLI: ``sqlambda drain`` and ``sqlambda outbox status | retry-dead``.

Only parses options, calls :mod:`sqlambda.api` and prints (rich for people, ``--json`` for
scripts and alerting). ``outbox status --alert-depth/--alert-age`` exits with the outbox exit code
(12) when a threshold is passed, so a cron job or a monitoring check can page on it directly; with
``--json`` the status then arrives as the error document's ``details``.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from typing import Callable

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from sqlambda import api
from sqlambda.cli.common import console, dsn_option, emit, err_console, json_option, styled
from sqlambda.delivery.model import DrainStats
from sqlambda.errors import OutboxError, SqlambdaError
from sqlambda.targets import TARGETS

schema_option = click.option("--schema", default=None,
                             help="Schema holding the outbox (the spec's postgres.schema, default sqlambda; "
                                  "Oracle: the connecting user's).")
target_option = click.option("--target", default="postgres", show_default=True, type=click.Choice(sorted(TARGETS)),
                             help="Database kind.")


def register(cli: click.Group) -> None:
    """Attach ``drain`` and the ``outbox`` group to the top-level group."""
    cli.add_command(drain_cmd)
    cli.add_command(outbox_group)


@click.command("drain")
@target_option
@dsn_option
@schema_option
@click.option("--once", "mode", flag_value="once", default=True, help="Send what is ready now, then exit (default).")
@click.option("--follow", "mode", flag_value="follow", help="Keep running; wake on LISTEN/NOTIFY. Stop with Ctrl-C / SIGTERM.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Parallel drain workers (threads, one connection each).")
@click.option("--endpoint-url", default=None, help="Lambda endpoint (default: $AWS_ENDPOINT_URL, then the spec's aws.endpoint_url).")
@click.option("--request-timeout-ms", type=click.IntRange(100, 900000), default=30000, show_default=True)
@click.option("--progress-every", type=click.FloatRange(0.1, 86400), default=5.0, show_default=True,
              help="Seconds between progress lines (rows/s, queue depth) on stderr when not on a terminal.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default=None,
              help="Log one line per batch to stderr (default: info with --follow when piped; warning with --once "
                   "and on a terminal, which shows a live progress line instead).")
@json_option
def drain_cmd(target: str, dsn: str, schema: str | None, mode: str, workers: int, endpoint_url: str | None,
              request_timeout_ms: int, progress_every: float, log_level: str | None, as_json: bool) -> None:
    """Deliver committed outbox events to Lambda, in batches, with retries and a dead-letter table.

    Exits 12 when the run dead-lettered an event, or found events and could deliver none of them.
    """
    live = err_console.is_terminal and not as_json
    # on a terminal the live progress line replaces the per-batch lines, unless a level is asked for
    _log_to_stderr(log_level or ("warning" if live or mode == "once" else "info"))
    stop = threading.Event()
    if mode == "follow":
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: stop.set())
        if not as_json:
            err_console.print(f"draining the {target} outbox with {workers} worker(s); Ctrl-C to stop")
    with _DrainProgress(lambda: api.outbox_status(dsn, target, schema=schema).depth, live=live,
                        bounded=mode == "once", interval=progress_every) as progress:
        stats = api.drain(dsn, target, schema=schema, follow=mode == "follow", workers=workers,
                          endpoint_url=endpoint_url, request_timeout_ms=request_timeout_ms, stop=stop,
                          on_batch=progress.on_batch)

    def human() -> None:
        console.print(styled("delivered ", (str(stats.delivered), "bold"), f" event(s) in {stats.batches} batch(es); "
                             f"{stats.failed_events} failed in {stats.failed_batches} batch(es), {stats.dead} dead-lettered"))
        if stats.compared:
            console.print(styled("compared ", (str(stats.compared), "bold"), " modernize shadow call(s) with their Lambda"))
        if stats.last_error:
            console.print(styled(("last error:", "yellow"), " ", stats.last_error))

    if not stats.ok and as_json:
        raise OutboxError(_failed(stats), details=stats.to_dict())
    emit(stats.to_dict(), as_json, human)
    if not stats.ok:
        raise OutboxError(_failed(stats), hint="see `sqlambda outbox status`; dead letters are in the outbox_dead "
                                               "table (`sqlambda outbox retry-dead` requeues them)")


class _DrainProgress:
    """Rows per second and queue depth while a drain runs: a live line on a terminal (a bar when the
    backlog at the start is known), else one plain line on stderr every ``interval`` seconds (from
    the first interval on, so a short run prints nothing extra)."""

    def __init__(self, depth: Callable[[], int], *, live: bool, bounded: bool, interval: float = 5.0) -> None:
        self.depth_of, self.live, self.bounded, self.interval = depth, live, bounded, interval
        self.delivered, self.started = 0, time.monotonic()
        self._lock, self._done = threading.Lock(), threading.Event()
        self._bar: Progress | None = None

    def on_batch(self, trigger: str, rows: int) -> None:
        with self._lock:
            self.delivered += rows
        if self._bar is not None:
            self._bar.update(self._task, completed=self.delivered)

    def _depth(self) -> int | None:
        try:
            return self.depth_of()
        except SqlambdaError:
            return None  # the database is away: the drain itself says so

    def __enter__(self) -> "_DrainProgress":
        if self.live:
            self._bar = Progress(TextColumn("drain"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                                 TextColumn("depth {task.fields[depth]}"), console=err_console, transient=True)
            self._task = self._bar.add_task("drain", total=(self._depth() or None) if self.bounded else None,
                                            rate="", depth="?")
            self._bar.start()
        threading.Thread(target=self._tick, daemon=True, name="drain-progress").start()
        return self

    def _tick(self) -> None:
        last_n, last_t = 0, time.monotonic()
        while not self._done.wait(1.0 if self.live else self.interval):
            now = time.monotonic()
            with self._lock:
                n = self.delivered
            dt = max(now - last_t, 1e-6)
            rate = (n - last_n) / dt
            last_n, last_t = n, now
            depth = self._depth()
            if self._bar is not None:
                self._bar.update(self._task, rate=f"{rate:,.0f} rows/s", depth="?" if depth is None else f"{depth:,}")
            else:
                err_console.print(f"drain: delivered {n} rows ({rate:.0f} rows/s over the last {dt:.1f}s), "
                                  f"queue depth {'?' if depth is None else depth}")

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._bar is not None:
            self._bar.stop()


def _failed(stats: DrainStats) -> str:
    if stats.dead:
        return f"drain dead-lettered {stats.dead} event(s): {stats.last_error}"
    return f"drain delivered nothing: {stats.failed_events} event(s) failed; last error: {stats.last_error}"


def _log_to_stderr(level: str) -> None:
    """One plain line per record on stderr (never rich markup: the text holds remote error messages)."""
    logger = logging.getLogger("sqlambda.drain")
    logger.setLevel(level.upper())
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s drain: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


@click.group("outbox")
def outbox_group() -> None:
    """Inspect and administer the outbox queue."""


@outbox_group.command("status")
@target_option
@dsn_option
@schema_option
@click.option("--alert-depth", type=int, default=None, help="Exit 12 when more events than this are queued (e.g. 1000).")
@click.option("--alert-age", type=float, default=None, help="Exit 12 when the oldest queued event is older than this many seconds (e.g. 300).")
@json_option
def status_cmd(target: str, dsn: str, schema: str | None, alert_depth: int | None, alert_age: float | None,
               as_json: bool) -> None:
    """Queue depth, in-flight, waiting-for-retry and dead events, and the age of the oldest, per route and per destination (Lambda, stream, queue, bus)."""
    st = api.outbox_status(dsn, target, schema=schema)
    alerts = []
    if alert_depth is not None and st.depth > alert_depth:
        alerts.append(f"depth {st.depth} > {alert_depth}")
    if alert_age is not None and (st.oldest_age_seconds or 0) > alert_age:
        alerts.append(f"oldest event {st.oldest_age_seconds:.0f}s > {alert_age:g}s")
    data = {**st.to_dict(), "alerts": alerts}

    def human() -> None:
        age = "-" if st.oldest_age_seconds is None else f"{st.oldest_age_seconds:.1f}s"
        console.print(styled((f"{st.schema}.outbox", "bold"), ": depth ", (str(st.depth), "bold"), ", oldest ", (age, "bold"),
                             f", in flight {st.in_flight}, waiting retry {st.waiting_retry}, dead {st.dead}"))
        table = Table("route", "table", "destination", "queued", "ready", "waiting", "in flight", "dead", "oldest (s)")
        for t in st.triggers:
            where = t.lambda_name or "?" if (t.sink or "lambda") == "lambda" else f"{t.sink} {t.lambda_name}"
            table.add_row(t.trigger, t.table or "-", where, str(t.queued), str(t.ready),
                          str(t.waiting_retry), str(t.in_flight), str(t.dead),
                          "-" if t.oldest_age_seconds is None else f"{t.oldest_age_seconds:.1f}")
        console.print(table)
        sinks = Table("destination", "routes", "depth", "in flight", "waiting", "dead", "lag (s)")
        for d in st.sinks:
            sinks.add_row(f"{d.kind} {d.target}", ", ".join(d.routes), str(d.depth), str(d.in_flight),
                          str(d.waiting_retry), str(d.dead), "-" if d.lag_seconds is None else f"{d.lag_seconds:.1f}")
        console.print(sinks)
        for a in alerts:
            console.print(styled(("alert:", "bold red"), " ", a))

    if alerts and as_json:
        # one JSON document per run: the status goes into the error's details
        raise OutboxError(f"outbox alert: {'; '.join(alerts)}", details=data)
    emit(data, as_json, human)
    if alerts:
        raise OutboxError(f"outbox alert: {'; '.join(alerts)}")


@outbox_group.command("retry-dead")
@target_option
@dsn_option
@schema_option
@click.option("--trigger", default=None, help="Only this trigger's dead events.")
@click.option("--id", "ids", type=int, multiple=True, help="Only these chunks: the number between the txid and the dot of an idempotency key (repeatable).")
@json_option
def retry_dead_cmd(target: str, dsn: str, schema: str | None, trigger: str | None, ids: tuple[int, ...],
                   as_json: bool) -> None:
    """Move dead-lettered events back into the queue (same id and idempotency key, attempts reset)."""
    n = api.retry_dead(dsn, target, schema=schema, trigger=trigger, ids=list(ids) or None)
    emit({"requeued": n}, as_json,
         lambda: console.print(styled("requeued ", (str(n), "bold"),
                                      " dead-lettered event(s); run `sqlambda drain` to deliver them")))
