"""The one SDL suite, run against every backend: memory, a SQLite file and a real Redis server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import pytest

from ric.sdl import Change, Namespace, SdlBackend, SdlError


def ns(backend: SdlBackend, name: str = "app") -> Namespace:
    """A JSON namespace of ``backend``."""
    return Namespace(backend, name)


async def test_get_set_and_set_many(backend: SdlBackend) -> None:
    """Values round-trip as JSON; missing keys give the default; set_many sets them all."""
    sdl = ns(backend)
    assert await sdl.get("missing") is None
    assert await sdl.get("missing", 7) == 7
    await sdl.set("a", {"x": [1, 2.5, None, "é"]})
    assert await sdl.get("a") == {"x": [1, 2.5, None, "é"]}
    await sdl.set("a", 3)
    assert await sdl.get("a") == 3
    await sdl.set_many({"b": True, "c": "text", "d": None})
    await sdl.set_many({})
    assert await sdl.get_many(["a", "b", "c", "d", "zz"]) == {
        "a": 3,
        "b": True,
        "c": "text",
        "d": None,
    }
    assert await sdl.items() == {"a": 3, "b": True, "c": "text", "d": None}
    assert await sdl.items("c") == {"c": "text"}


async def test_set_if_sets_only_over_the_expected_value(backend: SdlBackend) -> None:
    """set_if changes a key only when it holds the old value, and never creates one."""
    sdl = ns(backend)
    assert not await sdl.set_if("k", 1, 2)
    assert await sdl.get("k") is None
    await sdl.set("k", {"v": 1, "w": 2})
    assert not await sdl.set_if("k", {"v": 9}, 3)
    assert await sdl.set_if("k", {"w": 2, "v": 1}, 3)  # equal JSON, whatever the key order
    assert await sdl.get("k") == 3


async def test_set_if_not_exists_sets_once(backend: SdlBackend) -> None:
    """set_if_not_exists creates a key once; later calls leave it alone."""
    sdl = ns(backend)
    assert await sdl.set_if_not_exists("leader", "a")
    assert not await sdl.set_if_not_exists("leader", "b")
    assert await sdl.get("leader") == "a"


async def test_delete_counts_what_existed(backend: SdlBackend) -> None:
    """delete removes keys and counts only those that existed, each once."""
    sdl = ns(backend)
    await sdl.set_many({"a": 1, "b": 2})
    assert await sdl.delete() == 0
    assert await sdl.delete("a", "a", "zz") == 1
    assert await sdl.keys() == ["b"]
    assert await sdl.delete("b") == 1
    assert await sdl.keys() == []


async def test_delete_if_deletes_only_the_expected_value(backend: SdlBackend) -> None:
    """delete_if removes a key only when it holds the old value."""
    sdl = ns(backend)
    assert not await sdl.delete_if("k", 1)
    await sdl.set("k", 1)
    assert not await sdl.delete_if("k", 2)
    assert await sdl.delete_if("k", 1)
    assert await sdl.get("k") is None


async def test_keys_prefix_is_literal(backend: SdlBackend) -> None:
    """keys(prefix) matches the prefix literally, with glob and LIKE characters too, sorted."""
    sdl = ns(backend)
    names = ["a*b", "a%b", "a_b", "a[b]", "a?c", "ab", "aXb", "a\\b", "b", "é1", "a", "a{b}"]
    await sdl.set_many(dict.fromkeys(names, 0))
    assert await sdl.keys() == sorted(names)
    for prefix in ["a*", "a%", "a_", "a[", "a?", "a\\", "a{", "é"]:
        assert await sdl.keys(prefix) == [n for n in sorted(names) if n.startswith(prefix)]
    assert await sdl.keys("a") == sorted(n for n in names if n.startswith("a"))
    assert await sdl.keys("zz") == []


async def test_groups(backend: SdlBackend) -> None:
    """Groups add, remove, list, test, count and delete members; an emptied group is gone."""
    sdl = ns(backend)
    assert await sdl.group_members("g") == set()
    assert await sdl.group_size("g") == 0
    assert await sdl.group_add("g", "x", "y", "x") == 2
    assert await sdl.group_add("g", "y", "z") == 1
    assert await sdl.group_add("g") == 0
    assert await sdl.group_members("g") == {"x", "y", "z"}
    assert await sdl.group_contains("g", "x")
    assert not await sdl.group_contains("g", "w")
    assert await sdl.group_size("g") == 3
    assert await sdl.group_remove("g", "x", "w") == 1
    assert await sdl.group_members("g") == {"y", "z"}
    assert await sdl.group_delete("g")
    assert not await sdl.group_delete("g")
    assert await sdl.group_size("g") == 0
    await sdl.group_add("h", "only")
    assert await sdl.group_remove("h", "only") == 1
    assert not await sdl.group_delete("h")


async def test_namespaces_are_isolated(backend: SdlBackend) -> None:
    """The same key or group in two namespaces are two things, even where names share colons."""
    a, b = ns(backend, "a"), ns(backend, "a:k")
    await a.set("k:x", 1)
    await b.set("x", 2)
    await a.group_add("g", "m1")
    await b.group_add("g", "m2")
    assert (await a.get("k:x"), await b.get("x")) == (1, 2)
    assert await a.get("x") is None
    assert await a.keys() == ["k:x"] and await b.keys() == ["x"]
    assert await a.group_members("g") == {"m1"}
    assert await b.group_members("g") == {"m2"}
    assert await b.delete("k:x") == 0
    assert await ns(backend, "other").keys() == []


async def test_keys_and_groups_are_separate_spaces(backend: SdlBackend) -> None:
    """A key and a group of the same name do not collide, and keys() lists only keys."""
    sdl = ns(backend)
    await sdl.set("same", "value")
    await sdl.group_add("same", "member")
    assert await sdl.get("same") == "value"
    assert await sdl.group_members("same") == {"member"}
    assert await sdl.keys() == ["same"]
    assert await sdl.delete("same") == 1
    assert await sdl.group_members("same") == {"member"}
    await sdl.group_add("g:only", "m")
    assert await sdl.keys() == []


async def test_watchers_hear_every_change_and_nothing_else(backend: SdlBackend) -> None:
    """Watchers hear sets, deletes and group changes of their namespace after they happen, not
    no-op writes nor other namespaces; the stop function ends it."""
    sdl = ns(backend)
    heard: list[tuple[str, str]] = []
    other: list[Change] = []

    def listener(change: Change) -> None:
        assert change.namespace == "app"
        heard.append((change.op, change.key))

    stop = sdl.watch(listener)
    ns(backend, "elsewhere").watch(other.append)
    await sdl.set("a", 1)
    await sdl.set_many({"b": 1, "c": 2})
    assert not await sdl.set_if("a", 5, 6)
    assert await sdl.set_if("a", 1, 2)
    assert not await sdl.set_if_not_exists("a", 0)
    assert await sdl.set_if_not_exists("d", 0)
    assert await sdl.delete("zz") == 0
    assert await sdl.delete("b", "zz") == 1
    assert not await sdl.delete_if("c", 9)
    assert await sdl.delete_if("c", 2)
    assert await sdl.group_add("g", "x") == 1
    assert await sdl.group_add("g", "x") == 0
    assert await sdl.group_remove("g", "nope") == 0
    assert await sdl.group_remove("g", "x") == 1
    assert not await sdl.group_delete("g")
    await sdl.group_add("g", "y")
    assert await sdl.group_delete("g")
    assert heard == [
        ("set", "a"),
        ("set", "b"),
        ("set", "c"),
        ("set", "a"),
        ("set", "d"),
        ("delete", "b"),
        ("delete", "c"),
        ("group_add", "g"),
        ("group_remove", "g"),
        ("group_add", "g"),
        ("group_delete", "g"),
    ]
    stop()
    stop()
    await sdl.set("after", 1)
    assert heard[-1] == ("group_delete", "g")
    await asyncio.sleep(0.05)  # a Redis backend could only wrongly echo its own change late
    assert len(heard) == 11
    assert other == []


async def test_a_failing_watcher_does_not_break_writers(
    backend: SdlBackend, caplog: pytest.LogCaptureFixture
) -> None:
    """A watcher that raises is logged; the write succeeds and the other watchers still hear."""
    sdl = ns(backend)
    heard: list[Change] = []

    def broken(change: Change) -> None:
        raise RuntimeError("watcher bug")

    sdl.watch(broken)
    sdl.watch(heard.append)
    with caplog.at_level(logging.ERROR, logger="ric.sdl"):
        await sdl.set("k", 1)
    assert await sdl.get("k") == 1
    assert [c.key for c in heard] == ["k"]
    assert "watcher bug" in caplog.text and "app" in caplog.text


async def test_concurrent_set_if_counts_each_increment_once(backend: SdlBackend) -> None:
    """Many tasks incrementing one counter with set_if retries end with exactly their total."""
    sdl = ns(backend)
    await sdl.set("counter", 0)
    tasks, each = 20, 10

    async def bump() -> int:
        retries = 0
        for _ in range(each):
            while True:
                value = await sdl.get("counter")
                if await sdl.set_if("counter", value, value + 1):
                    break
                retries += 1
        return retries

    await asyncio.gather(*(bump() for _ in range(tasks)))
    assert await sdl.get("counter") == tasks * each


async def test_two_clients_on_one_store_increment_exactly_once(
    backend_kind: str, new_backend: Callable[[], SdlBackend]
) -> None:
    """Two backends on the same store (two SQLite connections, two Redis clients) racing
    set_if and set_if_not_exists: every increment lands once, one claim wins."""
    if backend_kind == "memory":
        first = second = new_backend()  # one process, one store: the same object
    else:
        first, second = new_backend(), new_backend()
    async with contextlib.AsyncExitStack() as stack:
        for sdl in dict.fromkeys([first, second]):
            await stack.enter_async_context(sdl)
        a, b = ns(first), ns(second)
        await a.set("counter", 0)

        async def bump(sdl: Namespace, n: int) -> None:
            for _ in range(n):
                while True:
                    value = await sdl.get("counter")
                    if await sdl.set_if("counter", value, value + 1):
                        break

        await asyncio.gather(*(bump(s, 15) for s in (a, b, a, b)))
        assert await b.get("counter") == 60
        claims = await asyncio.gather(
            *(s.set_if_not_exists("leader", i) for i, s in enumerate([a, b] * 5))
        )
        assert claims.count(True) == 1
        assert await a.get("leader") == claims.index(True)


async def test_large_batches(backend: SdlBackend) -> None:
    """A set_many and a delete of 2,500 keys, and a group of 2,500 members, go through whole."""
    sdl = ns(backend)
    items = {f"k{i:05d}": i for i in range(2500)}
    await sdl.set_many(items)
    assert await sdl.items() == items
    assert await sdl.group_add("big", *items) == 2500
    assert await sdl.group_size("big") == 2500
    assert await sdl.delete(*items) == 2500
    assert await sdl.keys() == []


async def test_bad_namespace_key_and_value_are_named(backend: SdlBackend) -> None:
    """A bad namespace, key, value or member raises SdlError naming it, and stores nothing."""
    for bad in ["", "has space", "-starts", "x" * 129, "brace{}"]:
        with pytest.raises(SdlError, match="namespace"):
            Namespace(backend, bad)
    sdl = ns(backend)
    with pytest.raises(SdlError, match="non-empty"):
        await sdl.set("", 1)
    with pytest.raises(SdlError, match="control character"):
        await sdl.set("a\nb", 1)
    with pytest.raises(SdlError, match="longer than"):
        await sdl.get("k" * 2000)
    with pytest.raises(SdlError, match="not valid Unicode"):
        await sdl.set("\ud800", 1)
    with pytest.raises(SdlError, match=r"'when'.*JSON"):
        await sdl.set("when", object())
    with pytest.raises(SdlError, match=r"'nan'.*JSON"):
        await sdl.set("nan", float("nan"))
    with pytest.raises(SdlError, match="SDL group 'g1"):
        await sdl.group_add("g1\x00", "m")
    with pytest.raises(SdlError, match="members are strings"):
        await sdl.group_add("g", 1)  # type: ignore[arg-type]
    with pytest.raises(SdlError, match="prefix"):
        await sdl.keys(1)  # type: ignore[arg-type]
    with pytest.raises(SdlError, match="namespace 'bad ns'"):
        await backend.get("bad ns", ["k"])
    assert await sdl.keys() == []
    assert await sdl.group_size("g") == 0
