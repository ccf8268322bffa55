"""What a worker's tasks are waiting at, for the log when a call does not come back.

A call that hangs inside a library (a retry loop that never gives up, a queue nobody
serves, a lock never released) fails nothing and logs nothing: the worker stays live,
and the only trace is the line each of its tasks is suspended at. These helpers name
that line for every coroutine in a task's await chain, outermost first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

# a few tasks are enough to read; the rest of a busy loop is counted, not listed
MOST = 25


def _place(frame: Any) -> str:
    return f"{frame.f_code.co_name} ({Path(frame.f_code.co_filename).name}:{frame.f_lineno})"


def chain(task: asyncio.Future[Any]) -> str:
    """`task`'s await chain: each suspended coroutine's function and line, then what the
    innermost one waits for when that is not a coroutine (a future, a sleep)."""
    if not isinstance(task, asyncio.Task):
        return type(task).__name__
    parts: list[str] = []
    obj: Any = task.get_coro()
    while obj is not None:
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
        if frame is None:
            if parts:  # a plain future (its iterator) or another awaitable at the bottom
                parts.append(type(obj).__name__.removesuffix("Iter"))
            break
        parts.append(_place(frame))
        obj = getattr(obj, "cr_await", None) or getattr(obj, "gi_yieldfrom", None)
    return " > ".join(parts) or task.get_name()


def tasks_of(loop: asyncio.AbstractEventLoop) -> list[str]:
    """Every pending task of `loop` by its await chain, the same chain counted once
    (e.g. `3x fetch > ...`). Call it on `loop`'s own thread: chains change as it runs."""
    counts = Counter(chain(t) for t in asyncio.all_tasks(loop))
    listed = [f"{n}x {c}" if n > 1 else c for c, n in sorted(counts.items())]
    if len(listed) > MOST:
        listed = [*listed[:MOST], f"... and {len(listed) - MOST} more"]
    return listed


async def tasks_on(loop: asyncio.AbstractEventLoop, *, within: float = 5.0,
                   thread: threading.Thread | None = None) -> list[str]:  # fmt: skip
    """`tasks_of(loop)`, asked of `loop`'s own thread. A loop that does not run the
    question within `within` seconds is blocked in a plain call: then the stack of `thread`
    (the one running it) says where."""
    if loop is asyncio.get_running_loop():
        return tasks_of(loop)

    answer: concurrent.futures.Future[list[str]] = concurrent.futures.Future()

    def ask() -> None:
        if answer.set_running_or_notify_cancel():
            answer.set_result(tasks_of(loop))

    loop.call_soon_threadsafe(ask)
    try:
        return await asyncio.wait_for(asyncio.wrap_future(answer), within)
    except TimeoutError:
        answer.cancel()
        at = threads_at([thread] if thread else [])
        return [f"the loop ran nothing for {within:.0f}s; its thread is at: {' | '.join(at)}"]


def threads_at(threads: list[threading.Thread]) -> list[str]:
    """Where each of `threads` is now, innermost call first (a blocked call shows as
    the line that made it)."""
    frames = sys._current_frames()
    described = []
    for thread in threads:
        frame, stack = frames.get(thread.ident or -1), list[str]()
        while frame is not None and len(stack) < 8:
            stack.append(_place(frame))
            frame = frame.f_back
        described.append(f"{thread.name}: {' < '.join(stack) or 'idle'}")
    return described
