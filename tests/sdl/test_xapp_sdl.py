"""xApps and the SDL: each has its own namespace, and a shared one only if config grants it."""

from __future__ import annotations

from typing import Any

import pytest

from ric import XApp
from ric.config import load_config
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.sdl import Change, Namespace, SdlError
from ric.testing import start_xapp
from tests.conftest import wait_for


class Writer(XApp):
    """Writes into its own namespace and into the shared 'cells' namespace at start."""

    name = "writer"

    async def on_start(self) -> None:
        await self.sdl.set("mine", {"by": self.name})
        await self.shared("cells").set("001-01-4097", {"hot": True})


class Reader(XApp):
    """Looks at what it can see; watches the shared namespace."""

    name = "reader"
    heard: list[Change]

    async def on_start(self) -> None:
        self.heard = []
        self.shared("cells").watch(self.heard.append)


class Outsider(XApp):
    """Has no grant."""

    name = "outsider"


async def test_own_namespace_and_refused_shared_one_under_testing() -> None:
    """Under ric.testing an xApp's self.sdl is xapp.<name> in memory; a shared namespace
    without a grant is an SdlError naming the xApp, the namespace and the config key."""
    app, ctx = await start_xapp(Outsider)
    assert app.sdl.name == "xapp.outsider"
    await app.sdl.set("k", [1, 2])
    assert await Namespace(ctx.sdl_backend, "xapp.outsider").get("k") == [1, 2]
    with pytest.raises(SdlError) as err:
        app.shared("cells")
    message = str(err.value)
    assert "'outsider'" in message and "'cells'" in message and 'sdl.shared."cells"' in message
    assert app.shared("xapp.outsider").name == "xapp.outsider"  # its own, by its full name
    await ctx.close()


async def test_other_xapps_and_runtime_namespaces_cannot_be_named() -> None:
    """Another xApp's namespace and the runtime's ric.* ones are refused even when config
    lists them; granted shared namespaces are given."""
    grants: dict[str, Any] = {
        "cells": ["writer"],
        "xapp.reader": ["writer"],
        "ric.nodes": ["writer"],
    }
    app, ctx = await start_xapp(Writer, shared=grants)
    assert await app.shared("cells").get("001-01-4097") == {"hot": True}
    with pytest.raises(SdlError, match="another xApp's own"):
        app.shared("xapp.reader")
    with pytest.raises(SdlError, match="the runtime's"):
        app.shared("ric.nodes")
    with pytest.raises(SdlError, match="namespace"):
        app.shared("no spaces allowed")
    await ctx.close()


async def test_runtime_confines_xapps_and_grants_shared_namespaces() -> None:
    """In a runtime, xApps write their own namespaces apart; the granted ones share 'cells' and
    hear each other's changes; one without the grant is refused; watches end with the xApp."""
    config = load_config(
        environ={}, overrides={"e2.port": 0, "sdl.shared": {"cells": ["writer", "reader"]}}
    )
    plugins = [Plugin(c, f"test:{c.__name__}") for c in (Reader, Writer, Outsider)]
    async with Runtime(config, plugins, listen=False) as runtime:
        await wait_for(lambda: all(h.state.value == "running" for h in runtime.hosts))
        reader = runtime.host("reader").instance
        outsider = runtime.host("outsider").instance
        assert isinstance(reader, Reader) and isinstance(outsider, Outsider)
        writer = runtime.host("writer").instance
        assert isinstance(writer, Writer)
        await writer.shared("cells").group_add("hot", "001-01-4097")
        # In thread mode (the default) the change reaches the reader's own loop a moment later.
        hot = Change("cells", "hot", "group_add")
        await wait_for(lambda: bool(reader.heard) and reader.heard[-1] == hot, what="the change")
        assert await reader.sdl.get("mine") is None  # the writer's own key is not in its
        assert await Namespace(runtime.sdl, "xapp.writer").get("mine") == {"by": "writer"}
        assert await reader.shared("cells").get("001-01-4097") == {"hot": True}
        with pytest.raises(SdlError, match="outsider"):
            outsider.shared("cells")
    assert not runtime.sdl._watchers  # the reader's watch ended when it stopped
