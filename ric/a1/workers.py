"""A1 schema work in worker processes, each job with a time budget.

Checking a policy type's schema, validating a policy against it and re-validating every
policy of a type when it changes cost CPU in proportion to what an outsider sent (schema size
times document size, and more with ``anyOf`` over recursive ``$ref``). Run on the runtime's
loop, that work would hold the E2 streams; a thread would not help (jsonschema holds the GIL).
So it runs in a pool of worker processes (pebble's ``ProcessPool``): a job that outlives its
budget (``[a1] budget_s``) is stopped by killing its worker, which the pool replaces, and the
caller gets ``OverBudget`` (a 503 naming the budget)::

    pool = ValidationPool(A1Settings())
    errors = await pool.validate("policy 'gold' of type 'sla'", schema, body)
    await pool.aclose()

Workers are forked from a fork server (``multiprocessing``'s ``forkserver`` context) that has
imported this module once, so a replacement starts in milliseconds and never inherits the
runtime's threads (gRPC's among them). The pool starts on first use.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import signal
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

from ric.a1.policy import FieldError, PolicyError, PolicyType, validate_policy
from ric.a1.regex import set_max_mem
from ric.config import A1Settings

__all__ = ["OverBudget", "ValidationPool"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class OverBudget(PolicyError):
    """A validation job ran past ``[a1] budget_s`` (its worker was killed and replaced) or
    its worker died: 503, try again later or send something smaller."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, detail, title="Over budget")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.detail,))


def _start_worker(regex_max_mem: int) -> None:
    # Ctrl-C reaches the whole process group: the runtime stops the pool, not the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_max_mem(regex_max_mem)


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


class ValidationPool:
    """Worker processes for A1 schema work (see the module docstring); ``settings`` gives
    the number of workers, the budget per job and RE2's memory per pattern."""

    def __init__(self, settings: A1Settings | None = None) -> None:
        self.settings = settings or A1Settings()
        self._pool: ProcessPool | None = None
        self._closed = False
        self._starting = asyncio.Lock()
        self.over_budget = 0
        """Jobs stopped for running past their budget (their workers were replaced)."""

    async def _started(self) -> ProcessPool:
        if self._closed:
            raise PolicyError(503, "the A1 service is shutting down")
        async with self._starting:
            if self._pool is None:
                # Starting workers waits for the fork server's imports (~0.5 s the first
                # time): never on the loop.
                self._pool = await asyncio.to_thread(self._make)
        return self._pool

    def _make(self) -> ProcessPool:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        pool = ProcessPool(
            max_workers=self.settings.workers,
            initializer=_start_worker,
            initargs=(self.settings.regex_max_mem_bytes,),
            context=context,
        )
        pool.schedule(int)  # starts the pool's threads and workers here, off the loop
        return pool

    async def run(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker within the budget; ``what`` names the job in errors.
        PolicyError raised by ``fn`` comes through as it is."""
        budget = self.settings.budget_s
        future = (await self._started()).schedule(fn, args=args, timeout=budget)
        try:
            return await asyncio.wrap_future(future)
        except concurrent.futures.TimeoutError:
            self.over_budget += 1
            log.warning("A1: %s ran past its budget of %g s; its worker was replaced", what, budget)
            raise OverBudget(
                f"{what} took longer than the budget of {budget:g} s ([a1] budget_s) and was "
                "stopped; simplify the schema or the document"
            ) from None
        except ProcessExpired as exc:
            log.warning("A1: the worker checking %s died: %s", what, exc)
            raise OverBudget(f"the worker checking {what} died ({exc}); try again") from None
        except (concurrent.futures.BrokenExecutor, RuntimeError) as exc:
            # The pool itself broke (its workers could not start): the next job gets a new one.
            log.warning("A1: the validation pool broke (%s); it is replaced", exc)
            broken, self._pool = self._pool, None
            if broken is not None:
                broken.stop()  # type: ignore[no-untyped-call]
            raise OverBudget(f"the workers checking {what} failed ({exc}); try again") from None
        except asyncio.CancelledError:
            future.cancel()  # type: ignore[no-untyped-call]  # a running job's worker is killed and replaced
            raise

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
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()  # type: ignore[no-untyped-call]
            await asyncio.to_thread(pool.join)
