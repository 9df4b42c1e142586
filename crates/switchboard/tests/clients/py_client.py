#!/usr/bin/env python3
"""Drive a Switchboard MCP endpoint with the official Python SDK (`mcp` 2.x).

    python py_client.py --url URL [--token TOKEN] --mode legacy|auto|2026-07-28 \
        [--call NAME [--args JSON]]... [--timeout SECONDS]

Run it with the virtualenv that scripts/mcp-tools.sh makes
(`<tools>/py/bin/python`). It connects over Streamable HTTP with
`Authorization: Bearer TOKEN` (no header when --token is absent or empty),
lists the tools (every page, following nextCursor), calls each --call in order
(--args applies to the --call before it; default {}), and prints ONE JSON
object on stdout:

    {"protocol": "2025-11-25",
     "tools": ["echo", ...],
     "calls": [{"name": "echo", "isError": false,
                "structuredContent": null, "text": "Echo: hi"}]}

A call the server answers with a JSON-RPC error (rather than a result with
isError) is reported as {"name", "isError": true, "structuredContent": null,
"text": <message>, "error": {"code", "message", "data"}} and the remaining
calls still run. Failing to connect or to list the tools exits 1 with the
error on stderr and nothing on stdout.

Modes map to `mcp.Client(mode=...)`: "legacy" = initialize handshake
(2025-11-25), "auto" = server/discover probe with fallback to initialize,
"2026-07-28" = adopt that version directly, without any probe.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio
import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

if sys.version_info < (3, 11):  # mcp supports 3.10; anyio pulls in the backport there
    from exceptiongroup import BaseExceptionGroup


class _CallAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        calls = getattr(namespace, "calls", None) or []
        calls.append({"name": values, "args": None})
        namespace.calls = calls


class _ArgsAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        calls = getattr(namespace, "calls", None) or []
        if not calls or calls[-1]["args"] is not None:
            parser.error("--args must follow its --call (one --args per --call)")
        try:
            parsed = json.loads(values)
        except json.JSONDecodeError as e:
            parser.error(f"--args for {calls[-1]['name']!r} is not JSON: {e}")
        if not isinstance(parsed, dict):
            parser.error(f"--args for {calls[-1]['name']!r} must be a JSON object")
        calls[-1]["args"] = parsed


def _parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="Streamable HTTP endpoint, e.g. http://127.0.0.1:8080/mcp")
    p.add_argument("--token", default="", help="bearer token (omit or empty: no Authorization header)")
    p.add_argument("--mode", required=True, help="legacy | auto | 2026-07-28")
    p.add_argument("--call", action=_CallAction, dest="calls", metavar="NAME", help="tool to call (repeatable)")
    p.add_argument("--args", action=_ArgsAction, metavar="JSON", help="arguments object for the preceding --call")
    p.add_argument("--timeout", type=float, default=60.0, help="overall deadline in seconds (default 60)")
    ns = p.parse_args(argv)
    ns.calls = [{"name": c["name"], "args": c["args"] or {}} for c in (ns.calls or [])]
    return ns


def _text_of(content: list[Any]) -> str:
    return "".join(block.text for block in content if isinstance(block, TextContent))


# HTTP errors seen on the wire ("401 POST /mcp"), for the failure message: the
# SDK maps e.g. a 401 to a bare "MCPError -32603: Server returned an error response".
_http_errors: list[str] = []


async def _note_http_error(response: httpx2.Response) -> None:
    if response.status_code >= 400:
        _http_errors.append(f"{response.status_code} {response.request.method} {response.request.url.path}")


async def _run(ns: argparse.Namespace) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {ns.token}"} if ns.token else None
    # Same timeouts as the SDK's default client (mcp.shared._httpx_utils):
    # 30 s connect/write/pool, a long read for SSE streams.
    http = httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(30.0, read=300.0),
        event_hooks={"response": [_note_http_error]},
    )
    async with http:
        transport = streamable_http_client(ns.url, http_client=http)
        async with Client(transport, mode=ns.mode, read_timeout_seconds=ns.timeout) as client:
            tools: list[str] = []
            cursor: str | None = None
            for _ in range(1000):
                page = await client.list_tools(cursor=cursor)
                tools.extend(t.name for t in page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
            else:
                raise RuntimeError("tools/list: more than 1000 pages, giving up")

            calls: list[dict[str, Any]] = []
            for call in ns.calls:
                try:
                    r = await client.call_tool(call["name"], call["args"])
                except MCPError as e:
                    calls.append(
                        {
                            "name": call["name"],
                            "isError": True,
                            "structuredContent": None,
                            "text": e.message,
                            "error": {"code": e.code, "message": e.message, "data": e.data},
                        }
                    )
                    continue
                calls.append(
                    {
                        "name": call["name"],
                        "isError": bool(r.is_error),
                        "structuredContent": r.structured_content,
                        "text": _text_of(r.content),
                    }
                )
            return {"protocol": client.protocol_version, "tools": tools, "calls": calls}


def _describe(exc: BaseException) -> str:
    """Flatten anyio's exception groups into one readable line per leaf."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    if isinstance(exc, MCPError):
        return f"MCPError {exc.code}: {exc.message}"
    msg = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {msg}"


def main(argv: list[str]) -> int:
    ns = _parse_args(argv)

    async def bounded() -> dict[str, Any]:
        with anyio.fail_after(ns.timeout):
            return await _run(ns)

    try:
        out = anyio.run(bounded)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - anything here is a connect/list failure
        http = f" [HTTP {', '.join(_http_errors)}]" if _http_errors else ""
        print(f"py_client: {ns.url} (mode {ns.mode}): {_describe(e)}{http}", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
