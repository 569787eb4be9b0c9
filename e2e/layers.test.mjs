// The digits and the layers in the browser: the drawing pad reads a test digit as the CLI does
// and follows a stroke, the flips list is the CLI's for several recipes, and the per-layer
// controls, sensitivity and allocation agree with `qp`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { harness, root, shots } from './harness.mjs';

const h = harness();
const qp = (...args) => JSON.parse(execFileSync(join(root, 'target/debug/qp'), [...args, '--format', 'json']));

const probsOn = (page, scope) => page.$$eval(`${scope} .prob-row`, (rows) => rows.map((r) => [Number(r.dataset.fp32), Number(r.dataset.quantized)]));

test('embed=draw: a test digit on the pad gets the CLI’s probabilities, and a stroke changes them', async () => {
  for (const width of [1280, 390]) {
    const { page, errors } = await h.open('?embed=draw&bits=3&scheme=sym&digit=17', { width });
    await page.waitForSelector('#draw .prob-row');
    const want = qp('flips', '--bits', '3', '--mode', 'sym', '--digit', '17').digit;
    const got = await probsOn(page, '#draw');
    assert.equal(got.length, 10);
    for (let c = 0; c < 10; c++) {
      assert.ok(Math.abs(got[c][0] - want.fp32[c]) < 1e-5, `FP32 class ${c}: ${got[c][0]} vs ${want.fp32[c]}`);
      assert.ok(Math.abs(got[c][1] - want.quantized[c]) < 1e-5, `3-bit class ${c}: ${got[c][1]} vs ${want.quantized[c]}`);
    }
    // Clear, then draw a 1: a vertical stroke down the middle of the pad.
    await page.click('#draw .pad-tools button:first-child');
    await page.waitForSelector('#draw .probs', { state: 'detached' });
    const pad = await page.locator('#draw canvas.pad').boundingBox();
    const x = pad.x + pad.width * 0.5;
    await page.mouse.move(x, pad.y + pad.height * 0.2);
    await page.mouse.down();
    for (let i = 1; i <= 12; i++) await page.mouse.move(x + i * 0.3, pad.y + pad.height * (0.2 + i * 0.05));
    if (width === 1280) await page.locator('#draw').screenshot({ path: join(shots, 'draw-mid-stroke-1280.png') });
    await page.mouse.up();
    await page.waitForSelector('#draw .probs');
    assert.equal(await page.getAttribute('#draw .probs', 'data-fp32'), '1', 'a vertical stroke is a 1');
    const ms = Number(await page.getAttribute('#draw-timing', 'data-ms'));
    assert.ok(ms > 0, `the update was timed (${ms} ms)`);
    // The 28×28 the network reads is not blank.
    const ink = await page.$eval('#draw canvas.seen', (c) => {
      const d = c.getContext('2d').getImageData(0, 0, 28, 28).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) n += d[i] > 0 ? 1 : 0;
      return n;
    });
    assert.ok(ink > 20, `${ink} inked pixels`);
    await page.locator('#draw').screenshot({ path: join(shots, `draw-${width}.png`) });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no sideways scroll at ${width} px (${overflow} px)`);
    assert.deepEqual(errors, []);
  }
});

test('embed=flips: the flipped digits are the CLI’s for several recipes', async () => {
  for (const [query, args] of [
    ['bits=3&scheme=sym', ['--bits', '3', '--mode', 'sym']],
    ['bits=4&scheme=asym&granularity=channel', ['--bits', '4', '--mode', 'asym', '--granularity', 'channel']],
    ['bits=8&scheme=sym&fc1.bits=2', ['--bits', '8', '--mode', 'sym', '--layer-bits', 'fc1=2']],
  ]) {
    const want = qp('flips', ...args).flips;
    const { page, errors } = await h.open(`?embed=flips&${query}`);
    await page.waitForSelector('#flips .flip-grid, #flips .no-flips', { timeout: 60_000 });
    if (want.length === 0) {
      assert.ok(await page.$('#flips .no-flips'));
    } else {
      assert.equal(Number(await page.getAttribute('#flips .flip-grid', 'data-count')), want.length, query);
      const more = page.locator('#flips button.link', { hasText: 'Show all' });
      if (await more.count()) await more.click();
      await page.waitForFunction((n) => document.querySelectorAll('#flips .flip').length === n, want.length);
      const got = await page.$$eval('#flips .flip', (bs) => bs.map((b) => Number(b.dataset.index)).sort((a, b) => a - b));
      assert.deepEqual(got, want.map((f) => f.index).sort((a, b) => a - b), query);
    }
    assert.deepEqual(errors, []);
  }
});

test('flips at 1280 and 390 px: a click shows both networks’ probabilities; the curve and the matrix', async () => {
  for (const width of [1280, 390]) {
    const { page, errors } = await h.open('?bits=3&scheme=sym', { width });
    // The full page scores the digits only once the reader scrolls to the panel.
    await page.locator('#flips').scrollIntoViewIfNeeded();
    await page.waitForSelector('#flips .flip-grid', { timeout: 60_000 });
    const first = page.locator('#flips .flip').first();
    const index = Number(await first.getAttribute('data-index'));
    await first.click();
    await page.waitForFunction((i) => location.search.includes(`digit=${i}`), index);
    const want = qp('flips', '--bits', '3', '--mode', 'sym', '--digit', String(index)).digit;
    const got = await probsOn(page, '#flips');
    for (let c = 0; c < 10; c++) assert.ok(Math.abs(got[c][1] - want.quantized[c]) < 1e-5, `class ${c}`);
    // The confusion matrix counts every digit once.
    const sum = await page.$$eval('#flips table.confusion tbody td', (tds) => tds.reduce((s, td) => s + Number(td.textContent.split(' ')[0]), 0));
    assert.equal(sum, 2000);
    // The curve: a point per width once every width is scored (its numbers, opened).
    await page.click('#flips .chart-tools summary');
    await page.waitForFunction(() => document.querySelectorAll('#flips table.numbers tbody tr').length === 8, null, { timeout: 60_000 });
    await page.locator('#flips').scrollIntoViewIfNeeded();
    await page.waitForTimeout(3000);
    await page.locator('#flips').screenshot({ path: join(shots, `flips-${width}.png`) });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no sideways scroll at ${width} px (${overflow} px)`);
    assert.deepEqual(errors, []);
  }
});

