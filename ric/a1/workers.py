"""A1 schema work in worker processes, each job with a time budget.

Checking a policy type's schema, validating a policy against it and re-validating every
policy of a type when it changes cost CPU in proportion to what an outsider sent (schema size
times document size, and more with ``anyOf`` over recursive ``$ref``). Run on the runtime's
loop, that work would hold the E2 streams; a thread would not help (jsonschema holds the GIL).
So it runs in worker processes: a job that outlives its budget (``[a1] budget_s``) is stopped
by killing its worker, a new one takes its place, and the caller gets ``OverBudget`` (a 503
naming the budget)::

    pool = ValidationPool(A1Settings())
    errors = await pool.validate("policy 'gold' of type 'sla'", schema, body)
    await pool.aclose()

The pool is driven from the event loop itself, with no thread in the runtime's process:
each worker is a child process (``python -m ric.a1.workers``) that the loop talks to over its
standard input and output (length-prefixed pickles of the function, its arguments and its
result). A process pool with manager threads in the runtime (``concurrent.futures``, pebble)
hands the GIL back and forth with them for every job, and the E2 loop thread can then wait
for the GIL behind them after each system call; here nothing competes with the loop for it.
Workers start on first use (their imports take about half a
second, off the loop) and are reused; at most ``[a1] workers`` jobs run at once, the others
wait their turn (the HTTP server bounds how many requests can wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable, Mapping
from typing import IO, Any, TypeVar

from ric.a1.policy import FieldError, PolicyError, PolicyType, validate_policy
from ric.config import A1Settings

__all__ = ["OverBudget", "ValidationPool"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_LENGTH = struct.Struct("!I")
_READY = b"R"
_START_TIMEOUT_S = 60.0
"""How long a new worker may take to import what it needs (not counted in any job's budget)."""


class OverBudget(PolicyError):
    """A validation job ran past ``[a1] budget_s`` (its worker was killed and replaced) or
    its worker died: 503, try again later or send something smaller."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, detail, title="Over budget")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.detail,))


def _check_type(type_id: str, body: object) -> PolicyType:
    return PolicyType.from_json(type_id, body)


def _first_refused(
    schema: Mapping[str, Any], policies: Mapping[str, Any]
) -> tuple[str, FieldError] | None:
    for policy_id, policy in policies.items():
        errors = validate_policy(schema, policy)
        if errors:
            return policy_id, errors[0]
    return None


class _WorkerGone(Exception):
    """The worker process ended or broke the protocol."""


class _Worker:
    """One worker process and the pipes to it."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, regex_max_mem: int) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ric.a1.workers",
            str(regex_max_mem),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches the runtime, which stops the workers
        )
        worker = cls(process)
        try:
            assert process.stdout is not None
            ready = await asyncio.wait_for(process.stdout.readexactly(1), _START_TIMEOUT_S)
            if ready != _READY:
                raise _WorkerGone(f"it said {ready!r} instead of being ready")
        except (TimeoutError, asyncio.IncompleteReadError, _WorkerGone) as exc:
            await worker.kill()
            raise _WorkerGone(f"a validation worker did not start: {exc!r}") from exc
        return worker

    async def call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """``fn(*args)`` in the worker; its exception is raised here."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        payload = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            stdin.write(_LENGTH.pack(len(payload)) + payload)
            await stdin.drain()
            (size,) = _LENGTH.unpack(await stdout.readexactly(_LENGTH.size))
            ok, value = pickle.loads(await stdout.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise _WorkerGone(f"exit status {self.process.returncode}") from exc
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    async def kill(self) -> None:
        """End the worker at once and reap it."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()

    async def close(self, grace_s: float = 2.0) -> None:
        """Let an idle worker end on the end of its input; kill it if it does not."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), grace_s)
        except TimeoutError:
            await self.kill()


class ValidationPool:
    """Worker processes for A1 schema work (see the module docstring); ``settings`` gives
    the number of workers, the budget per job and RE2's memory per pattern."""

    def __init__(self, settings: A1Settings | None = None) -> None:
        self.settings = settings or A1Settings()
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._closed = False
        self.over_budget = 0
        """Jobs stopped for running past their budget (their workers were replaced)."""

    async def run(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker within the budget; ``what`` names the job in errors.
        ``fn`` must be importable by name (a module-level function). PolicyError raised by
        ``fn`` comes through as it is."""
        if self._closed:
            raise PolicyError(503, "the A1 service is shutting down")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.workers)
        async with self._slots:
            worker = await self._worker(what)
            self._busy.add(worker)
            healthy = False
            try:
                result = await asyncio.wait_for(worker.call(fn, args), self.settings.budget_s)
                healthy = True
                return result
            except TimeoutError:
                self.over_budget += 1
                budget = self.settings.budget_s
                log.warning(
                    "A1: %s ran past its budget of %g s; its worker was replaced", what, budget
                )
                raise OverBudget(
                    f"{what} took longer than the budget of {budget:g} s ([a1] budget_s) and "
                    "was stopped; simplify the schema or the document"
                ) from None
            except _WorkerGone as exc:
                log.warning("A1: the worker checking %s died: %s", what, exc)
                raise OverBudget(f"the worker checking {what} died ({exc}); try again") from None
            except PolicyError:
                healthy = True  # the job's own answer: the worker is fine
                raise
            finally:
                self._busy.discard(worker)
                if healthy and not self._closed:
                    self._idle.append(worker)
                else:
                    await worker.kill()

    async def _worker(self, what: str) -> _Worker:
        if self._idle:
            return self._idle.pop()
        try:
            return await _Worker.start(self.settings.regex_max_mem_bytes)
        except (_WorkerGone, OSError) as exc:
            log.warning("A1: %s", exc)
            raise OverBudget(f"the workers checking {what} failed ({exc}); try again") from None

    async def policy_type(self, type_id: str, body: object) -> PolicyType:
        """The policy type ``body`` (an A1 PolicyTypeObject) describes, or PolicyError (400)."""
        return await self.run(f"the schema of policy type {type_id!r}", _check_type, type_id, body)

    async def validate(
        self, what: str, schema: Mapping[str, Any], body: object
    ) -> list[FieldError]:
        """The fields of ``body`` that ``schema`` refuses (``validate_policy`` in a worker)."""
        return await self.run(what, validate_policy, schema, body)

    async def first_refused(
        self, what: str, schema: Mapping[str, Any], policies: Mapping[str, Any]
    ) -> tuple[str, FieldError] | None:
        """The first of ``policies`` (by id) that ``schema`` refuses, with its first error."""
        if not policies:
            return None
        return await self.run(what, _first_refused, schema, policies)

    async def aclose(self) -> None:
        """Stop the workers (a job still running is killed); new jobs are refused."""
        self._closed = True
        idle, self._idle = self._idle, []
        busy = list(self._busy)
        await asyncio.gather(*(w.close() for w in idle), *(w.kill() for w in busy))


# -- the worker process -------------------------------------------------------------------------


def _read(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def _serve(regex_max_mem: int) -> None:
    """The worker's loop: read a job, run it, write its result, until the input ends."""
    from ric.a1.regex import set_max_mem

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_max_mem(regex_max_mem)
    # The protocol owns the real standard output; anything a job prints goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    jobs = sys.stdin.buffer
    out.write(_READY)
    out.flush()
    while (head := _read(jobs, _LENGTH.size)) is not None:
        body = _read(jobs, _LENGTH.unpack(head)[0])
        if body is None:
            return
        try:
            fn, args = pickle.loads(body)
            answer = pickle.dumps((True, fn(*args)), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            try:
                answer = pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # an exception that does not pickle: say what it was
                failure = PolicyError(500, f"validation failed: {exc!r}")
                answer = pickle.dumps((False, failure), protocol=pickle.HIGHEST_PROTOCOL)
        out.write(_LENGTH.pack(len(answer)) + answer)
        out.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
