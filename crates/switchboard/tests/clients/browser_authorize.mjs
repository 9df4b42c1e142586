// Completes Switchboard's authorization pages in headless Chromium, as a
// member would: sign in (if the page asks), pick the organization (if the
// page asks), approve or deny (unless consent is remembered), then stop when
// the browser is sent to the client's redirect URI.
//
//   node browser_authorize.mjs --url AUTHORIZATION_URL --email E --password P
//        [--org SLUG] [--decision approve|deny] [--expect-redirect PREFIX]
//        [--timeout-ms N]
//
// Run it with Node 22 (target/mcp-tools/node22/bin/node). Needs:
//   playwright-core  found in $SWITCHBOARD_MCP_TOOLS/node_modules, each
//                    NODE_PATH entry, or <repo>/target/mcp-tools/node_modules
//   Chromium         $SWITCHBOARD_CHROMIUM, default Debian's
//                    /usr/lib/chromium/chromium (never downloaded)
//
// The page contract (crates/oauth/templates): form#oauth-sign-in (email,
// password), form#oauth-pick-org (radio `org` = slug), form#oauth-consent
// (button[name=decision][value=approve|deny]), main#oauth-error.
//
// The flow ends at the first request to a URL starting with PREFIX (without
// --expect-redirect: the first top-level navigation that leaves the
// authorization URL's origin). That request is observed, not intercepted:
// nothing needs to listen there (a refused connection is fine), and if
// something does (mcp-remote's or the conformance suite's callback server)
// it receives the code as usual; the script waits for its answer (up to 10 s)
// before closing the browser.
//
// Output (stdout, one JSON line) and exit status:
//   0  {"redirect": URL, "steps": ["sign-in", "pick-org", "consent"]}
//      (steps = the pages actually seen, in order)
//   2  bad arguments, no Chromium / playwright-core, timeout, unexpected
//      page, --org not offered: nothing on stdout, a message on stderr
//      with the page's URL, title and a text excerpt
//   3  an error page (main#oauth-error): {"error": TEXT, "steps": [...]}
//   4  a step refused its input and showed its form again (wrong password,
//      ...): {"refused": STEP, "alert": TEXT, "steps": [...]}

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_CHROMIUM = '/usr/lib/chromium/chromium';

function die(code, msg) {
  process.stderr.write(`browser_authorize: ${msg}\n`);
  process.exit(code);
}

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------
function parse(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        url: { type: 'string' },
        email: { type: 'string' },
        password: { type: 'string' },
        org: { type: 'string' },
        decision: { type: 'string', default: 'approve' },
        'expect-redirect': { type: 'string' },
        'timeout-ms': { type: 'string', default: '60000' },
      },
    }));
  } catch (e) {
    die(2, e.message);
  }
  for (const k of ['url', 'email', 'password']) if (!values[k]) die(2, `--${k} is required`);
  let origin;
  try {
    origin = new URL(values.url).origin;
  } catch {
    die(2, `--url is not a URL: ${values.url}`);
  }
  if (!['approve', 'deny'].includes(values.decision)) die(2, `--decision must be approve or deny, not ${values.decision}`);
  const timeoutMs = Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) die(2, `--timeout-ms must be a positive integer`);
  return {
    url: values.url,
    origin,
    email: values.email,
    password: values.password,
    org: values.org,
    decision: values.decision,
    expect: values['expect-redirect'],
    timeoutMs,
  };
}

// ESM `import` ignores NODE_PATH, so find the package directory and require it.
function loadPlaywright() {
  const dirs = [
    process.env.SWITCHBOARD_MCP_TOOLS && path.join(process.env.SWITCHBOARD_MCP_TOOLS, 'node_modules'),
    ...(process.env.NODE_PATH || '').split(path.delimiter),
    path.resolve(HERE, '../../../../target/mcp-tools/node_modules'),
  ].filter(Boolean);
  for (const d of dirs) {
    const pkg = path.join(d, 'playwright-core');
    if (existsSync(path.join(pkg, 'package.json'))) return createRequire(import.meta.url)(pkg);
  }
  die(2, `playwright-core not found in ${dirs.join(', ')}: run scripts/mcp-tools.sh (or set SWITCHBOARD_MCP_TOOLS)`);
}

const opts = parse(process.argv.slice(2));
const executablePath = process.env.SWITCHBOARD_CHROMIUM || DEFAULT_CHROMIUM;
if (!existsSync(executablePath)) {
  die(
    2,
    `headless Chromium is missing at ${executablePath}: install Debian's chromium ` +
      `(apt-get install -y --no-install-recommends chromium, as root) or set SWITCHBOARD_CHROMIUM`,
  );
}
const { chromium } = loadPlaywright();

// ---------------------------------------------------------------------------
// Browser
// ---------------------------------------------------------------------------
let browser;
try {
  browser = await chromium.launch({ executablePath, headless: true });
} catch (e) {
  die(2, `cannot launch ${executablePath}: ${e.message}`);
}
const page = await browser.newPage();
const steps = [];

