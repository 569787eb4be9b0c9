// Sharing and embedding in headless Chromium: URL state, widgets in a sandboxed iframe inside
// the example post, auto-resize, hostile URLs, keyboard operation, exports, dark theme, CSP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { harness, shots } from './harness.mjs';

const h = harness();
const open = (path, opts) => h.open(path, opts);
const foreign = (urls) => h.foreign(urls);

/** A short fingerprint of a canvas's pixels, to tell whether a chart was redrawn. */
const pixels = (frame, selector) =>
  frame.$eval(selector, (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let h = 0;
    for (let i = 0; i < d.length; i += 13) h = (h * 31 + d[i]) | 0;
    return h;
  });

test('the example post loads both widgets at their settings and sizes them', async () => {
  const { page, errors, warnings, urls } = await open('embed-example.html', { width: 1024 });
  const frames = {
    histogram: page.frameLocator('#widget-histogram'),
    accuracy: page.frameLocator('#widget-accuracy'),
  };
  await frames.histogram.locator('canvas').first().waitFor();
  await frames.accuracy.locator('canvas').first().waitFor();
  assert.equal(await frames.histogram.locator('#bits-value').textContent(), '3');
  assert.equal(await frames.histogram.locator('input[name=layer][value=fc1]').isChecked(), true);
  assert.equal(await frames.histogram.locator('input[name=scheme][value=sym]').isChecked(), true);
  assert.equal(await frames.histogram.locator('h2').count(), 1, 'one panel only');
  assert.match(await frames.histogram.locator('h2').textContent(), /integer grid/);
  assert.equal(await frames.accuracy.locator('#bits-value').textContent(), '4');
  assert.match(await frames.accuracy.locator('table.compare tbody tr').nth(1).textContent(), /4-bit asymmetric/);
  // The host's few lines of script resized each iframe to the height its widget posted. (Chromium
  // does not render a cross-origin iframe while it is off screen, so scroll to each.)
  for (const id of ['#widget-histogram', '#widget-accuracy']) await page.locator(id).scrollIntoViewIfNeeded();
  await page.waitForFunction(() =>
    [...document.querySelectorAll('iframe')].every((f) => f.style.height && f.style.height !== '560px'),
  );
  const heights = await page.$$eval('iframe', (fs) => fs.map((f) => parseFloat(f.style.height)));
  assert.ok(heights.every((h) => h > 200 && h < 3000), `heights ${heights}`);
  await page.screenshot({ path: join(shots, 'example-post-1024.png'), fullPage: true });
  assert.deepEqual(foreign(urls), []);
  // The accuracy widget's workers start inside the sandboxed iframe (opaque origin) too.
  await frames.accuracy.locator('table.compare tbody tr.done').first().waitFor();
  h.assertWorkers(urls, warnings);
  assert.deepEqual(errors.filter((e) => /Content Security Policy|Refused/.test(e)), [], 'no CSP violation');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the URL holds the view and a copied URL restores it', async () => {
  const { page, errors } = await open('');
  await page.waitForSelector('canvas');
  await page.click('input[name=layer][value=fc1]');
  await page.click('input[name=scheme][value=asym]');
  await page.focus('#bits');
  await page.keyboard.press('ArrowLeft');
  await page.waitForFunction(() => location.search.includes('bits=7'));
  const search = await page.evaluate(() => location.search);
  assert.equal(search, '?bits=7&scheme=asym&layer=fc1&metric=mae');
  const copy = await open(search);
  await copy.page.waitForSelector('canvas');
  assert.equal(await copy.page.textContent('#bits-value'), '7');
  assert.equal(await copy.page.isChecked('input[name=layer][value=fc1]'), true);
  assert.equal(await copy.page.isChecked('input[name=scheme][value=asym]'), true);
  assert.deepEqual([...errors, ...copy.errors], []);
  await page.close();
  await copy.page.close();
});

test('a malformed URL shows a notice and a working app', async () => {
  const { page, errors } = await open(`?bits=99&scheme=foo&bits=%FF&layer=${'x'.repeat(10_000)}&zzz=1`);
  await page.waitForSelector('.notice');
  const notice = await page.textContent('.notice');
  assert.match(notice, /scheme/);
  assert.match(notice, /not valid text/);
  assert.match(notice, /overlong/);
  assert.match(notice, /unknown setting/);
  assert.equal(await page.textContent('#bits-value'), '16', 'bits=99 → nearest width, 16');
  assert.equal(await page.locator('table.essay tbody tr').count(), 4);
  const before = await pixels(page, '.panel canvas');
  await page.focus('#bits');
  await page.keyboard.press('Home');
  await page.waitForFunction(() => document.querySelector('#bits-value').textContent === '2');
  assert.notEqual(await pixels(page, '.panel canvas'), before, 'the app still works');
  assert.deepEqual(errors, []);
  await page.close();
});

