// Completes Switchboard's authorization pages in headless Chromium, as a
// member would: sign in (if the page asks), pick the organization, approve
// (or deny), then stop when the browser is sent to the client's redirect URI.
//
//   node browser_authorize.mjs --url AUTHORIZATION_URL --email E --password P
//        [--org SLUG] [--decision approve|deny] --expect-redirect PREFIX
//        [--timeout-ms N]
//
// Needs playwright-core (NODE_PATH or a node_modules above this file) and
// $SWITCHBOARD_CHROMIUM (default /usr/lib/chromium/chromium). The request to
// the redirect URI is observed, not answered: nothing needs to listen there
// (and if something does, e.g. mcp-remote, it gets the code as usual).
//
// Prints one JSON line: {"redirect": URL, "steps": ["sign-in", ...]}.
// Exit 0 when the redirect was reached; 3 on an error page (its text on
// stderr); 2 on anything else (timeout, unexpected page).

import { createRequire } from 'node:module';

// NODE_PATH (the tools' node_modules) is honoured by require().
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

function args(argv) {
  const out = { decision: 'approve', timeoutMs: 60000 };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (v === undefined) fail(2, `missing value for ${k}`);
    switch (k) {
      case '--url': out.url = v; break;
      case '--email': out.email = v; break;
      case '--password': out.password = v; break;
      case '--org': out.org = v; break;
      case '--decision': out.decision = v; break;
      case '--expect-redirect': out.expect = v; break;
      case '--timeout-ms': out.timeoutMs = Number(v); break;
      default: fail(2, `unknown argument ${k}`);
    }
  }
  for (const k of ['url', 'email', 'password', 'expect']) if (!out[k]) fail(2, `--${k} is required`);
  return out;
}

function fail(code, msg) {
  process.stderr.write(`browser_authorize: ${msg}\n`);
  process.exit(code);
}

const opts = args(process.argv.slice(2));
const browser = await chromium.launch({
  executablePath: process.env.SWITCHBOARD_CHROMIUM || '/usr/lib/chromium/chromium',
  headless: true,
});
const timer = setTimeout(async () => {
  const pages = browser.contexts().flatMap((c) => c.pages());
  const where = pages.length ? `${pages[0].url()} (${await pages[0].title().catch(() => '')})` : 'no page';
  fail(2, `timed out after ${opts.timeoutMs} ms at ${where}`);
}, opts.timeoutMs);

const steps = [];
let redirect = null;
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  // The client's redirect URI: watch for the request (route handlers do
  // not see requests reached through a redirect). If nothing listens there
  // the navigation fails, which is fine: the URL is what we wanted.
  page.on('request', (r) => {
    if (!redirect && r.url().startsWith(opts.expect)) redirect = r.url();
  });
  await page.goto(opts.url, { waitUntil: 'domcontentloaded' }).catch((e) => {
    if (!redirect) throw e;
  });
  for (let n = 0; n < 10 && !redirect; n++) {
    if (await page.$('main#oauth-error')) {
      const text = (await page.textContent('main#oauth-error')).trim().replace(/\s+/g, ' ');
      process.stderr.write(`browser_authorize: error page: ${text}\n`);
      process.stdout.write(JSON.stringify({ error: text, steps }) + '\n');
      process.exit(3);
    }
    const nav = () => page.waitForNavigation({ waitUntil: 'domcontentloaded' }).catch(() => {});
    if (await page.$('form#oauth-sign-in')) {
      steps.push('sign-in');
      await page.fill('form#oauth-sign-in input[name=email]', opts.email);
      await page.fill('form#oauth-sign-in input[name=password]', opts.password);
      await Promise.all([nav(), page.click('form#oauth-sign-in button[type=submit]')]);
    } else if (await page.$('form#oauth-pick-org')) {
      steps.push('pick-org');
      if (opts.org) await page.check(`form#oauth-pick-org input[name=org][value="${opts.org}"]`);
      await Promise.all([nav(), page.click('form#oauth-pick-org button[type=submit]')]);
    } else if (await page.$('form#oauth-consent')) {
      steps.push('consent');
      await Promise.all([nav(), page.click(`form#oauth-consent button[name=decision][value=${opts.decision}]`)]);
    } else if (!redirect) {
      const text = ((await page.textContent('body').catch(() => '')) || '').trim().slice(0, 300);
      fail(2, `unexpected page ${page.url()} (${await page.title()}): ${text}`);
    }
  }
  if (!redirect) fail(2, `the pages did not lead to ${opts.expect}; last page ${page.url()}`);
  process.stdout.write(JSON.stringify({ redirect, steps }) + '\n');
} finally {
  clearTimeout(timer);
  await browser.close();
}
