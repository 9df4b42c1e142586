// Drive a Switchboard MCP endpoint with the official TypeScript SDK client
// (@modelcontextprotocol/client 2.x).
//
//   <tools>/node22/bin/node ts_client.mjs --url URL [--token TOKEN] \
//       --mode legacy|auto|2026-07-28 [--call NAME [--args JSON]]... [--timeout SECONDS]
//
// Same CLI and output as py_client.py: one JSON object on stdout,
//   {"protocol": "...", "tools": [...], "calls": [{"name", "isError",
//    "structuredContent", "text"}]}
// A call answered with a JSON-RPC error becomes {"name", "isError": true,
// "structuredContent": null, "text": <message>, "error": {"code", "message",
// "data"}}; a failure to connect or list exits 1 with the error on stderr.
//
// Modes: "legacy" = no versionNegotiation (plain 2025-11-25 initialize),
// "auto" = versionNegotiation {mode: 'auto'} (server/discover probe, falls
// back to initialize), "2026-07-28" = versionNegotiation {mode: {pin:
// '2026-07-28'}} (probe, no fallback).
//
// Finding the SDK: ESM `import` ignores NODE_PATH, so the package is located
// by hand, in this order: $SWITCHBOARD_MCP_TOOLS/node_modules, each NODE_PATH
// entry, then <repo>/target/mcp-tools/node_modules (relative to this file),
// and imported by file URL through its package.json "exports" entry.
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PKG = '@modelcontextprotocol/client';

function die(msg) {
    process.stderr.write(`ts_client: ${msg}\n`);
    process.exit(1);
}

function usage(msg) {
    process.stderr.write(
        `ts_client: ${msg}\nusage: ts_client.mjs --url URL [--token TOKEN] --mode legacy|auto|2026-07-28 ` +
            `[--call NAME [--args JSON]]... [--timeout SECONDS]\n`
    );
    process.exit(2);
}

function parseArgs(argv) {
    const opts = { url: undefined, token: '', mode: undefined, timeout: 60, calls: [] };
    for (let i = 0; i < argv.length; i++) {
        const flag = argv[i];
        const value = () => {
            if (i + 1 >= argv.length) usage(`${flag} needs a value`);
            return argv[++i];
        };
        switch (flag) {
            case '--url':
                opts.url = value();
                break;
            case '--token':
                opts.token = value();
                break;
            case '--mode':
                opts.mode = value();
                break;
            case '--timeout':
                opts.timeout = Number(value());
                if (!(opts.timeout > 0)) usage('--timeout must be a positive number of seconds');
                break;
            case '--call':
                opts.calls.push({ name: value(), args: undefined });
                break;
            case '--args': {
                const last = opts.calls[opts.calls.length - 1];
                if (!last || last.args !== undefined) usage('--args must follow its --call (one --args per --call)');
                const raw = value();
                let parsed;
                try {
                    parsed = JSON.parse(raw);
                } catch (e) {
                    usage(`--args for '${last.name}' is not JSON: ${e.message}`);
                }
                if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
                    usage(`--args for '${last.name}' must be a JSON object`);
                }
                last.args = parsed;
                break;
            }
            case '-h':
            case '--help':
                usage('help');
                break;
            default:
                usage(`unknown argument ${JSON.stringify(flag)}`);
        }
    }
    if (!opts.url) usage('--url is required');
    if (!opts.mode) usage('--mode is required');
    for (const c of opts.calls) c.args ??= {};
    return opts;
}

function negotiationFor(mode) {
    if (mode === 'legacy') return undefined; // the SDK default: plain 2025 connect
    if (mode === 'auto') return { mode: 'auto' };
    if (/^\d{4}-\d{2}-\d{2}$/.test(mode)) return { mode: { pin: mode } };
    usage(`--mode must be legacy, auto or a protocol version such as 2026-07-28, not ${JSON.stringify(mode)}`);
}