test('embed=layers: per-layer choices set the recipe; sensitivity and the allocation are the CLI’s', async () => {
  const sens = qp('sensitivity');
  const alloc = qp('allocate', '--budget-bytes', '170000');
  for (const width of [1280, 390]) {
    const { page, errors } = await h.open('?embed=layers&bits=8&scheme=sym&budget=170000', { width });
    await page.waitForSelector('#layers select[data-layer="fc1"]');
    // Every sensitivity cell measured, then the search's candidates.
    await page.waitForFunction((n) => Number(document.querySelector('#alloc-status')?.dataset.measured) === n,
      alloc.measured.length, { timeout: 240_000 });
    const best = await page.textContent('#alloc-best');
    const b = alloc.best;
    assert.ok(best.includes(`${b.candidate.size_bytes.toLocaleString('en')} bytes, ${b.evaluation.accuracy.toFixed(2)}%`), best);
    // The sensitivity chart's numbers: the CLI's, cell by cell.
    await page.locator('#layers .chart-tools summary').first().click();
    await page.waitForSelector('#layers table.numbers tbody tr');
    const rows = await page.$$eval('#layers table.numbers', (tables) => [...tables[0].querySelectorAll('tbody tr')]
      .map((tr) => [...tr.children].map((c) => c.textContent.trim())));
    for (const cell of sens.sensitivity) {
      const row = rows.find((r) => r[0] === cell.layer);
      const col = [2, 3, 4, 5, 6, 7, 8, 16].indexOf(cell.bits) + 1;
      assert.equal(row[col], `${cell.evaluation.accuracy.toFixed(2)}%`, `${cell.layer} at ${cell.bits}`);
    }
    await page.locator('#layers').screenshot({ path: join(shots, `layers-${width}.png`) });
    if (width === 1280) {
      // One click: the best recipe under the budget becomes the page's.
      await page.click('#layers .budget button');
      await page.waitForFunction((r) => decodeURIComponent(location.search).includes(r.split('&').pop()), b.candidate.recipe);
      // A layer's select moves the recipe, and the size follows.
      await page.selectOption('#layers select[data-layer="fc2"]', 'fp32');
      await page.waitForFunction(() => location.search.includes('fc2.dtype=fp32'));
    }
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no sideways scroll at ${width} px (${overflow} px)`);
    assert.deepEqual(errors, []);
  }
});
