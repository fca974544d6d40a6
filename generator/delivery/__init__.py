"""Delivery: how queued change events leave the database, whatever the database.

The seam between a target's outbox (which claims events, records progress and dead letters) and
where the events go. ``model`` holds what every target's drainer shares (routes, failures, run
statistics, queue status); ``sink`` the one interface a batch is sent through (:class:`~sqlambda.delivery.sink.Sink`)
and its Lambda implementation; ``envelope`` the change-event envelope, specified once as a JSON
Schema shipped with the package. A new destination (Kinesis, Firehose, SQS, EventBridge) is a new
Sink, with no change to any target.

Must not: import a database driver or anything from ``sqlambda.targets``.
"""
