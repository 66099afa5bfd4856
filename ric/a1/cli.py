"""``ric policy``: the A1-P policy API of a running runtime from the command line.

::

    ric policy put-type slice-sla slice-sla.schema.json --token-file token
    ric policy put slice-sla gold gold.json --token-file token
    ric policy status slice-sla gold
    ric policy delete slice-sla gold --token-file token

Exit status 0 on success, 1 when the runtime refuses the request (its reason in one line) or
cannot be reached, 2 for a bad argument.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from ric.cliutil import (
    EXIT_FAILED,
    EXIT_USAGE,
    HttpFailure,
    Parser,
    add_http_auth_options,
    http_client,
    http_url,
    positive_seconds,
)

__all__ = ["add_command", "request"]

PREFIX = "/A1-P/v2"


def _json_file(text: str) -> Any:
    """The JSON in file ``text`` (``-``: standard input)."""
    name = "standard input" if text == "-" else repr(text)
    try:
        data = sys.stdin.read() if text == "-" else Path(text).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read {name}: {exc}") from None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{name} is not JSON: {exc}") from None


def request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Send one A1 request as ``args`` say (url, token, TLS, timeout); (status, JSON body or
    None). An error answer or an unreachable runtime raises HttpFailure with the line to print."""
    return http_client(args, args.url, args.timeout).request(method, PREFIX + path, body)


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _lines(ids: list[str]) -> None:
    for item in ids:
        print(item)


def _run(args: argparse.Namespace) -> int:
    action = args.policy_command
    if bool(args.tls_cert) != bool(args.tls_key):
        print(f"ric policy {action}: error: --tls-cert and --tls-key go together", file=sys.stderr)
        return EXIT_USAGE
    try:
        if action == "types":
            _, ids = request(args, "GET", "/policytypes")
            _lines(ids)
        elif action == "get-type":
            _, body = request(args, "GET", f"/policytypes/{_q(args.type)}")
            print(json.dumps(body, indent=2))
        elif action == "put-type":
            status, _ = request(args, "PUT", f"/policytypes/{_q(args.type)}", args.file)
            print(f"policy type {args.type!r} {'created' if status == 201 else 'updated'}")
        elif action == "delete-type":
            request(args, "DELETE", f"/policytypes/{_q(args.type)}")
            print(f"policy type {args.type!r} deleted")
        elif action == "list":
            _, ids = request(args, "GET", f"/policytypes/{_q(args.type)}/policies")
            _lines(ids)
        else:
            path = f"/policytypes/{_q(args.type)}/policies/{_q(args.id)}"
            what = f"policy {args.id!r} of type {args.type!r}"
            if action == "get":
                print(json.dumps(request(args, "GET", path)[1], indent=2))
            elif action == "put":
                status, _ = request(args, "PUT", path, args.file)
                print(f"{what} {'created' if status == 201 else 'updated'}")
            elif action == "delete":
                request(args, "DELETE", path)
                print(f"{what} deleted")
            else:
                print(json.dumps(request(args, "GET", f"{path}/status")[1], indent=2))
    except HttpFailure as exc:
        print(f"ric policy {action}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def add_command(sub: Any) -> None:
    """Add ``ric policy`` and its actions to the ``ric`` subcommands ``sub``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        type=http_url,
        default="http://127.0.0.1:8080",
        metavar="URL",
        help="the runtime's HTTP address (default http://127.0.0.1:8080)",
    )
    add_http_auth_options(common)
    common.add_argument(
        "--timeout",
        type=positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="give up on an answer after this long (default 10)",
    )
    policy = sub.add_parser(
        "policy",
        help="list, show, put and delete A1 policies and policy types of a running runtime",
        description="Talk to a running runtime's A1-P policy API (/A1-P/v2 on its HTTP port): "
        "policy types carry a JSON Schema, policies are validated against it and delivered to "
        "the xApps that handle the type, which report whether they enforce them. Writes need "
        "--token-file (or a client certificate).",
        epilog="Exit status 0 on success, 1 when the runtime refuses the request (its reason in "
        "one line) or cannot be reached, 2 for a bad argument. Example: ric policy put slice-sla "
        "gold gold.json --token-file token",
    )
    actions = policy.add_subparsers(dest="policy_command", metavar="ACTION", parser_class=Parser)
    actions.required = True

    def action(name: str, help: str, *positionals: tuple[str, str]) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(
            name, help=help, description=help[:1].upper() + help[1:] + ".", parents=[common]
        )
        for dest, text in positionals:
            if dest == "file":
                p.add_argument(
                    "file", type=_json_file, metavar="FILE.json", help=text + " ('-': stdin)"
                )
            else:
                p.add_argument(dest, metavar=dest.upper(), help=text)
        p.set_defaults(func=_run)
        return p

    type_arg = ("type", "the policy type id")
    id_arg = ("id", "the policy id")
    action("types", "list the policy type ids")
    action("get-type", "print a policy type (its JSON Schema and name)", type_arg)
    action(
        "put-type",
        "create or replace a policy type from a JSON file {policySchema, name, description}",
        type_arg,
        ("file", "the policy type object"),
    )
    action("delete-type", "delete a policy type that has no policies", type_arg)
    action("list", "list the policy ids of a type", type_arg)
    action("get", "print a policy", type_arg, id_arg)
    action(
        "put",
        "create or update a policy from a JSON file, validated against its type's schema",
        type_arg,
        id_arg,
        ("file", "the policy object"),
    )
    action("delete", "delete a policy (the xApps that handle its type are told)", type_arg, id_arg)
    action(
        "status",
        "print whether a policy is enforced and, if not, why (A1 enforceStatus, enforceReason)",
        type_arg,
        id_arg,
    )