function candidateNodeModules() {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const dirs = [];
    if (process.env.SWITCHBOARD_MCP_TOOLS) dirs.push(path.join(process.env.SWITCHBOARD_MCP_TOOLS, 'node_modules'));
    for (const d of (process.env.NODE_PATH ?? '').split(path.delimiter)) if (d) dirs.push(d);
    // crates/switchboard/tests/clients -> <repo>/target/mcp-tools
    dirs.push(path.resolve(here, '..', '..', '..', '..', 'target', 'mcp-tools', 'node_modules'));
    return dirs;
}

async function importSdk() {
    const tried = [];
    for (const dir of candidateNodeModules()) {
        const pkgDir = path.join(dir, PKG);
        const pkgJson = path.join(pkgDir, 'package.json');
        tried.push(pkgDir);
        if (!fs.existsSync(pkgJson)) continue;
        const pkg = JSON.parse(fs.readFileSync(pkgJson, 'utf8'));
        const root = pkg.exports?.['.'];
        const entry = root?.import?.default ?? root?.import ?? root?.default ?? pkg.module ?? pkg.main;
        if (typeof entry !== 'string') die(`cannot find the ESM entry point of ${pkgJson}`);
        const sdk = await import(pathToFileURL(path.join(pkgDir, entry)).href);
        return { sdk, version: pkg.version };
    }
    die(`${PKG} not found; run scripts/mcp-tools.sh (looked in: ${tried.join(', ')})`);
}

function describe(err) {
    if (err && typeof err === 'object') {
        const code = err.code !== undefined ? ` ${err.code}` : '';
        const cause = err.cause ? ` (cause: ${describe(err.cause)})` : '';
        return `${err.name ?? 'Error'}${code}: ${err.message}${cause}`;
    }
    return String(err);
}

async function run(opts, sdk) {
    const { Client, StreamableHTTPClientTransport, ProtocolError } = sdk;
    const headers = opts.token ? { Authorization: `Bearer ${opts.token}` } : {};
    const transport = new StreamableHTTPClientTransport(new URL(opts.url), { requestInit: { headers } });
    const versionNegotiation = negotiationFor(opts.mode);
    const client = new Client(
        { name: 'switchboard-ts-client', version: '0.0.0' },
        versionNegotiation ? { versionNegotiation } : {}
    );
    const timeoutMs = Math.round(opts.timeout * 1000);
    try {
        await client.connect(transport, { timeout: timeoutMs });
        // No cursor: the SDK walks every page (following nextCursor) and
        // aggregates; this also fills the tools/list cache that callTool
        // reads for output-schema validation and Mcp-Param-* headers.
        const listed = await client.listTools(undefined, { timeout: timeoutMs });
        const tools = listed.tools.map(t => t.name);
        const calls = [];
        for (const call of opts.calls) {
            try {
                const r = await client.callTool({ name: call.name, arguments: call.args }, { timeout: timeoutMs });
                calls.push({
                    name: call.name,
                    isError: r.isError === true,
                    structuredContent: r.structuredContent ?? null,
                    text: (r.content ?? [])
                        .filter(b => b.type === 'text')
                        .map(b => b.text)
                        .join('')
                });
            } catch (err) {
                if (!(err instanceof ProtocolError)) throw err;
                calls.push({
                    name: call.name,
                    isError: true,
                    structuredContent: null,
                    text: err.message,
                    error: { code: err.code, message: err.message, data: err.data ?? null }
                });
            }
        }
        return { protocol: client.getNegotiatedProtocolVersion() ?? null, tools, calls };
    } finally {
        await client.close().catch(() => {});
    }
}

const opts = parseArgs(process.argv.slice(2));
const { sdk } = await importSdk();
const deadline = setTimeout(() => die(`${opts.url} (mode ${opts.mode}): no result within ${opts.timeout}s`), opts.timeout * 1000);
try {
    const out = await run(opts, sdk);
    clearTimeout(deadline);
    process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
} catch (err) {
    clearTimeout(deadline);
    die(`${opts.url} (mode ${opts.mode}): ${describe(err)}`);
}
