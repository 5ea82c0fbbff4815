"""Work that many processes share through one store: a job's items (pair ids) handed out in leased chunks.

Any number of workers (`w2s trees build`, `w2s annotate`), on one machine or many, run the same command
against one store. Each enqueues the job's items (idempotent: the first one inserts, the others find the
rows there), then claims chunks: a claim leases the items to the worker until `lease_until`, and a
heartbeat thread extends the worker's live leases every lease/3. A worker killed mid-chunk stops
heartbeating; when its lease runs out the chunk is claimable again. Items that already have a result
(a tree, an annotation) count as done, so a rerun adds nothing.

PostgreSQL: a claim is one `UPDATE … WHERE item IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`, so
claimers never wait on each other and never get the same item. SQLite has no SKIP LOCKED; its
transactions begin IMMEDIATE (w2s.store), which serialises claimers, so the same statement hands out
each item once there too (processes on one machine; SQLite over a network file system is unsafe).

A job is its name (e.g. `trees <strong> <config hash>`) and its item list: workers started with the same
selection share one job; another selection is another job (it still skips items that have a result).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import func, update
from sqlmodel import Session, select

from w2s.store.db import Job, WorkItem, chunks, get_engine, session_scope, utcnow

Stored = Callable[[Session, Sequence[str]], set[str]]
"""Which of these items already have a result (read in the caller's session)."""


class PairSource(Protocol):
    def claim(self) -> list[str]:
        """More pair ids to work on now; [] = none claimable at the moment."""

    def done(self, ids: Sequence[str]) -> None:
        """These are saved (or built elsewhere): never hand them out again."""

    def finished(self) -> bool:
        """True when nothing is left anywhere (not even leased to other workers)."""

    def status(self) -> str:
        """A short human phrase for the progress line, e.g. "12 leased by other workers"."""


@dataclass
class WorkOptions:
    """How one worker takes part in shared work (`w2s trees build`, `w2s annotate`)."""

    chunk_size: int | None = field(default=None, metadata={"cli": {"min": 1}})
    """Pairs claimed at a time from the work shared with other workers [default: --in-flight or --batch-size]."""
    lease_seconds: float = field(default=300.0, metadata={"cli": {"min": 1.0}})
    """A claimed chunk is this worker's for this long, renewed while it runs; a killed worker's chunk goes
    to the others when it ends."""
    worker_id: str | None = None
    """This worker's name in the store [default: host-pid]."""

    def queue_kwargs(self, batch: int) -> dict:
        """WorkQueue's keyword arguments (chunks of `batch` unless chunk_size is set)."""
        return {
            "worker": self.worker_id,
            "chunk_size": self.chunk_size or batch,
            "lease_seconds": self.lease_seconds,
        }


def default_worker() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def job_key(job: str, items: Sequence[str]) -> str:
    """Job.key: the job's name and its item list, hashed."""
    digest = hashlib.sha256("\n".join([job, *items]).encode()).hexdigest()
    return digest[:24]


class WorkQueue:
    """A PairSource over the store: `job`'s `items`, shared with every worker that opens the same job.

    Use as a context manager (or call `close()`): it stops the heartbeat and gives back this worker's
    claims that are not done, so the others take them at once instead of after the lease.
    """

    def __init__(
        self,
        url: str | None,
        job: str,
        items: Sequence[str],
        *,
        stored: Stored | None = None,
        worker: str | None = None,
        chunk_size: int = 8,
        lease_seconds: float = WorkOptions.lease_seconds,
        clock: Callable[[], float] = time.time,
        heartbeat: bool = True,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk size must be at least 1, not {chunk_size}")
        if lease_seconds <= 0:
            raise ValueError(f"lease must be positive, not {lease_seconds} s")
        self.url = url
        self.job = job
        self.worker = worker or default_worker()
        self.chunk_size = chunk_size
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.stored = stored
        self.heartbeat_error: str | None = None
        self._postgres = get_engine(url).dialect.name == "postgresql"
        self.job_id = self._enqueue(list(dict.fromkeys(items)))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if heartbeat:
            self._thread = threading.Thread(
                target=self._beat, name=f"lease heartbeat {self.worker}", daemon=True
            )
            self._thread.start()

    # ------------------------------------------------------------------------------------------ PairSource

    def claim(self) -> list[str]:
        """Lease up to chunk_size items nobody holds (never leased, released, or whose lease ran out)."""
        while True:
            with session_scope(self.url) as session:
                now = self.clock()
                free = (
                    select(WorkItem.item)
                    .where(
                        WorkItem.job_id == self.job_id,
                        WorkItem.done == False,  # noqa: E712
                        (WorkItem.lease_until == None) | (WorkItem.lease_until < now),
                    )  # noqa: E711
                    .order_by(WorkItem.position)
                    .limit(self.chunk_size)
                )
                if self._postgres:
                    free = free.with_for_update(skip_locked=True)
                rows = session.execute(
                    update(WorkItem)
                    .where(WorkItem.job_id == self.job_id, WorkItem.item.in_(free))
                    .values(worker=self.worker, lease_until=now + self.lease_seconds)
                    .returning(WorkItem.item, WorkItem.position)
                ).all()
                if not rows:
                    return []
                ids = [item for item, _ in sorted(rows, key=lambda r: r[1])]
                have = self.stored(session, ids) if self.stored else set()
                if have:
                    self._mark_done(session, have)
                todo = [i for i in ids if i not in have]
            if todo:
                return todo
            # the whole chunk had results (built by a run outside this job): claim again

    def done(self, ids: Sequence[str]) -> None:
        with session_scope(self.url) as session:
            self._mark_done(session, ids)

    def finished(self) -> bool:
        with session_scope(self.url) as session:
            left = session.exec(
                select(func.count()).where(WorkItem.job_id == self.job_id, WorkItem.done == False)  # noqa: E712
            ).one()
            if left == 0:
                job = session.get(Job, self.job_id)
                if job.status != "finished":
                    job.status, job.done, job.updated_at = "finished", job.total, utcnow()
                    session.add(job)
        return left == 0

    def status(self) -> str:
        counts = self.counts()
        text = f"{counts['left']} left, {counts['others']} leased by other workers"
        if self.heartbeat_error:
            text += f" (lease heartbeat failing: {self.heartbeat_error})"
        return text

    # ------------------------------------------------------------------------------------------ the rest

    def counts(self) -> dict[str, int]:
        """Items not done ('left'), of which leased by this worker ('mine') and by live other workers
        ('others')."""
        live = WorkItem.lease_until >= self.clock()
        mine = WorkItem.worker == self.worker
        with session_scope(self.url) as session:
            left, mine, others = session.exec(
                select(
                    func.count(), func.count().filter(live & mine), func.count().filter(live & ~mine)
                ).where(
                    WorkItem.job_id == self.job_id,
                    WorkItem.done == False,  # noqa: E712
                )
            ).one()
        return {"left": left, "mine": mine, "others": others}

    def extend(self) -> int:
        """Push this worker's live leases lease_seconds on from now; returns how many (the heartbeat)."""
        with session_scope(self.url) as session:
            result = session.execute(
                update(WorkItem)
                .where(
                    WorkItem.job_id == self.job_id,
                    WorkItem.worker == self.worker,
                    WorkItem.done == False,  # noqa: E712
                    WorkItem.lease_until != None,
                )  # noqa: E711
                .values(lease_until=self.clock() + self.lease_seconds)
            )
            return result.rowcount

    def release(self) -> None:
        """Give back this worker's claims that are not done."""
        with session_scope(self.url) as session:
            session.execute(
                update(WorkItem)
                .where(WorkItem.job_id == self.job_id, WorkItem.worker == self.worker, WorkItem.done == False)  # noqa: E712
                .values(worker=None, lease_until=None)
            )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.release()

    def __enter__(self) -> WorkQueue:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self.extend()
                self.heartbeat_error = None
            except Exception as e:  # (a store that is briefly away: try again next beat)
                self.heartbeat_error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"

    def _mark_done(self, session: Session, ids) -> None:
        for chunk in chunks(ids):
            session.execute(
                update(WorkItem)
                .where(WorkItem.job_id == self.job_id, WorkItem.item.in_(chunk), WorkItem.done == False)  # noqa: E712
                .values(
                    done=True, lease_until=None, worker=self.worker
                )  # who finished it: the first to say so
            )

    def _enqueue(self, items: list[str]) -> int:
        """The job's id, its items inserted unless there (many workers may do this at once)."""
        key, now = job_key(self.job, items), utcnow()
        job = {
            "kind": self.job.split(" ", 1)[0],
            "key": key,
            "params": {"job": self.job},
            "status": "running",
            "done": 0,
            "total": len(items),
            "created_at": now,
            "updated_at": now,
        }
        with session_scope(self.url) as session:
            session.execute(self._insert_new(Job, job))
            job_id = session.exec(select(Job.id).where(Job.key == key)).one()
            have = self.stored(session, items) if self.stored else set()
            for i in range(0, len(items), 1000):
                rows = [
                    {"job_id": job_id, "item": item, "position": i + k, "done": item in have}
                    for k, item in enumerate(items[i : i + 1000])
                ]
                session.execute(self._insert_new(WorkItem, rows))
            if self.stored:  # an item marked done whose result is gone (deleted by hand) is work again
                marked = session.exec(select(WorkItem.item).where(WorkItem.job_id == job_id, WorkItem.done))
                again = sorted(set(marked) - have)
                for chunk in chunks(again):
                    reopen = WorkItem.job_id == job_id, WorkItem.item.in_(chunk)
                    session.execute(
                        update(WorkItem).where(*reopen).values(done=False, worker=None, lease_until=None)
                    )
        return job_id

    def _insert_new(self, table, rows):
        """INSERT that skips rows whose key is stored (another worker enqueued them first)."""
        if self._postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table).values(rows).on_conflict_do_nothing()


def waiting_line(worker: str, status: str) -> str:
    """What a worker with nothing to claim says while others hold the rest."""
    return f"worker {worker} waits: {status} (their chunks come here if their leases run out)"


def drain(
    source: PairSource,
    work: Callable[[list[str]], None],
    *,
    on_wait: Callable[[str], None] | None = None,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Claim, work, mark done, until the source is finished. With nothing claimable but items leased to
    other workers, wait (they finish them, or their leases run out and the items come back here);
    `on_wait` gets the source's status each time the wait begins or its status changes."""
    said = None
    while True:
        chunk = source.claim()
        if chunk:
            said = None
            work(chunk)
            source.done(chunk)
            continue
        if source.finished():
            return
        status = source.status()
        if on_wait is not None and status != said:
            on_wait(status)
        said = status
        sleep(poll_seconds)
