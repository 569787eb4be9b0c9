// The PTQ section in headless Chromium: it runs in its own worker, fetches the training digits
// from the same origin only when asked, and shows PyTorch's numbers (core/tests/goldens/ptq.json,
// written by scripts/ptq_goldens.py) and the CLI's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { harness, root, shots } from './harness.mjs';

const h = harness();
const goldens = JSON.parse(readFileSync(join(root, 'core/tests/goldens/ptq.json'), 'utf8'));
const golden = (preset, observer, n) =>
  goldens.configs.find((c) => c.preset === preset && c.observer === observer && c.calibration === n);
const percent = (correct) => `${((100 * correct) / 2000).toFixed(2)}%`;
/** The comparison table's rows, as {name: [accuracy, loss, size, speed]}. */
const rows = (page) =>
  page.$$eval('.ptq-table tbody tr', (trs) =>
    Object.fromEntries(trs.map((tr) => [tr.querySelector('th').textContent, [...tr.querySelectorAll('td')].map((td) => td.textContent)])));

test('the full page fetches nothing for PTQ until the reader runs it, then shows PyTorch’s accuracy', async () => {
  const { page, errors, urls } = await h.open('?ptq.preset=qnnpack&ptq.observer=minmax');
  await page.locator('#ptq-run').waitFor();
  await page.waitForTimeout(500);
  assert.equal(urls.filter((u) => u.includes('mnist-train')).length, 0, 'no training digits at load');
  await page.click('#ptq-run');
  await page.locator('.ptq-table').waitFor({ timeout: 90_000 });
  assert.equal(urls.filter((u) => u.includes('mnist-train')).length, 2, 'images and labels, once each');
  assert.deepEqual(h.foreign(urls), []);
  const r = await rows(page);
  const want = golden('qnnpack', 'minmax', 1000);
  assert.equal(r['W8A8 integer, qnnpack'][0], percent(want.correct), JSON.stringify(r));
  assert.equal(r['W8A8 integer, qnnpack'][1], want.loss.toFixed(4));
  assert.equal(r.FP32[0], '99.00%');
  assert.equal(await page.locator('.ptq-sites figure').count(), 5);
  // A new setting re-runs without the button, and the link holds it.
  await page.selectOption('#ptq-observer', 'histogram');
  await page.waitForFunction(() => location.search.includes('ptq.observer=histogram') || !location.search.includes('ptq.observer'));
  await page.waitForFunction(() => !document.querySelector('.ptq-status'), null, { timeout: 60_000 });
  const hist = await rows(page);
  const wantHist = golden('qnnpack', 'histogram', 1000);
  assert.equal(hist['W8A8 integer, qnnpack'][0], percent(wantHist.correct));
  // The loss is our calibration's: its histogram search can end one of 2,048 bins from
  // PyTorch's (core/tests/ptq.rs says why), so it is the CLI's, not PyTorch's, to the last digit.
  const cli = JSON.parse(execFileSync(join(root, 'target/debug/qp'),
    ['ptq', '--preset', 'qnnpack', '--observer', 'histogram', '--calibration', '1000', '--format', 'json']));
  assert.equal(hist['W8A8 integer, qnnpack'][1], cli.integer.loss.toFixed(4), 'the histogram run, not the min–max one');
  assert.notEqual(cli.integer.loss.toFixed(4), want.loss.toFixed(4));
  assert.equal(urls.filter((u) => u.includes('mnist-train')).length, 2, 'the digits are fetched once');
  await page.locator('#ptq').screenshot({ path: join(shots, 'ptq.png') });
  assert.deepEqual(errors, []);
});

test('embed=ptq runs at once, and its numbers are the CLI’s', async () => {
  const { page, errors } = await h.open('?embed=ptq&ptq.preset=x86&ptq.observer=histogram&ptq.calibration=100', { width: 390 });
  await page.locator('.ptq-table').waitFor({ timeout: 90_000 });
  const cli = JSON.parse(execFileSync(join(root, 'target/debug/qp'),
    ['ptq', '--preset', 'x86', '--observer', 'histogram', '--calibration', '100', '--format', 'json']));
  const r = await rows(page);
  assert.equal(r['W8A8 integer, x86'][0], percent(cli.integer.correct));
  assert.equal(r['W8A8 integer, x86'][1], cli.integer.loss.toFixed(4));
  assert.equal(r['W8A8 simulated'][1], cli.simulated.loss.toFixed(4));
  assert.equal(percent(cli.integer.correct), percent(golden('x86', 'histogram', 100).correct), 'the CLI is PyTorch’s');
  const conv1 = await page.locator('.ptq-sites figure').nth(1).locator('figcaption').textContent();
  assert.match(conv1, new RegExp(`zero_point ${cli.sites[1].zero_point} `));
  await page.screenshot({ path: join(shots, 'ptq-390.png'), fullPage: true });
  assert.deepEqual(errors, []);
});

test('PTQ runs inside a sandboxed iframe (opaque origin): its worker and its fetch still work', async () => {
  const { page, errors, urls } = await h.open('embed-example.html', { width: 800 });
  await page.setContent(`<iframe id="w" sandbox="allow-scripts" style="width:760px;height:1400px"
    src="${h.server.url}?embed=ptq&ptq.calibration=100"></iframe>`);
  const frame = page.frameLocator('#w');
  await frame.locator('.ptq-table').waitFor({ timeout: 90_000 });
  const r = await frame.locator('.ptq-table tbody tr').count();
  assert.equal(r, 4, 'FP32, weight-only, simulated and integer rows');
  assert.ok(urls.some((u) => u.includes('mnist-train-images')), 'the digits came from the same server');
  assert.deepEqual(h.foreign(urls), []);
  assert.deepEqual(errors, []);
});
