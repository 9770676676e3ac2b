"""Fault injection for the local runtime: make the handler's own AWS calls fail, on purpose.

A spec is a comma-separated list of rules ``OPERATION[@KEY_PART]=HOW``:
- ``OPERATION``: ``s3.GetObject``, ``sqs.SendMessage``, ``s3.*``;
- ``KEY_PART``: only calls whose ``Key`` contains it (S3);
- ``HOW``: ``N`` fails the first N matching calls per key, then lets them through; ``*`` fails
  every one; ``0.05`` fails each with that probability (with varied errors: 500, 503 SlowDown,
  a read timeout).
Example: ``s3.GetObject@flaky=1,s3.GetObject@doomed=*,s3.*=0.05``. Counts are kept per worker
process. The faults are raised before the request is sent, exactly as botocore raises real ones.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError


@dataclass(frozen=True)
class Rule:
    operation: str  # "s3.GetObject", glob allowed
    key_part: str | None
    count: int | None  # fail the first `count` calls per key
    probability: float | None  # or each call with this probability; neither: always

    def matches(self, operation: str, params: dict[str, Any]) -> bool:
        if not fnmatch.fnmatchcase(operation, self.operation):
            return False
        return self.key_part is None or self.key_part in str(params.get("Key", ""))


def parse(spec: str) -> list[Rule]:
    """Rules from a spec (see the module doc); ValueError names the rule that does not parse."""
    rules = []
    for text in filter(None, (part.strip() for part in spec.split(","))):
        target, sep, how = text.partition("=")
        operation, _, key_part = target.partition("@")
        if not sep or "." not in operation:
            raise ValueError(f"fault rule {text!r} is not OPERATION[@KEY_PART]=N|*|PROBABILITY")
        count = probability = None
        if how == "*":
            pass
        elif how.isdigit():
            count = int(how)
        else:
            try:
                probability = float(how)
            except ValueError:
                raise ValueError(f"fault rule {text!r}: {how!r} is not N, * or a probability") from None
            if not 0 < probability <= 1:
                raise ValueError(f"fault rule {text!r}: probability must be in (0, 1]")
        _check_operation(text, operation)
        rules.append(Rule(operation, key_part or None, count, probability))
    return rules


SERVICES = ("s3", "sqs")  # the handler's clients that faults attach to (see install)


def _check_operation(text: str, operation: str) -> None:
    """A rule must name (or match) an operation of the handler's clients: a typo would fail nothing."""
    import botocore.session  # noqa: PLC0415 - only when there is a spec

    session = botocore.session.get_session()
    for service in SERVICES:
        names = session.get_service_model(service).operation_names
        if any(fnmatch.fnmatchcase(f"{service}.{name}", operation) for name in names):
            return
    raise ValueError(
        f"fault rule {text!r}: {operation!r} matches no operation of {' or '.join(SERVICES)} "
        "(e.g. s3.GetObject, sqs.SendMessage, s3.*)"
    )


class Injector:
    """Decides, per call, whether to fail it; thread-safe (the handler calls from a thread pool)."""

    def __init__(self, rules: list[Rule], seed: int | None = None) -> None:
        self._rules = rules
        self._seen: Counter[tuple[int, str]] = Counter()
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # noqa: S311 - chaos, not secrets
        self.injected = 0

    def __call__(self, operation: str, params: dict[str, Any]) -> None:
        for index, rule in enumerate(self._rules):
            if rule.matches(operation, params) and self._should_fail(index, rule, params):
                with self._lock:
                    self.injected += 1
                    kind = self._random.randrange(3) if rule.probability is not None else 0
                raise _error(kind, operation)

    def _should_fail(self, index: int, rule: Rule, params: dict[str, Any]) -> bool:
        with self._lock:
            if rule.count is not None:
                key = (index, str(params.get("Key", "")))
                self._seen[key] += 1
                return self._seen[key] <= rule.count
            if rule.probability is not None:
                return self._random.random() < rule.probability
            return True


def _error(kind: int, operation: str) -> Exception:
    if kind == 2:
        return ReadTimeoutError(endpoint_url=f"injected://{operation}")
    code, status = ("InternalError", 500) if kind == 1 else ("SlowDown", 503)
    response = {
        "Error": {"Code": code, "Message": "injected"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation.split(".", 1)[1])  # type: ignore[arg-type]


def attach(injector: Injector, *clients: Any) -> None:
    """Run ``injector`` before every call of ``clients`` (after parameter validation)."""
    for client in clients:
        service = client.meta.service_model.service_name

        def hook(params: dict[str, Any], model: Any, _service: str = service, **_: Any) -> None:
            injector(f"{_service}.{model.name}", params)

        client.meta.events.register(f"before-parameter-build.{service}.*", hook)


def install(spec: str) -> Injector:
    """Attach the faults of ``spec`` to the handler's own clients (built here, once per process)."""
    from processor import handler  # noqa: PLC0415 - after the worker configured the environment

    injector = Injector(parse(spec))
    runtime = handler.runtime()
    attach(injector, runtime.s3, runtime.sqs)
    return injector
