"""The on-call dashboards: operators' tools, never in the Lambda zip (the function's modules,
``processor`` and ``observability.logs/tracing/metrics``, import nothing from here).

Defined once, shown twice:

- in CloudWatch: :mod:`~observability.dashboards.widgets` (the vocabulary),
  :mod:`~observability.dashboards.alarms` and :mod:`~observability.dashboards.layout` (what is shown),
  rendered into the CloudFormation template by :mod:`~observability.dashboards.cloudwatch`
  (``make dashboard``);
- from a local run (``imgproc dashboard``): :mod:`~observability.dashboards.local_logs` reads the
  workers' logs, :mod:`~observability.dashboards.local_metrics` computes the statistics,
  :mod:`~observability.dashboards.local_view` computes every widget of the same layout into
  :mod:`~observability.dashboards.local_panels`, :mod:`~observability.dashboards.local_board` adds the
  header, and :mod:`~observability.dashboards.drawing` / :mod:`~observability.dashboards.html_page`
  draw it.
"""
