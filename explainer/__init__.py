"""`imgproc explain` and `imgproc enqueue`: why is this key's thumbnail missing or old, and the fix.

For a source key (or an ``s3://`` URL, or a rendition key mapped back to its source) `explain` puts
side by side everything that decides the key's fate: the source's HEAD, each configured rendition's
idempotency marker, the dead letters that name the key (read without consuming them), the catalog item
and the handler's last log lines; then it says in one line what state the key is in and which command
fixes it. `enqueue` is the usual fix: one synthetic S3 event per key on the ingest queue, in the
backfill's message shape, so that the handler reconciles the key again.

Modules: :mod:`explainer.keys` (what the operator typed -> the source key, through the processor's own
rendition naming), :mod:`explainer.verdict` (pure: observations in, a verdict out),
:mod:`explainer.probe` (the AWS reads, clients passed in), :mod:`explainer.handler_logs` (the key's log
lines: the local run's files, or a CloudWatch Logs Insights query), :mod:`explainer.render` (the
screen and the JSON), :mod:`explainer.enqueue` (the synthetic events). The command lines live in
:mod:`imgproc.explain` and :mod:`imgproc.enqueue`.
"""
