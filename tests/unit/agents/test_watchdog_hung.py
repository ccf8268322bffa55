"""A watchdog check that never comes back: the worker turns unready and the log names
the line it hangs at, on the worker's loop and on faust's consumer thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from structlog.testing import capture_logs

from streams.agents.watchdog import Stall, StallWatchdog, install
from streams.runtime.awaiting import chain, tasks_on
from streams.settings import KafkaSettings


@contextmanager
def running_loop() -> Iterator[tuple[asyncio.AbstractEventLoop, threading.Thread]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="consumer-thread", daemon=True)
    thread.start()
    try:
        yield loop, thread
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class ConsumerThread:
    """faust's consumer thread, its calls served by its own loop; `stuck` never answers."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self.thread_loop, self._thread = loop, thread

    async def call_thread(self, fun: Callable[[], Awaitable[bool]]) -> bool:
        async def stuck_in_a_retry_loop() -> bool:
            await asyncio.Event().wait()  # nothing ever sets it
            return True

        future = asyncio.run_coroutine_threadsafe(stuck_in_a_retry_loop(), self.thread_loop)
        return await asyncio.wrap_future(future)


class Watchdog(StallWatchdog):
    def check(self, assigned: Iterable[tuple[str, int]]) -> list[Stall]:
        self.leaders = {("p.incident-work", 0): 2}  # the consumer is asked about these
        self.wait.progressed()
        return []


def test_a_check_hung_on_the_consumer_thread_is_logged_and_makes_the_worker_unready() -> None:
    timers: list[Callable[[], Awaitable[None]]] = []

    with running_loop() as (loop, thread):
        app: Any = type("App", (), {})()
        app.rebalancing = False
        app.timer = lambda interval: lambda fun: timers.append(fun) or fun
        app.consumer = type("Consumer", (), {})()
        app.consumer.assignment = list
        app.consumer._thread = ConsumerThread(loop, thread)
        dog = Watchdog(KafkaSettings(), "g", ["p.incident-work"])
        install(app, dog, lambda stall: None, patience=0.2)
        [tick] = timers

        async def one_tick() -> None:
            unready = asyncio.Event()
            waiting = dog.wait.waiting
            dog.wait.waiting = lambda what, error=None: (waiting(what, error), unready.set())
            ticking = asyncio.ensure_future(tick())
            await unready.wait()
            ticking.cancel()

        with capture_logs() as logs:
            asyncio.run(asyncio.wait_for(one_tick(), 30))

    [hung] = [e for e in logs if e["event"] == "watchdog_check_hung"][:1]
    assert "point_at_leaders" in hung["awaiting"] and "call_thread" in hung["awaiting"]
    assert any("stuck_in_a_retry_loop" in task for task in hung["consumer_thread"]), hung
    assert not dog.wait.check()[0], "unready, for the stuck-client guard to act on"
    assert "point_at_leaders > call_thread" in dog.wait.what


def test_a_loop_blocked_in_a_plain_call_is_named_by_its_thread_stack() -> None:
    blocked = threading.Event()
    free = threading.Event()

    def blocking_call() -> None:
        blocked.set()
        free.wait(30)

    with running_loop() as (loop, thread):
        loop.call_soon_threadsafe(blocking_call)
        assert blocked.wait(10)
        try:
            [line] = asyncio.run(tasks_on(loop, within=0.2, thread=thread))
        finally:
            free.set()
    assert line.startswith("the loop ran nothing") and "blocking_call" in line


def test_a_chain_names_every_coroutine_down_to_what_it_waits_for() -> None:
    async def inner(never: asyncio.Future[None]) -> None:
        await never

    async def outer(never: asyncio.Future[None]) -> None:
        await inner(never)

    async def look() -> str:
        never = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(outer(never))
        await asyncio.sleep(0)  # the task runs up to its first suspension
        try:
            return chain(task)
        finally:
            task.cancel()

    described = asyncio.run(look())
    assert described.startswith("outer (") and " > inner (" in described
    assert described.endswith("> Future")
