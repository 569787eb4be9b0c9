// The README's first command as a newcomer meets it: `scripts/serve.sh` builds and serves the
// release app, and the page it serves loads with no console error and no Content-Security-Policy
// violation (Trunk's live-reload script, injected inline, used to be refused on every load).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { launch } from './browser.mjs';
import { root } from './harness.mjs';

/** A free port on 127.0.0.1. */
async function freePort() {
  const s = createServer();
  await new Promise((ok) => s.listen(0, '127.0.0.1', ok));
  const { port } = s.address();
  await new Promise((ok) => s.close(ok));
  return port;
}

test('the page scripts/serve.sh serves has no console error and no CSP violation', { timeout: 600_000 }, async () => {
  const port = await freePort();
  // Its own output directory, so the other tests' dist/ is left alone.
  const dist = mkdtempSync(join(tmpdir(), 'qp-serve-'));
  const server = spawn(join(root, 'scripts/serve.sh'), ['--port', String(port), '--dist', dist], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  server.stdout.on('data', (d) => (log += d));
  server.stderr.on('data', (d) => (log += d));
  const browser = await launch();
  try {
    const url = `http://127.0.0.1:${port}/`;
    // Up when it answers with the built page (the release build takes a while when cold).
    const deadline = Date.now() + 540_000;
    for (;;) {
      const ok = await fetch(url).then((r) => r.ok && r.text()).catch(() => false);
      if (ok && ok.includes('Content-Security-Policy')) break;
      assert.ok(server.exitCode === null, `serve.sh exited: ${log.slice(-2000)}`);
      assert.ok(Date.now() < deadline, `serve.sh did not serve in time: ${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const page = await browser.newPage();
    const problems = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page: ${e}`));
    await page.addInitScript(() =>
      document.addEventListener('securitypolicyviolation', (e) =>
        console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`),
      ),
    );
    await page.goto(url + '?bits=4&scheme=asym');
    await page.waitForFunction(() => document.querySelectorAll('table.essay tbody tr').length === 4, null, { timeout: 60_000 });
    // The accuracy of the first setting arrives from the workers (the page is fully working).
    await page.waitForFunction(() => document.querySelector('table.compare tbody tr.done'), null, { timeout: 60_000 });
    await page.waitForTimeout(500);
    assert.deepEqual(problems, []);
    await page.close();
  } finally {
    await browser.close();
    try {
      process.kill(-server.pid, 'SIGTERM');
    } catch {}
  }
});
