"""The worker's checkpoint: how a batch read from Kafka becomes durable, then visible to other services.

The commit order, for every batch (the one place it is carried out; the numbers are the methods' steps):
  1. one unit of work: the state the batch's valid events produce and the event ids accepted (the processor);
  2. in it, each partition's offset moved from the one the worker expects to the next, conditionally: a
     worker that lost the partition to another matches no row and the whole batch rolls back ("fenced");
  3. in it, the outbox rows: flags and score changes, each with its event_id from the store's sequence,
     and the dead letters of the batch's invalid and conflicting records;
  4. commit: all of the above, or nothing;
  5. relay: the intake reads committed outbox rows, sends them (idempotent producer, acks=all) and says which
     the broker acknowledged;
  6. those rows are deleted; the others are sent again a second later, with the same bytes and event ids;
  7. the consumer offsets are committed to Kafka: advisory, for lag tools (on every assignment the intake
     seeks to the store's offsets, which are the truth).
A crash before 4 leaves nothing behind: the batch is read again. After 4, the outbox holds whatever 5 and 6
did not finish, and it is sent again after a restart: a consumer that dedupes by event_id sees each message
once. Producer retries upstream are absorbed by event_id dedupe (step 1).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from itertools import count
from typing import Protocol

from uythac import metrics
from uythac.core.events import Rejection
from uythac.core.outcome import Outcome, Ref
from uythac.core.outputs import Message, Topics, messages
from uythac.service.ports import OffsetMoves, UnitOfWork
from uythac.service.processor import Events, Processor

log = logging.getLogger(__name__)
RELAY_ROUND = 10_000  # outbox rows the intake relays at a time
RELAY_RETRY_S = 1.0  # after a failed round, the next waits this long


class Staged(Protocol):
    """A batch as the worker hands it over: its events (or what waits for them while they are decoded), where
    each of its partitions will stand, and its dead letters."""

    offset_moves: OffsetMoves  # partition: (offset expected now, next offset)
    dead: list[Message]  # the records the intake rejected, as dead letters

    @property
    def first_digests(self) -> Mapping[str, bytes] | None: ...

    def events(self) -> Events | Callable[[], Events]: ...

    def dead_letter(self, ref: Ref, rejection: Rejection) -> Message:
        """The dead letter of one of the batch's records (for a conflict found in step 1)."""
        ...


class Relay(Protocol):
    """What the checkpoint asks of the intake (`adapters.kafka.intake.Intake`)."""

    def relay(self, limit: int) -> None: ...
    def commit_offsets(self, positions: dict[int, int]) -> None: ...


class Checkpoint:
    """Steps 1-7 for one worker's batches; it remembers whether committed outbox rows may be waiting."""

    def __init__(self, processor: Processor, topic: str, outputs: Topics) -> None:
        self.processor, self.topic, self.outputs = processor, topic, outputs
        self.relaying = False  # a round of outbox rows is with the intake
        self.unrelayed = True  # rows may be waiting (at start: maybe from before a crash)
        self._relay_after = 0.0  # after a failed round: not before this (monotonic)
        self._look_after = 0.0  # with no rows of this worker's waiting: no round before this (monotonic)
        with processor.store.unit_of_work() as uow:
            epoch = uow.get_meta("epoch")
            if epoch is None:
                epoch = uuid.uuid4().hex[:12]  # output ids stay unique across store rebuilds
                uow.set_meta("epoch", epoch)
        self.epoch = epoch

    def commit(self, batch: Staged) -> Outcome:
        """Steps 1-4. Raises what the store raises (`StoreError` when fenced); then nothing was written."""
        with self.processor.transaction() as uow:
            outcome = self.processor.apply(uow, batch.events(), first_digests=batch.first_digests)  # 1
            uow.advance_offsets(self.topic, batch.offset_moves)  # 2
            conflicts = [batch.dead_letter(ref, rejection) for ref, rejection in outcome.rejected]
            rows = [message.row() for message in self._outputs(uow, outcome) + batch.dead + conflicts]
            uow.add_outbox(rows)  # 3
        self.unrelayed = self.unrelayed or bool(rows)  # 4: committed
        return outcome

    def _outputs(self, uow: UnitOfWork, outcome: Outcome) -> list[Message]:
        """The batch's output events, numbered on from the store's sequence (`uythac:<epoch>:<n>`)."""
        first = int(uow.get_meta("output_seq") or 0)
        ids = (f"uythac:{self.epoch}:{n}" for n in count(first + 1))
        out = messages(outcome, self.processor.score, ids, self.outputs)
        uow.set_meta("output_seq", str(first + len(out)))
        return out

    def relay(self, intake: Relay) -> None:
        """Step 5: have the intake relay the next round of committed rows, unless one is in flight or a failed
        round is waiting out its second; when none of this worker's may be waiting, once a second all the same
        (other workers of the store commit rows too, and one intake relays them all)."""
        now = time.monotonic()
        if self.relaying or now < self._relay_after or (not self.unrelayed and now < self._look_after):
            return
        intake.relay(RELAY_ROUND)
        self.relaying, self.unrelayed = True, False
        self._look_after = now + RELAY_RETRY_S

    def relayed(self, acknowledged: list[int], failed: int, error: str | None, elsewhere: bool = False) -> None:
        """Step 6: a round's answers. The acknowledged rows go; the others are sent again a second later. A full
        round may have left rows behind: another follows. If another worker's intake relays, this one's rows are
        its to send: asked again a second later, in case that worker has gone."""
        self.relaying = False
        if elsewhere:
            self._relay_after = time.monotonic() + RELAY_RETRY_S
            return
        if acknowledged:
            with self.processor.store.unit_of_work() as uow:
                uow.remove_outbox(acknowledged)
        metrics.worker().outbox_sent.inc(len(acknowledged))
        failure = bool(failed) or error is not None
        if failure:
            metrics.worker().outbox_failures.inc()
            log.warning("outbox relay failed; will retry", extra={"rows": failed, "error": error})
            self._relay_after = time.monotonic() + RELAY_RETRY_S
        self.unrelayed = self.unrelayed or failure or len(acknowledged) >= RELAY_ROUND

    def lost_intake(self) -> None:
        """The intake was replaced: its round in flight went with it, and rows may be waiting."""
        self.relaying, self.unrelayed = False, True

    def advise(self, intake: Relay, positions: dict[int, int]) -> None:
        """Step 7: the consumer offsets the store now stands at, committed to Kafka for lag tools."""
        if positions:
            intake.commit_offsets(positions)