// Ends the run: closes the browser (bounded), prints, exits. Only the first
// call counts (the timer and the flow may both get here; closing the browser
// makes the flow's pending calls fail).
let finishing = false;
async function finish(code, json, message) {
  if (finishing) return new Promise(() => {});
  finishing = true;
  clearTimeout(timer);
  await Promise.race([browser.close().catch(() => {}), sleep(5000)]);
  if (message) process.stderr.write(`browser_authorize: ${message}\n`);
  if (json) process.stdout.write(JSON.stringify(json) + '\n');
  process.exit(code);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// URL, title and the start of the visible text, for messages.
async function describe() {
  const grab = async (f) => (await Promise.race([f().catch(() => ''), sleep(1000).then(() => '')])) || '';
  const title = await grab(() => page.title());
  const text = (await grab(() => page.innerText('body'))).replace(/\s+/g, ' ').trim().slice(0, 400);
  return `${page.url()} (title "${title}"): ${text || '(no text)'}`;
}

const timer = setTimeout(async () => {
  const where = await describe();
  await finish(2, null, `timed out after ${opts.timeoutMs} ms (steps seen: ${steps.join(', ') || 'none'}) at ${where}`);
}, opts.timeoutMs);

// The redirect: the first matching request, whatever happens to it after.
let redirectReq = null;
let redirectSeen;
const redirected = new Promise((r) => (redirectSeen = r));
function isRedirect(req) {
  const url = req.url();
  if (opts.expect) return url.startsWith(opts.expect);
  if (!/^https?:/.test(url) || !req.isNavigationRequest()) return false;
  try {
    return req.frame() === page.mainFrame() && new URL(url).origin !== opts.origin;
  } catch {
    return false;
  }
}
page.on('request', (req) => {
  if (!redirectReq && isRedirect(req)) {
    redirectReq = req;
    redirectSeen();
  }
});

// Runs an action that navigates (goto, a submit) and waits until the new page
// is loaded, its navigation failed, or the redirect was requested.
async function navigate(action) {
  const loaded = page.waitForNavigation({ waitUntil: 'domcontentloaded', timeout: 0 }).catch(() => {});
  await Promise.race([
    action().catch((e) => {
      if (!redirectReq) throw e;
    }),
    redirected,
  ]);
  await Promise.race([loaded, redirected]);
}

// Which step is on screen: 'error' | 'sign-in' | 'pick-org' | 'consent' | null.
async function onScreen() {
  for (let attempt = 0; ; attempt++) {
    try {
      if (await page.locator('main#oauth-error').count()) return 'error';
      if (await page.locator('form#oauth-sign-in').count()) return 'sign-in';
      if (await page.locator('form#oauth-pick-org').count()) return 'pick-org';
      if (await page.locator('form#oauth-consent').count()) return 'consent';
      return null;
    } catch (e) {
      // "Execution context was destroyed": a navigation was still going on.
      if (attempt >= 5) throw e;
      await page.waitForLoadState('domcontentloaded').catch(() => {});
    }
  }
}

async function alertText() {
  const alert = page.locator('main [role=alert]');
  if (!(await alert.count())) return '';
  return (await alert.first().innerText()).replace(/\s+/g, ' ').trim();
}

// ---------------------------------------------------------------------------
// The flow
// ---------------------------------------------------------------------------
try {
  await navigate(() => page.goto(opts.url, { waitUntil: 'domcontentloaded', timeout: 0 }));
  let last = null;
  while (!redirectReq) {
    const step = await onScreen();
    if (redirectReq) break;
    if (step === 'error') {
      const text = (await page.locator('main#oauth-error').innerText()).replace(/\s+/g, ' ').trim();
      await finish(3, { error: text, steps }, `error page: ${text}`);
    }
    if (step === null) {
      await finish(2, null, `unexpected page (steps seen: ${steps.join(', ') || 'none'}) at ${await describe()}`);
    }
    if (step === last) {
      // The form came back: the server refused what was submitted.
      const alert = await alertText();
      if (alert) await finish(4, { refused: step, alert, steps }, `${step} refused: ${alert}`);
      await finish(2, null, `the ${step} page came back after it was submitted, at ${await describe()}`);
    }
    steps.push(step);
    last = step;

    if (step === 'sign-in') {
      await page.fill('form#oauth-sign-in input[name=email]', opts.email);
      await page.fill('form#oauth-sign-in input[name=password]', opts.password);
      await navigate(() => page.click('form#oauth-sign-in button[type=submit]'));
    } else if (step === 'pick-org') {
      if (opts.org) {
        const radio = page.locator(`form#oauth-pick-org input[name=org][value=${JSON.stringify(opts.org)}]`);
        if (!(await radio.count()) || !(await radio.isEnabled())) {
          const offered = await page
            .locator('form#oauth-pick-org input[name=org]:not([disabled])')
            .evaluateAll((els) => els.map((e) => e.value));
          await finish(2, null, `organization ${opts.org} is not offered (enabled: ${offered.join(', ') || 'none'}) at ${page.url()}`);
        }
        await radio.check();
      }
      await navigate(() => page.click('form#oauth-pick-org button[type=submit]'));
    } else if (step === 'consent') {
      await navigate(() => page.click(`form#oauth-consent button[name=decision][value=${opts.decision}]`));
    }
  }

  // Let whatever listens at the redirect URI receive it before the browser goes.
  await Promise.race([redirectReq.response().catch(() => null), sleep(10000)]);
  await finish(0, { redirect: redirectReq.url(), steps });
} catch (e) {
  await finish(2, null, `${e.message.split('\n')[0]} (steps seen: ${steps.join(', ') || 'none'}) at ${await describe()}`);
}
