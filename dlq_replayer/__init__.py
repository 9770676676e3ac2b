"""Operators' tools that put work back on the queue: DLQ inspect/replay/purge and backfill."""
