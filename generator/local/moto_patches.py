"""Fixes to moto's in-memory services that the local stack needs to hold real volumes.

Owns: replacing, at the stack's start, the few moto methods whose cost grows with the data held, so
a pipeline of 100,000 records runs in seconds instead of minutes. moto's Kinesis shard finds its
newest sequence number by listing every record (``list(self.records.keys())[-1]``) once per record
put, and answers GetRecords by walking the shard from its first record: putting 100,000 records took
over two minutes, quadratic in the records held. The replacements give the same answers: a shard's
records are an insertion-ordered dict keyed by increasing integers (``put_record`` numbers each one
"highest + 1"), so the newest is the dict's last key and a read resumes right after the last number
it returned. moto's SQS queue counts its messages (visible, delayed, in flight) for every message
sent, to read one attribute, asking the clock anew for each message it holds: 1,000 messages took a
minute to send. The counts now ask the clock once per count; each message is compared exactly as
before (visible when its visible_at is past, delayed while its delayed_until is ahead).

Must not: change what any API answers, or patch anything when moto's shapes are not what this
module expects (then moto is left as it is, and only slower).
"""

from __future__ import annotations


def apply() -> bool:
    """Patch moto's Kinesis shard and SQS queue; False when one was not as expected (left alone)."""
    return _kinesis() & _sqs()


def _sqs() -> bool:
    try:
        from moto.sqs import models
    except ImportError:
        return False
    queue = models.Queue
    if getattr(queue, "_sqlambda_patched", False):
        return True
    names = ("messages", "approximate_number_of_messages", "approximate_number_of_messages_delayed",
             "approximate_number_of_messages_not_visible")
    if not all(isinstance(getattr(queue, n, None), property) for n in names) or not hasattr(models, "unix_time_millis"):
        return False
    clock = models.unix_time_millis

    def messages(self):
        now = clock()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def delayed(self):
        now = clock()
        return sum(1 for m in self._messages if now < m.delayed_until)

    def not_visible(self):
        now = clock()
        return sum(1 for m in self._messages if not now > m.visible_at)

    queue.messages = property(messages)
    queue.approximate_number_of_messages = property(lambda self: len(messages(self)))
    queue.approximate_number_of_messages_delayed = property(delayed)
    queue.approximate_number_of_messages_not_visible = property(not_visible)
    queue._sqlambda_patched = True
    return True


def _kinesis() -> bool:
    try:
        from moto.kinesis.models import Shard
    except ImportError:
        return False
    if getattr(Shard, "_sqlambda_patched", False):
        return True
    if not all(hasattr(Shard, name) for name in ("get_records", "get_max_sequence_number", "get_min_sequence_number")):
        return False

    def get_max_sequence_number(self) -> int:
        return next(reversed(self.records)) if self.records else 0

    def get_min_sequence_number(self) -> int:
        return next(iter(self.records)) if self.records else 0

    def get_records(self, last_sequence_id, limit):
        records = self.records
        results = []
        last = int(last_sequence_id)
        newest = get_max_sequence_number(self)
        seq = last + 1
        while seq <= newest and (limit is None or len(results) < limit):
            record = records.get(seq)
            if record is not None:
                results.append(record)
                last = seq
            seq += 1
        behind = 0.0
        if results:
            behind = records[newest].created_at - results[-1].created_at
        return results, last, int(behind * 1000)

    Shard.get_max_sequence_number = get_max_sequence_number
    Shard.get_min_sequence_number = get_min_sequence_number
    Shard.get_records = get_records
    Shard._sqlambda_patched = True
    return True
