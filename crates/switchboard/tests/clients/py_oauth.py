#!/usr/bin/env python3
"""Connect to Switchboard with the official Python SDK's OAuth client, no human.

    python py_oauth.py --url URL/mcp --email E --password P --org SLUG [--timeout S]

`mcp.client.auth.OAuthClientProvider` does everything a real app does: it
gets a 401, discovers the protected-resource and authorization-server
metadata, registers itself (RFC 7591), and sends the member to the
authorization URL. Its redirect handler plays the member's browser with plain
HTTP (a cookie jar; redirects not followed): it opens the URL, signs in,
picks the organization, approves, and hands the code, state and `iss` from
the final redirect to the callback handler. The SDK then redeems the code
(PKCE, resource) and retries with the access token.

Prints ONE JSON object on stdout:

    {"authorizations": 1, "client": {...registration response...},
     "tools": ["whoami", ...], "whoami": {...structuredContent...},
     "token_scope": "read:org ...", "steps": ["sign-in", "pick-org", "consent"]}

Exits 1 with the error on stderr on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import anyio
import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT = "http://127.0.0.1:1/callback"  # nothing listens: the browser stops at the 302


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def _form(html: str, form_id: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the form with this id."""
    m = re.search(r'<form id="%s"[^>]*action="([^"]+)"(.*?)</form>' % re.escape(form_id), html, re.S)
    if not m:
        raise RuntimeError(f"page has no form #{form_id}: {html[:400]}")
    fields = {
        unescape(n): unescape(v)
        for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', m.group(2))
    }
    return unescape(m.group(1)), fields


class Browser:
    """The member at the authorization pages, as plain HTTP."""

    def __init__(self, email: str, password: str, org: str) -> None:
        self.email, self.password, self.org = email, password, org
        self.steps: list[str] = []
        self.result: asyncio.Future[AuthorizationCodeResult] | None = None
        self.authorizations = 0

    async def redirect_handler(self, url: str) -> None:
        self.authorizations += 1
        loop = asyncio.get_running_loop()
        self.result = loop.create_future()
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30.0) as http:
            origin = "{0.scheme}://{0.netloc}".format(urlparse(url))
            r = await http.get(url)
            for _ in range(10):
                if r.status_code in (302, 303):
                    loc = urljoin(str(r.request.url), r.headers["location"])
                    if loc.startswith(REDIRECT):
                        q = parse_qs(urlparse(loc).query)
                        if "error" in q:
                            raise RuntimeError(f"authorization refused: {q}")
                        self.result.set_result(
                            AuthorizationCodeResult(
                                code=q["code"][0], state=q.get("state", [None])[0], iss=q.get("iss", [None])[0]
                            )
                        )
                        return
                    r = await http.get(loc)
                    continue
                if r.status_code != 200:
                    raise RuntimeError(f"page {r.request.url} answered {r.status_code}: {r.text[:400]}")
                html = r.text
                headers = {"origin": origin}
                if 'id="oauth-sign-in"' in html:
                    self.steps.append("sign-in")
                    action, fields = _form(html, "oauth-sign-in")
                    fields.update(email=self.email, password=self.password)
                elif 'id="oauth-pick-org"' in html:
                    self.steps.append("pick-org")
                    action, fields = _form(html, "oauth-pick-org")
                    fields["org"] = self.org
                elif 'id="oauth-consent"' in html:
                    self.steps.append("consent")
                    action, fields = _form(html, "oauth-consent")
                    fields["decision"] = "approve"
                else:
                    raise RuntimeError(f"unexpected page at {r.request.url}: {html[:400]}")
                r = await http.post(urljoin(str(r.request.url), action), data=fields, headers=headers)
            raise RuntimeError("the authorization pages did not end in a redirect")

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self.result is not None
        return await self.result


async def run(ns: argparse.Namespace) -> dict[str, Any]:
    browser = Browser(ns.email, ns.password, ns.org)
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=ns.url,
        client_metadata=OAuthClientMetadata(
            redirect_uris=[REDIRECT], client_name="Python SDK test", grant_types=["authorization_code", "refresh_token"]
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30.0, read=300.0)) as http:
        async with Client(streamable_http_client(ns.url, http_client=http), mode=ns.mode) as client:
            tools: list[str] = []
            cursor = None
            while True:
                page = await client.list_tools(cursor=cursor)
                tools.extend(t.name for t in page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
            me = await client.call_tool("whoami", {})
    return {
        "authorizations": browser.authorizations,
        "steps": browser.steps,
        "client": storage.client.model_dump(mode="json", exclude_none=True) if storage.client else None,
        "token_scope": storage.tokens.scope if storage.tokens else None,
        "tools": tools,
        "whoami": me.structured_content,
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--org", required=True)
    p.add_argument("--mode", default="legacy", help="legacy | 2026-07-28")
    p.add_argument("--timeout", type=float, default=90.0)
    ns = p.parse_args(argv)

    async def bounded() -> dict[str, Any]:
        with anyio.fail_after(ns.timeout):
            return await run(ns)

    try:
        out = anyio.run(bounded)
    except BaseException as e:  # noqa: BLE001
        def leaves(x: BaseException) -> list[str]:
            subs = getattr(x, "exceptions", None)
            return [l for s in subs for l in leaves(s)] if subs else [f"{type(x).__name__}: {x}"]

        print("py_oauth: " + "; ".join(leaves(e)), file=sys.stderr)
        # The whole chain, so a transport error says where it happened.
        import traceback

        traceback.print_exception(e, file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
