// The QAT section in headless Chromium: it fetches the training digits only when the reader
// presses Start, trains in its own worker, and the 2-bit network's accuracy comes back. The
// step-0 accuracy is the recipe's weight-only accuracy (PyTorch's, via the goldens the CLI's
// tests check); the trained figure is compared with `qp qat` on the same seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { harness, root, shots } from './harness.mjs';

const h = harness();
const summary = (page) => page.locator('.qat-summary').evaluate((e) => ({ ...e.dataset }));

test('embed=qat: Start fetches the digits once, the 2-bit accuracy climbs, the weights download', async () => {
  const { page, errors, urls } = await h.open('?embed=qat&bits=2&scheme=sym&qat.steps=50');
  await page.locator('#qat-start').waitFor();
  await page.waitForTimeout(500);
  assert.equal(urls.filter((u) => u.includes('mnist-train')).length, 0, 'no training digits at load');
  await page.click('#qat-start');
  await page.locator('.qat-summary[data-step="50"]').waitFor({ timeout: 120_000 });
  await page.locator('.qat-status', { hasText: 'Finished' }).waitFor();
  assert.equal(urls.filter((u) => u.includes('mnist-train')).length, 2, 'images and labels, once each');
  assert.deepEqual(h.foreign(urls), []);
  const s = await summary(page);
  const cli = JSON.parse(execFileSync(join(root, 'target/debug/qp'),
    ['qat', '--bits', '2', '--mode', 'sym', '--steps', '50', '--every', '25', '--format', 'json']));
  // Before any step: the recipe's weight-only accuracy, exactly (the essay's 32.6 %).
  assert.equal(Number(s.before).toFixed(2), cli.curve[0].test.accuracy.toFixed(2));
  assert.equal(Number(s.before).toFixed(2), '32.60');
  // Trained: the accuracy climbs as the CLI's does. Not to the bit: native matrix products fuse
  // multiply-adds (FMA) where wasm has none, so the weights part in the last bits and the runs
  // drift apart a little.
  const after = Number(s.accuracy);
  assert.ok(after > Number(s.before) + 15, `${s.before} → ${after}`);
  assert.ok(Math.abs(after - cli.curve[2].test.accuracy) < 3, `browser ${after}, CLI ${cli.curve[2].test.accuracy}`);
  assert.ok(Number(s.rate) > 0);
  // The points' test evaluations ran on the helper worker while this one trained on.
  assert.ok(Number(s.evaluatedByHelper) >= 1, JSON.stringify(s));
  // Each step's batch was shared with a helper worker.
  assert.equal(await page.locator('.qat-status').getAttribute('data-workers'), '2');
  // The curve: a point every 25 steps.
  assert.equal(await page.locator('.qat canvas').count(), 3, 'the curve, before and after');
  // The download is a safetensors file with PyTorch's names.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#qat-download')]);
  assert.match(download.suggestedFilename(), /^mnistnet-qat-bits-2-scheme-sym-50steps\.safetensors$/);
  const bytes = readFileSync(await download.path());
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  for (const name of ['conv1.weight', 'conv2.weight', 'fc1.weight', 'fc2.weight', 'fc2.bias']) {
    assert.equal(header[name].dtype, 'F32', name);
  }
  assert.deepEqual(header['fc1.weight'].shape, [128, 3136]);
  await page.locator('#qat').screenshot({ path: join(shots, 'qat.png') });
  assert.deepEqual(errors, []);
});

test('the full page at phone width: Pause holds the step, Resume goes on, Reset clears', async () => {
  const { page, errors } = await h.open('?bits=3&scheme=sym&qat.steps=100', { width: 390 });
  await page.locator('#qat-start').scrollIntoViewIfNeeded();
  await page.click('#qat-start');
  await page.locator('#qat-pause').waitFor({ timeout: 120_000 });
  await page.waitForFunction(() => Number(document.querySelector('.qat-status')?.dataset.step) >= 10, null, { timeout: 60_000 });
  await page.click('#qat-pause');
  await page.locator('.qat-status', { hasText: 'Paused' }).waitFor();
  await page.waitForTimeout(300);
  const held = await page.locator('.qat-status').getAttribute('data-step');
  await page.waitForTimeout(1500);
  assert.equal(await page.locator('.qat-status').getAttribute('data-step'), held, 'no step while paused');
  await page.locator('#qat').screenshot({ path: join(shots, 'qat-390-paused.png') });
  await page.click('#qat-resume');
  await page.waitForFunction((h) => Number(document.querySelector('.qat-status')?.dataset.step) > Number(h), held, { timeout: 60_000 });
  await page.locator('.qat-summary[data-step="100"]').waitFor({ timeout: 120_000 });
  const s = await summary(page);
  assert.ok(Number(s.accuracy) > Number(s.before), `${s.before} → ${s.accuracy}`);
  await page.locator('#qat').screenshot({ path: join(shots, 'qat-390.png') });
  // The page never scrolls sideways at phone width.
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth + 1));
  await page.click('#qat-reset');
  await page.locator('.qat-summary').waitFor({ state: 'detached' });
  assert.equal(await page.locator('#qat-download').count(), 0);
  assert.deepEqual(errors, []);
});