test('an app that cannot start says why instead of leaving a blank page', async () => {
  // A module this browser cannot compile (as without WebAssembly SIMD), and a script that does
  // not load: the note index.html shows until the app starts turns into an alert.
  const cases = [
    ['**/*.wasm', { status: 200, contentType: 'application/wasm', body: Buffer.from('not a wasm module') }, /could not start\. .*Details: .*CompileError/],
    ['**/quant-playground-*.js', { status: 404, body: 'gone' }, /could not start\. .*Details: a file of the app did not load/],
  ];
  for (const [pattern, response, message] of cases) {
    const page = await h.browser.newPage();
    await page.route(pattern, (route) => route.fulfill(response));
    await page.goto(h.server.url);
    const alert = page.locator('#boot[role=alert]');
    await alert.waitFor({ timeout: 20_000 });
    const text = await alert.textContent();
    assert.match(text, message);
    assert.match(text, /Safari 16\.4\+/);
    assert.ok(await alert.isVisible());
    await page.close();
  }
});

test('keyboard alone reaches and moves the bits slider, and the chart follows', async () => {
  const { page, errors } = await open('');
  await page.waitForSelector('canvas');
  const before = await pixels(page, '.panel canvas');
  for (let i = 0; i < 10 && (await page.evaluate(() => document.activeElement?.id)) !== 'bits'; i++) {
    await page.keyboard.press('Tab');
  }
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'bits', 'Tab reaches the slider');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, 'none', 'focus is visible');
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  assert.equal(await page.textContent('#bits-value'), '6');
  // The redraw runs in an effect after the input event: poll for it.
  let after = before;
  for (let i = 0; i < 50 && after === before; i++) {
    await page.waitForTimeout(20);
    after = await pixels(page, '.panel canvas');
  }
  assert.notEqual(after, before);
  assert.deepEqual(errors, []);
  await page.close();
});

test('exports: a chart as a valid, non-blank PNG and the table as CSV', async () => {
  const { page, errors } = await open('?bits=3&layer=fc2');
  await page.waitForSelector('canvas');
  const [png] = await Promise.all([page.waitForEvent('download'), page.click('.panel:first-child button.export')]);
  assert.equal(png.suggestedFilename(), 'quant-playground-histogram.png');
  const bytes = readFileSync(await png.path());
  assert.deepEqual([...bytes.subarray(1, 4)].map((b) => String.fromCharCode(b)).join(''), 'PNG');
  const width = bytes.readUInt32BE(16);
  const canvasWidth = await page.$eval('.panel canvas', (c) => c.width);
  assert.equal(width, canvasWidth, 'device resolution');
  assert.ok(bytes.length > 8_000, `a blank canvas compresses to almost nothing; got ${bytes.length} bytes`);
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('text=Download CSV')]);
  const text = readFileSync(await csv.path(), 'utf8');
  assert.match(text, /^layer,shape,min,max,scale,zero_point,mean abs error\n/);
  assert.equal(text.trim().split('\n').length, 5);
  assert.match(text, /\nfc2,"\[10, 128\]",/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('dark theme from &theme=dark, charts included; a chart has its numbers as a table', async () => {
  const { page, errors } = await open('?theme=dark&bits=2');
  await page.waitForSelector('canvas');
  assert.equal(await page.getAttribute('html', 'data-theme'), 'dark');
  const corner = await page.$eval('.panel canvas', (c) => [...c.getContext('2d').getImageData(2, 2, 1, 1).data]);
  assert.ok(corner[0] < 60 && corner[1] < 60 && corner[2] < 60, `dark chart background, got ${corner}`);
  await page.click('.panel:first-child summary');
  // The table is built on the details' toggle event, a task after the click: wait for its rows.
  await page.locator('.panel:first-child table.numbers tbody tr').nth(79).waitFor({ timeout: 5000 }).catch(() => {});
  const rows = await page.locator('.panel:first-child table.numbers tbody tr').count();
  assert.ok(rows >= 80, `80 histogram bins and the occupied levels, got ${rows}`);
  const label = await page.getAttribute('.panel canvas', 'aria-label');
  assert.match(label, /Histogram of the 18,432 weights of conv2/);
  await page.screenshot({ path: join(shots, 'dark-1280.png') });
  assert.deepEqual(errors, []);
  await page.close();
});

test('the example post at phone width, dark', async () => {
  const { page, errors } = await open('embed-example.html', { width: 390, height: 844, colorScheme: 'dark' });
  await page.frameLocator('#widget-histogram').locator('canvas').first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${overflow}px of horizontal scroll`);
  await page.waitForTimeout(500);
  await page.screenshot({ path: join(shots, 'example-post-390-dark.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});
