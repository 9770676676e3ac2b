"""The operator's terminal output (toolkit.terminal): rich on a terminal, today's plain lines elsewhere."""

from __future__ import annotations

import io
import re

import pytest

from backfill import BackfillProgress, Summary
from imgproc import counters
from toolkit.terminal import Table, is_terminal, plain, show
from toolkit.throughput import Progress


class Tty(io.StringIO):
    """A captured stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def text(stream: io.StringIO) -> str:
    """What a person sees: the escape sequences (colours, cursor moves) taken out."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", stream.getvalue())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_is_terminal_asks_the_stream() -> None:
    assert is_terminal(Tty())
    assert not is_terminal(io.StringIO())
    assert not is_terminal(object())  # type: ignore[arg-type]  # no isatty at all
    closed = io.StringIO()
    closed.close()
    assert not is_terminal(closed)


def test_progress_on_a_terminal_shows_count_bar_rate_and_eta() -> None:
    stream, clock = Tty(), Clock()
    progress = Progress("dlq replay: scanned", total=100, stream=stream, interval=0, clock=clock)
    for _ in range(4):
        clock.now += 1.0
        progress.advance(10)
    progress.close()
    shown = text(stream)
    assert "dlq replay: scanned: 40/100" in shown
    assert "(10/s)" in shown  # 40 in 4 s
    assert "ETA 0:00:06" in shown  # 60 left at 10/s
    assert "━" in shown  # the bar


def test_progress_of_an_unknown_total_has_no_eta() -> None:
    stream, clock = Tty(), Clock()
    progress = Progress("dlq inspect: read", stream=stream, interval=0, clock=clock)
    clock.now += 2.0
    progress.advance(20)
    progress.close()
    shown = text(stream)
    assert "dlq inspect: read: 20" in shown
    assert "(10/s)" in shown
    assert "ETA" not in shown


def test_backfill_progress_on_a_terminal_draws_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")  # a terminal this wide (a narrower one crops the line)
    summary = Summary(listed=1500, filtered=200, current=100, enqueued=1190, failed=10)
    summary.last_key = "original/k01499.jpg"
    stream = Tty()
    progress = BackfillProgress("backfill", stream=stream, summary=summary, interval=0)
    progress.advance(1500)
    progress.close()
    assert "backfill: listed 1,500, enqueued 1,190, skipped 300, failed 10; at original/k01499.jpg" in text(
        stream
    )


TABLE = Table(["error class", "messages"], [["ImageDecodeError", "12"], ["[bold]x[/bold]", "3"]], right=(1,))


def test_a_table_on_a_terminal_is_drawn_by_rich_with_its_rows() -> None:
    stream = Tty()
    show(["DLQ images-dlq", TABLE], stream)
    lines = text(stream).splitlines()
    assert lines[0] == "DLQ images-dlq"
    assert re.match(r"error class\s+messages$", lines[1])
    assert re.match(r"ImageDecodeError\s+12$", lines[2])
    assert re.match(r"\[bold\]x\[/bold\]\s+3$", lines[3])  # printed as it is, never read as markup


def test_an_indented_table_on_a_terminal_stays_indented() -> None:
    stream = Tty()
    samples = Table(["error class", "replays"], [["ImageDecodeError", "2"]], right=(1,), indent=2)
    show(["samples", samples], stream)
    lines = text(stream).splitlines()
    assert lines[0] == "samples"
    assert re.match(r"  error class +replays$", lines[1])
    assert re.match(r"  ImageDecodeError +2$", lines[2])


def test_off_a_terminal_a_table_is_the_plain_lines() -> None:
    stream = io.StringIO()
    show(["DLQ images-dlq", Table(["a", "n"], [["x", "1"]], indent=2)], stream)
    assert stream.getvalue() == "DLQ images-dlq\n  a  n\n  x  1\n"
    assert plain(["head", TABLE]) == "\n".join(
        ["head", "error class       messages", "ImageDecodeError        12", "[bold]x[/bold]           3"]
    )


class FakeRuntime:
    """Counts that change, a notice, then the poller gives up (or Ctrl-C)."""

    def __init__(self, ctrl_c: bool = False) -> None:
        self.totals = dict.fromkeys(counters.COUNTERS, 0)
        self._notices = ["worker 1 restarted"]
        self._rounds = 0
        self._ctrl_c = ctrl_c
        self.failure: str | None = None

    def take_notices(self) -> list[str]:
        notices, self._notices = self._notices, []
        return notices

    def tick(self, _: float) -> None:
        self._rounds += 1
        self.totals["received"] += 1200
        self.totals["rendered"] += 1100
        if self._rounds == 2:
            if self._ctrl_c:
                raise KeyboardInterrupt
            self.failure = "the poller gave up"


def test_up_counters_on_a_terminal_are_a_live_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    runtime, stream = FakeRuntime(ctrl_c=True), Tty()
    monkeypatch.setattr(counters.time, "sleep", runtime.tick)
    assert counters.serve_until_interrupted(runtime, stream=stream)
    shown = text(stream)
    assert shown.startswith("worker 1 restarted\n")
    assert re.search(
        r"^received +rendered +skipped +deleted +ignored +dead-lettered +retried +function errors$",
        shown,
        re.M,
    )
    assert re.search(r"^ +2,400 +2,200 +0 +0 +0 +0 +0 +0$", shown, re.M)  # the last counts stay on screen
    assert shown.endswith("stopping: letting in-flight batches finish\n")


def test_up_counters_off_a_terminal_are_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime, stream = FakeRuntime(), io.StringIO()
    monkeypatch.setattr(counters.time, "sleep", runtime.tick)
    assert not counters.serve_until_interrupted(runtime, stream=stream)  # the poller gave up
    assert stream.getvalue() == (
        "worker 1 restarted\n"
        "received 0 | rendered 0 | skipped 0 | deleted 0 | ignored 0 | dead-lettered 0 | retried 0 | "
        "function errors 0\n"
    )  # one line per COUNTER_INTERVAL: the next change came too soon


def test_a_bar_on_the_terminal_leaves_a_piped_stdout_alone(capsys: pytest.CaptureFixture[str]) -> None:
    stream = Tty()
    progress = Progress("dlq purge: scanned", total=10, stream=stream, interval=0)
    print('{"action": "purge"}')  # stdout is a pipe here (`--json | jq`): it keeps what is printed to it
    progress.advance(10)
    progress.close()
    assert capsys.readouterr().out == '{"action": "purge"}\n'
    assert '{"action"' not in stream.getvalue()


def test_a_ctrl_c_right_after_the_banner_is_a_normal_stop() -> None:
    """A user or script reacting to "Ctrl-C to stop" the moment it appears must get the normal stop
    (up exits 0), never "interrupted while starting" (130): seen in CI under load."""
    runtime, stream = FakeRuntime(), io.StringIO()

    def banner_then_ctrl_c() -> None:
        print("Ctrl-C to stop.", file=stream)
        raise KeyboardInterrupt

    assert counters.serve_until_interrupted(runtime, stream=stream, announce=banner_then_ctrl_c)
    assert stream.getvalue().endswith("stopping: letting in-flight batches finish\n")
