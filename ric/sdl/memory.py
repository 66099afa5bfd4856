"""The in-memory SDL backend: the default, for one runtime process (lost when it stops)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence

from ric.sdl import Change, SdlBackend, check_namespace

__all__ = ["MemoryBackend"]


class MemoryBackend(SdlBackend):
    """Keys and groups in dictionaries; every call is atomic because it never awaits."""

    kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._keys: dict[str, dict[str, bytes]] = {}
        self._groups: dict[str, dict[str, set[bytes]]] = {}

    def _ns(self, namespace: str) -> dict[str, bytes]:
        return self._keys.setdefault(check_namespace(namespace), {})

    def _gs(self, namespace: str) -> dict[str, set[bytes]]:
        return self._groups.setdefault(check_namespace(namespace), {})

    async def get(self, namespace: str, keys: Sequence[str]) -> dict[str, bytes]:
        ns = self._ns(namespace)
        return {k: ns[k] for k in keys if k in ns}

    async def set(self, namespace: str, items: Mapping[str, bytes]) -> None:
        self._ns(namespace).update(items)
        for key in items:
            self._notify(Change(namespace, key, "set"))

    async def set_if(self, namespace: str, key: str, old: bytes, new: bytes) -> bool:
        ns = self._ns(namespace)
        if ns.get(key) != old:
            return False
        ns[key] = new
        self._notify(Change(namespace, key, "set"))
        return True

    async def set_if_not_exists(self, namespace: str, key: str, value: bytes) -> bool:
        ns = self._ns(namespace)
        if key in ns:
            return False
        ns[key] = value
        self._notify(Change(namespace, key, "set"))
        return True

    async def delete(self, namespace: str, keys: Sequence[str]) -> int:
        ns = self._ns(namespace)
        gone = [k for k in dict.fromkeys(keys) if ns.pop(k, None) is not None]
        for key in gone:
            self._notify(Change(namespace, key, "delete"))
        return len(gone)

    async def delete_if(self, namespace: str, key: str, old: bytes) -> bool:
        ns = self._ns(namespace)
        if ns.get(key) != old:
            return False
        del ns[key]
        self._notify(Change(namespace, key, "delete"))
        return True

    async def keys(self, namespace: str, prefix: str = "") -> list[str]:
        return sorted(k for k in self._ns(namespace) if k.startswith(prefix))

    async def group_add(self, namespace: str, group: str, members: Sequence[bytes]) -> int:
        current = self._gs(namespace).setdefault(group, set())
        new = set(members) - current
        current |= new
        if new:
            self._notify(Change(namespace, group, "group_add"))
        return len(new)

    async def group_remove(self, namespace: str, group: str, members: Sequence[bytes]) -> int:
        groups = self._gs(namespace)
        current = groups.get(group, set())
        there = current & set(members)
        current -= there
        if not current:
            groups.pop(group, None)
        if there:
            self._notify(Change(namespace, group, "group_remove"))
        return len(there)

    async def group_members(self, namespace: str, group: str) -> builtins.set[bytes]:
        return set(self._gs(namespace).get(group, ()))

    async def group_contains(self, namespace: str, group: str, member: bytes) -> bool:
        return member in self._gs(namespace).get(group, ())

    async def group_size(self, namespace: str, group: str) -> int:
        return len(self._gs(namespace).get(group, ()))

    async def group_delete(self, namespace: str, group: str) -> bool:
        existed = self._gs(namespace).pop(group, None) is not None
        if existed:
            self._notify(Change(namespace, group, "group_delete"))
        return existed
