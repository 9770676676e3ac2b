"""What the operator tools share: where AWS is (:mod:`~toolkit.aws`), the stack's outputs
(:mod:`~toolkit.stack`), the deployed function's configuration (:mod:`~toolkit.function`), option
types and durations, queue attributes, dead-letter messages, text tables, pacing and progress, and
how output is drawn on a terminal (:mod:`~toolkit.terminal`: rich there, plain lines elsewhere).

It sits between the Lambda's code (``processor``, ``observability``), which it may import, and the
tools (``dlq_replayer``, ``backfill``) and the command line (``imgproc``), which import it; it imports
none of them (the import-linter contracts in ``setup.cfg``).
"""
