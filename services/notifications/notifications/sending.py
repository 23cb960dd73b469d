"""The in-process sending loop: the event handlers queue messages (a commit) and hand their ids
over; a few lanes take what has been handed over in batches and deliver each batch in a worker
of its own (one claim statement, one contacts call, one SMTP connection).

An event handler no longer waits for SMTP, and under load the batches grow by themselves: while
a lane delivers one batch, the next one gathers. The ids live only in memory; a message whose id
is lost with the process (a crash, a stop) is still `pending` in the database, and the delivery
timer sends it.
"""

from __future__ import annotations

from typing import Any

import eventlet
from eventlet.event import Event
from eventlet.queue import Empty, LightQueue
from nameko.extensions import DependencyProvider, Entrypoint

from notifications.handlers import BATCH_SIZE

STOP = object()  # put on the queue once per lane: the lane ends after its batch


def next_batch(queue: LightQueue, size: int) -> tuple[list[str], bool]:
    """A lane's next batch: waits for the first id, then takes what else is waiting (at most
    `size` in all); and whether the lane is to stop after it."""
    first = queue.get()
    if first is STOP:
        return [], True
    ids = [first]
    while len(ids) < size:
        try:
            more = queue.get_nowait()
        except Empty:
            break
        if more is STOP:
            return ids, True
        ids.append(more)
    return ids, False


class HandOver(DependencyProvider):
    """`self.hand_over(ids)`: messages just queued go to the sending loop of this process (an
    empty list hands over nothing)."""

    def setup(self) -> None:
        self.queue: LightQueue = LightQueue()

    def get_dependency(self, worker_ctx: Any) -> Any:
        def hand_over(ids: list[str]) -> None:
            for message_id in ids:
                self.queue.put(message_id)

        return hand_over


class SendingLoop(Entrypoint):
    """Runs the decorated method with each batch of handed-over ids (at most `lanes` batches at
    a time, each of at most `batch_size`); needs a HandOver dependency on the same service."""

    def __init__(self, lanes: int = 2, batch_size: int = BATCH_SIZE, **kwargs: Any) -> None:
        self.lanes = lanes
        self.batch_size = batch_size
        self.threads: list[Any] = []
        self.stopping = False
        super().__init__(**kwargs)

    def start(self) -> None:
        [hand_over] = [d for d in self.container.dependencies if isinstance(d, HandOver)]
        self.queue = hand_over.queue
        self.threads = [self.container.spawn_managed_thread(self._run) for _ in range(self.lanes)]

    def stop(self) -> None:
        """Let the batches under way finish; what is still waiting stays for the timer."""
        self.stopping = True
        for _ in self.threads:
            self.queue.put(STOP)
        for thread in self.threads:
            thread.wait()

    def kill(self) -> None:
        for thread in self.threads:
            thread.kill()

    def _run(self) -> None:
        while True:
            ids, stopping = next_batch(self.queue, self.batch_size)
            if ids and not self.stopping:
                self._deliver(ids)
            if stopping or self.stopping:
                return

    def _deliver(self, ids: list[str]) -> None:
        done = Event()

        def handle_result(worker_ctx: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
            done.send()
            return result, exc_info

        self.container.spawn_worker(self, (ids,), {}, handle_result=handle_result)
        done.wait()
        eventlet.sleep(0)  # let the event handlers hand over more before the next batch


sending_loop = SendingLoop.decorator
