"""The follow step of `imgproc dlq replay --follow` (:mod:`dlq_replayer.follow`) as the command runs it:
after the replay, with Ctrl-C stopping it cleanly and the live tally on stderr; then the summary and the
exit status. Kept apart from :mod:`dlq_replayer.dlq` so that the command line stays one screen an action.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dlq_replayer import follow, moves, render
from toolkit import aws
from toolkit.errors import aws_message
from toolkit.interrupts import CtrlCStops
from toolkit.terminal import is_terminal, show

EXIT_INTERRUPTED = 130  # as the replay itself after Ctrl-C (dlq_replayer.dlq.INTERRUPTED)


def run(
    args: argparse.Namespace,
    sqs: Any,
    tracker: follow.Tracker,
    replayed: moves.MoveReport,
    code: int,
) -> int:
    """Follow what the replay sent (not after Ctrl-C or an error of the replay), print the tally
    (with ``--json``: the replay's document with a ``follow`` object), return the exit status."""
    stopped = "the replay was interrupted" if replayed.interrupted else None
    stopped = stopped or (f"the replay stopped: {replayed.error}" if replayed.error else None)
    report = None
    if stopped is None:
        report = follow.FollowReport(args.follow_timeout or follow.DEFAULT_TIMEOUT)
        stop = threading.Event()
        quiet = args.json and not is_terminal(sys.stderr)  # --json | jq: stdout and stderr stay clean
        display = follow.TallyDisplay(sys.stderr, render.follow_live, render.follow_line, enabled=not quiet)
        notice = "imgproc dlq replay: stopping the follow after the calls in flight"
        try:
            with CtrlCStops(stop, notice), display:
                s3 = aws.client(args, "s3")
                follow.follow(s3, sqs, tracker, report, stop=stop, on_round=display.update)
        except KeyboardInterrupt:
            report.interrupted = True
        except (ClientError, BotoCoreError) as exc:
            report.error = aws_message(exc) or str(exc)
    status = _exit_status(code, report)
    if args.json:
        doc = replayed.to_json(args.visibility)
        doc["follow"] = None if report is None else report.to_json()
        doc["ok"] = doc["ok"] and status == 0  # the document's verdict is the exit status's
        print(json.dumps(doc), flush=True)
    else:
        show(render.render_follow(report, stopped), sys.stdout)
    return status


def _exit_status(code: int, report: follow.FollowReport | None) -> int:
    """The replay's status when it failed or nothing was followed; else 130 after Ctrl-C, 0 when the
    follow is ok, 1 when not."""
    if code or report is None:
        return code
    if report.interrupted:
        return EXIT_INTERRUPTED
    return 0 if report.ok else 1
