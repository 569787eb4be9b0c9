// Shared by the browser test files: serve dist/ on 127.0.0.1, launch Chromium once per file,
// and open pages that record console errors and every requested URL.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './serve.mjs';
import { launch } from './browser.mjs';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const shots = join(root, 'test-results');

export function harness() {
  const h = { server: null, browser: null };
  before(async () => {
    h.server = await serve(join(root, 'dist'));
    h.browser = await launch();
    mkdirSync(shots, { recursive: true });
  });
  after(async () => {
    await h.browser?.close();
    h.server?.close();
  });
  /** Opens `path` under the server, collecting console errors and request URLs. `init` runs in
   * the page before any of its scripts. */
  h.open = async (path = '', { width = 1280, height = 900, colorScheme = 'light', deviceScaleFactor = 1, init } = {}) => {
    const page = await h.browser.newPage({ viewport: { width, height }, deviceScaleFactor, colorScheme, acceptDownloads: true });
    if (init) await page.addInitScript(init);
    const errors = [];
    const warnings = [];
    const urls = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('console', (m) => m.type() === 'warning' && warnings.push(m.text()));
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('request', (r) => urls.push(r.url()));
    await page.goto(h.server.url + path);
    return { page, errors, warnings, urls };
  };
  /** Requests that left the app's origin (data: and blob: URLs never leave the page). */
  h.foreign = (urls) => {
    const origin = new URL(h.server.url).origin;
    return urls.filter((u) => !u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:'));
  };
  /** The accuracy ran in Web Workers (started from a Blob URL), not on the main thread. */
  h.assertWorkers = (urls, warnings) => {
    assert.ok(urls.some((u) => u.startsWith('blob:')), 'a worker script was started');
    assert.deepEqual(warnings.filter((w) => /main thread/.test(w)), [], 'no fallback to the main thread');
  };
  return h;
}