test('LSQ: the learned scales are drawn and the accuracy climbs; a per-channel recipe is refused with its reason', async () => {
  const { page, errors } = await h.open('?embed=qat&bits=2&scheme=sym&qat.steps=25&qat.lsq=1');
  assert.equal(await page.locator('#qat-lsq').isChecked(), true);
  assert.equal(await page.locator('#qat-observer').isDisabled(), true, 'LSQ chooses the scale, no observer');
  await page.click('#qat-start');
  await page.locator('.qat-summary[data-step="25"]').waitFor({ timeout: 120_000 });
  const s = await summary(page);
  assert.ok(Number(s.accuracy) > Number(s.before) + 10, `${s.before} → ${s.accuracy}`);
  await page.locator('.qat-scales canvas').waitFor();
  await page.locator('.qat-scales summary').click();
  await page.locator('.qat-scales table.numbers tbody tr').first().waitFor();
  const rows = await page.locator('.qat-scales table.numbers tbody tr').count();
  assert.equal(rows, 2, 'a row of scales at step 0 and at step 25');
  // The moving-average observer from the URL, and back into it.
  await page.goto(h.server.url + '?embed=qat&qat.observer=moving_average');
  assert.equal(await page.locator('#qat-observer').inputValue(), 'moving_average');
  // LSQ here is per tensor: per channel, Start says why it cannot run.
  await page.goto(h.server.url + '?embed=qat&bits=2&scheme=sym&granularity=channel&qat.lsq=1');
  await page.click('#qat-start');
  await page.locator('.qat .error', { hasText: 'one scale per tensor' }).waitFor({ timeout: 60_000 });
  assert.deepEqual(errors, []);
});

test('activations fake-quantized too (W2A4): one worker per step, the summary says so, the accuracy climbs', async () => {
  const { page, errors } = await h.open('?embed=qat&bits=2&scheme=sym&qat.steps=25&qat.abits=4');
  assert.equal(await page.locator('#qat-abits').inputValue(), '4');
  await page.click('#qat-start');
  await page.locator('.qat-summary[data-step="25"]').waitFor({ timeout: 120_000 });
  const s = await summary(page);
  assert.ok(Number(s.accuracy) > Number(s.before) + 10, `${s.before} → ${s.accuracy}`);
  assert.match(await page.locator('.qat-summary').textContent(), /4-bit activations/);
  // The observers see each batch whole: no helper shares it.
  assert.equal(await page.locator('.qat-status').getAttribute('data-workers'), '1');
  assert.deepEqual(errors, []);
});

test('the fine-tuned weights across the app: the page runs on them, and its accuracy is the CLI’s on the downloaded file', async () => {
  const { page, errors, urls } = await h.open('?bits=2&scheme=sym&qat.steps=25');
  await page.locator('#qat-start').scrollIntoViewIfNeeded();
  await page.click('#qat-start');
  await page.locator('.qat-status', { hasText: 'Finished' }).waitFor({ timeout: 120_000 });
  // The "before" histogram was drawn full width, then the "after" one took half the row: it is
  // drawn again at its new width (canvas pixels = CSS pixels at this zoom), not shown squeezed.
  await page.locator('.qat-histograms').scrollIntoViewIfNeeded();
  await page.waitForTimeout(300);
  const widths = await page.$$eval('.qat-histograms canvas', (cs) => cs.map((c) => [c.width, c.clientWidth]));
  assert.equal(widths.length, 2);
  for (const [w, css] of widths) assert.ok(Math.abs(w - css) <= 1, JSON.stringify(widths));
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#qat-download')]);
  const file = await download.path();
  await Promise.all([page.waitForURL(/model=qat/), page.click('#qat-use')]);
  const note = page.locator('.model-note');
  await note.waitFor();
  // Both rows of the accuracy table (FP32 and the 2-bit setting) computed in full, on the
  // fine-tuned network, by the workers.
  await page.waitForFunction(() => [...document.querySelectorAll('table.compare tbody tr')].slice(0, 2)
    .every((r) => r.classList.contains('done')), null, { timeout: 120_000 });
  const acc = (i) => page.locator('table.compare tbody tr').nth(i).locator('td').first().textContent();
  const cli = JSON.parse(execFileSync(join(root, 'target/debug/qp'),
    ['report', '--weights', file, '--bits', '2', '--mode', 'sym', '--format', 'json']));
  assert.equal(await acc(0), `${cli.fp32.accuracy.toFixed(2)}%`);
  assert.equal(await acc(1), `${cli.quantized.accuracy.toFixed(2)}%`);
  assert.notEqual(await acc(1), '32.60%', 'not the bundled network');
  h.assertWorkers(urls, []);
  // Back to the bundled network.
  await Promise.all([page.waitForURL((u) => !u.search.includes('model=qat')), note.locator('a').click()]);
  await page.waitForFunction(() => document.querySelectorAll('table.compare tbody tr')[0]?.classList.contains('done'), null, { timeout: 120_000 });
  assert.equal(await acc(0), '99.00%');
  assert.equal(await page.locator('.model-note').count(), 0);
  assert.deepEqual(errors, []);
});

test('QAT runs inside a sandboxed iframe (opaque origin): its worker, its helper and its fetch still work', async () => {
  const { page, errors, urls } = await h.open('embed-example.html', { width: 800 });
  await page.setContent(`<iframe id="w" sandbox="allow-scripts" style="width:760px;height:1400px"
    src="${h.server.url}?embed=qat&bits=2&scheme=sym&qat.steps=25"></iframe>`);
  const frame = page.frameLocator('#w');
  await frame.locator('#qat-start').click();
  await frame.locator('.qat-summary[data-step="25"]').waitFor({ timeout: 120_000 });
  assert.equal(await frame.locator('.qat-status').getAttribute('data-workers'), '2');
  // No session storage in an opaque origin: the widget offers the download only.
  assert.equal(await frame.locator('#qat-use').count(), 0);
  assert.ok(urls.some((u) => u.includes('mnist-train-images')), 'the digits came from the same server');
  assert.deepEqual(h.foreign(urls), []);
  assert.deepEqual(errors, []);
});
