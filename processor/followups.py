"""What follows a reconcile when the optional features are on: the catalog item and the notification.

Both happen only *after* the renditions are written and the source is verified unchanged, so their
failure can never cost a second render: it is a transient :class:`~processor.errors.CatalogFailed` or
:class:`~processor.errors.NotificationFailed`, SQS delivers the record again, the retry finds every
rendition current (the skip path) and completes only what is missing.

**Rendered** (:meth:`Followups.after_render`): publish the ``rendered`` notification, then put the
catalog item, carrying ``notified = "<etag>:<recipe>"`` when the publish succeeded. One write per
render. The catalog is written even when the publish failed (without ``notified``), so that the retry
only has to publish.

**Skipped** (:meth:`Followups.after_skip`): with everything off this costs nothing (the HEADs were
all). With the catalog on it costs one GetItem: when the item is missing or describes another version,
status or recipe (the write failed, the catalog was enabled later, a recipe changed), it is rebuilt:
each rendition is read back (they are small) for its size, and the source's header (a ranged GET,
no decode) for its format and dimensions. Never a render.

Notifications on a skip, the delicate part: a skip is normally *not* announced (nothing changed). It
is announced only when the record is a redelivery (``ApproximateReceiveCount`` > 1, or a message
replayed from the DLQ, ``replay-count`` > 0: an earlier attempt of this very work may have rendered
and then failed to publish) **and** the catalog, when on, does not say this version and recipe were
already announced (``notified``). So:
- catalog on: a failed publish is completed exactly once by the retry, except in the rare case where
  the publish succeeded and the catalog write after it failed (announced again: at least once);
- catalog off: there is nowhere to remember a publish, so every redelivered skip publishes again;
  subscribers must treat notifications as at-least-once (key them by ``source_key`` + ``source_etag``).
A first delivery that skips (a duplicate event) never publishes: the attempt that rendered did.

**Removed** (:meth:`Followups.after_removal`): the item is deleted (``DELETE_ON_REMOVE``) or marked
``deleted`` (renditions kept), conditionally: only a record of a version not newer than the moment
the source was found missing. A re-upload within that same second is caught by the HEAD that
follows (the source is back: retried, and the retry restores the item). No notification.

**Dead-lettered** (:meth:`Followups.after_dead_letter`, from the batch, *before* the DLQ send so that
a failure here retries the message instead of dead-lettering it twice): a ``dead-lettered``
notification with ``error_class``, and a catalog item with ``status = dead-lettered``. Only when the
handler dead-letters itself (``DLQ_URL`` set): SQS's own redrive after the last retry is invisible
to the handler.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from observability import logs
from observability.outcomes import Outcome
from processor import catalog, describe, imaging, markers, notify, storage
from processor.config import Config
from processor.describe import Chosen
from processor.errors import CatalogFailed, NotificationFailed, ProcessingError, SideEffectFailed
from processor.events import ObjectRef


@dataclass(frozen=True)
class Followups:
    """The catalog and the notifications of one batch; built by :meth:`create`."""

    config: Config
    s3: Any
    dynamodb: Any | None
    sns: Any | None

    @classmethod
    def create(cls, config: Config, *, s3: Any, dynamodb: Any = None, sns: Any = None) -> Followups:
        """:class:`NoFollowups` (every step a no-op) when neither the catalog nor the notifications
        are configured."""
        if not config.catalog_table and not config.notify_topic_arn:
            return NoFollowups(config, s3, None, None)
        if config.catalog_table and dynamodb is None:
            raise ValueError("CATALOG_TABLE is set: a DynamoDB client is required")
        if config.notify_topic_arn and sns is None:
            raise ValueError("NOTIFY_TOPIC_ARN is set: an SNS client is required")
        return cls(config, s3, dynamodb, sns)

    @property
    def catalog_on(self) -> bool:
        return bool(self.config.catalog_table)

    @property
    def notify_on(self) -> bool:
        return bool(self.config.notify_topic_arn)

    # -----------------------------------------------------------------------------------------------
    # the reconcile outcomes

    def after_render(
        self,
        ref: ObjectRef,
        source: storage.SourceHead,
        info: imaging.SourceInfo,
        chosen: Sequence[Chosen],
        *,
        stage: imaging.Stage = imaging.no_stage,
    ) -> None:
        """Announce and record a source whose renditions were (partly) rendered just now."""
        with stage("describe"):
            entries = describe.rendition_entries(self.s3, self.config.dest_bucket, chosen)
        recipe = _recipe(chosen)
        failure: SideEffectFailed | None = None
        published = False
        if self.notify_on:
            try:
                with stage("notify"):
                    self._publish_rendered(ref, source, entries)
                published = True
            except Exception as exc:
                failure = _failed(NotificationFailed, "publish", exc)
        if self.catalog_on:
            try:
                with stage("catalog"):
                    self._put_rendered(
                        ref, source, info=info, entries=entries, recipe=recipe, published=published
                    )
            except Exception as exc:
                failure = failure or _failed(CatalogFailed, "put", exc)
        if failure is not None:
            raise failure

    def after_skip(
        self,
        ref: ObjectRef,
        source: storage.SourceHead,
        chosen: Sequence[Chosen],
        *,
        redelivered: bool,
        stage: imaging.Stage = imaging.no_stage,
    ) -> None:
        """Every rendition was current: complete whatever an earlier attempt left undone (module doc)."""
        recipe = _recipe(chosen)
        token = _token(source.etag, recipe)
        item = None
        if self.catalog_on:
            with stage("catalog"), _failing_as(CatalogFailed, "get"):
                item = catalog.get(self.dynamodb, self._table, ref.key)
        item_current = catalog.is_current(item, source.etag, recipe)
        announced = item_current and item is not None and item.get("notified") == token
        need_publish = self.notify_on and redelivered and not announced
        need_item = self.catalog_on and not item_current
        if not (need_publish or need_item):
            return
        if item_current and item is not None:  # only the announcement is missing: the item has it all
            entries = [catalog.RenditionEntry(**entry) for entry in item["renditions"]]
        else:
            with stage("describe"):
                entries = describe.rendition_entries(self.s3, self.config.dest_bucket, chosen)
        published = False
        if need_publish:
            with stage("notify"), _failing_as(NotificationFailed, "publish"):
                self._publish_rendered(ref, source, entries)
            published = True
        if need_item:
            with stage("describe"):
                info = describe.probe_source(self.s3, ref, source, self.config.max_source_bytes)
            with stage("catalog"), _failing_as(CatalogFailed, "put"):
                self._put_rendered(
                    ref, source, info=info, entries=entries, recipe=recipe, published=published
                )
        elif published and self.catalog_on:
            with stage("catalog"), _failing_as(CatalogFailed, "update"):
                catalog.set_notified(self.dynamodb, self._table, ref.key, source.etag, token)

    def after_removal(
        self,
        ref: ObjectRef,
        *,
        checked_at: int,
        renditions_kept: bool,
        stage: imaging.Stage = imaging.no_stage,
    ) -> None:
        """The source is gone: delete its catalog item, or mark it deleted when its renditions stay."""
        with stage("catalog"):
            if not self.catalog_on:
                return
            with _failing_as(CatalogFailed, "remove"):
                removed = catalog.remove(
                    self.dynamodb,
                    self._table,
                    ref.key,
                    checked_at=checked_at,
                    keep=renditions_kept,
                    processed_at=markers.utc_timestamp(),
                )
            self._log().info(
                "catalog.marked_deleted" if renditions_kept else "catalog.deleted",
                key=ref.key,
                removed=removed,
            )

    def after_dead_letter(
        self, ref: ObjectRef, source: storage.SourceHead | None, error: ProcessingError
    ) -> None:
        """Announce and record a source that failed permanently (before its message goes to the DLQ)."""
        processed_at = markers.utc_timestamp()
        if self.notify_on:
            message = notify.dead_letter_message(
                bucket=ref.bucket,
                key=ref.key,
                etag=source.etag if source else None,
                error_class=error.error_class,
                error_message=str(error),
                processed_at=processed_at,
            )
            with _failing_as(NotificationFailed, "publish"):
                message_id = notify.publish(self.sns, self._topic, message)
            self._log().info("notification.published", outcome=Outcome.DEAD_LETTERED, message_id=message_id)
        if self.catalog_on and source is not None:
            item = catalog.dead_letter_item(
                bucket=ref.bucket,
                key=ref.key,
                etag=source.etag,
                last_modified=catalog.epoch_seconds(source.last_modified),
                size=source.size,
                error_class=error.error_class,
                processed_at=processed_at,
            )
            with _failing_as(CatalogFailed, "put"):
                self._put(ref, source, item)

    # -----------------------------------------------------------------------------------------------
    # helpers

    @property
    def _table(self) -> str:
        assert self.config.catalog_table is not None
        return self.config.catalog_table

    @property
    def _topic(self) -> str:
        assert self.config.notify_topic_arn is not None
        return self.config.notify_topic_arn

    @staticmethod
    def _log() -> Any:
        return logs.get_logger("processor")

    def _put_rendered(
        self,
        ref: ObjectRef,
        source: storage.SourceHead,
        *,
        info: imaging.SourceInfo,
        entries: Sequence[catalog.RenditionEntry],
        recipe: str,
        published: bool,
    ) -> None:
        item = catalog.rendered_item(
            bucket=ref.bucket,
            key=ref.key,
            etag=source.etag,
            last_modified=catalog.epoch_seconds(source.last_modified),
            size=source.size,
            source_format=info.format,
            width=info.width,
            height=info.height,
            renditions=entries,
            recipe=recipe,
            processed_at=markers.utc_timestamp(),
            notified=_token(source.etag, recipe) if published else None,
        )
        self._put(ref, source, item)

    def _publish_rendered(
        self, ref: ObjectRef, source: storage.SourceHead, entries: Sequence[catalog.RenditionEntry]
    ) -> None:
        message = notify.rendered_message(
            bucket=ref.bucket,
            key=ref.key,
            etag=source.etag,
            renditions=entries,
            processed_at=markers.utc_timestamp(),
        )
        message_id = notify.publish(self.sns, self._topic, message)
        self._log().info("notification.published", outcome=Outcome.RENDERED, message_id=message_id)

    def _put(self, ref: ObjectRef, source: storage.SourceHead, item: dict[str, Any]) -> None:
        """Conditional put; a newer record wins quietly; a same-second tie goes to the current version."""
        log = self._log()
        outcome = catalog.put(self.dynamodb, self._table, item)
        if outcome.result is catalog.PutResult.TIE:
            now = storage.head_source(self.s3, ref.bucket, ref.key)
            existing_etag = (outcome.existing or {}).get("source_etag")
            if now is not None and now.etag == source.etag and isinstance(existing_etag, str):
                outcome = catalog.put(self.dynamodb, self._table, item, replacing=existing_etag)
        if outcome.result is catalog.PutResult.WRITTEN:
            log.info("catalog.written", status=item["status"])
        else:
            existing = outcome.existing or {}
            log.info(
                "catalog.stale",
                reason="a newer record is already there",
                status=item["status"],
                existing_etag=existing.get("source_etag"),
                existing_last_modified=existing.get("source_last_modified"),
            )


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


class NoFollowups(Followups):
    """Neither the catalog nor the notifications: nothing follows a reconcile, not even a timing."""

    after_render = after_skip = after_removal = after_dead_letter = staticmethod(_nothing)


def _recipe(chosen: Sequence[Chosen]) -> str:
    return catalog.recipe_digest((c.candidate.key, c.candidate.digest) for c in chosen)


def _token(etag: str, recipe: str) -> str:
    return f"{etag}:{recipe}"


def _failed(kind: type[SideEffectFailed], action: str, exc: BaseException) -> SideEffectFailed:
    if isinstance(exc, SideEffectFailed):
        return exc
    return kind(f"{action} failed: {type(exc).__name__}: {exc}")


@contextmanager
def _failing_as(kind: type[SideEffectFailed], action: str) -> Iterator[None]:
    """Turn any exception in the block into ``kind`` (transient); keep ours as they are."""
    try:
        yield
    except SideEffectFailed:
        raise
    except Exception as exc:
        raise _failed(kind, action, exc) from exc
