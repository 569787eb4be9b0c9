// The number formats in the browser: the format picker sets the recipe's dtype, the histogram
// and staircase draw the format's own grid, the accuracy is the CLI's (whose weights the Rust
// goldens hold to PyTorch, bitsandbytes, ggml and torchao), and the gallery fills every format's
// row with the CLI's numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { harness, root, shots } from './harness.mjs';

const h = harness();
const qp = (...args) => JSON.parse(execFileSync(join(root, 'target/debug/qp'), [...args, '--format', 'json']));

test('the format picker: NF4 on fc1 draws its block grid and scores the CLI’s accuracy', async () => {
  const { page, errors } = await h.open('?bits=4&scheme=sym&layer=fc1&dtype=nf4');
  await page.waitForSelector('canvas');
  assert.equal(await page.inputValue('#dtype'), 'nf4');
  assert.ok(await page.locator('#bits').isDisabled(), 'bits do not apply to NF4');
  assert.equal(await page.textContent('#histogram-title'), "Weights on the format's grid");
  const derivation = await page.textContent('#format-derivation');
  assert.match(derivation, /NF4 block 0: absmax = /);
  assert.match(derivation, /6,272 blocks/);
  // The essay table: no (scale, zero_point) pair under a format of its own.
  const fc1 = await page.$$eval('table.essay tbody tr', (rows) => rows.map((r) => [...r.children].map((c) => c.textContent.trim()))[2]);
  assert.equal(fc1[4], '—');
  // The accuracy of the whole network in NF4: the CLI's.
  const want = qp('report', '--dtype', 'nf4');
  await page.waitForFunction(() => {
    const r = document.querySelectorAll('table.compare tbody tr')[1];
    return r && r.classList.contains('done') && r.querySelector('th').textContent === 'NF4';
  }, null, { timeout: 120_000 });
  const acc = await page.$eval('table.compare tbody tr:nth-child(2) td', (td) => td.textContent);
  assert.equal(acc, `${want.quantized.accuracy.toFixed(2)}%`);
  // Picking another format moves the URL with it.
  await page.selectOption('#dtype', 'q4_0');
  await page.waitForFunction(() => location.search.includes('dtype=q4_0'));
  await page.waitForFunction(() => /Q4_0 block 0: The value of largest magnitude/.test(document.querySelector('#format-derivation')?.textContent ?? ''));
  await page.screenshot({ path: join(shots, 'formats-q4_0-1280.png'), fullPage: false });
  assert.deepEqual(errors, []);
});

test('embed=gallery: every format’s row is the CLI’s, with the Pareto front, and a row picks its format', async () => {
  const want = qp('sweep', '--dtypes', 'all');
  for (const width of [1280, 390]) {
    const { page, errors } = await h.open('?embed=gallery', { width });
    await page.waitForFunction((n) => Number(document.querySelector('.gallery-table')?.dataset.filled) === n, want.length, { timeout: 180_000 });
    const rows = await page.$$eval('.gallery-table tbody tr', (trs) => trs.map((tr) => ({
      format: tr.dataset.format,
      front: tr.classList.contains('front'),
      cells: [...tr.children].map((c) => c.textContent.trim()),
    })));
    assert.equal(rows.length, want.length);
    for (const [i, w] of want.entries()) {
      const r = rows[i];
      assert.equal(r.cells[0], w.format);
      assert.equal(r.cells[1], w.bits_per_weight.toFixed(2));
      assert.equal(r.cells[2], w.size_bytes.toLocaleString('en'));
      assert.equal(r.cells[5], `${w.accuracy.toFixed(2)}%`, w.format);
      assert.equal(r.cells[6], w.loss.toFixed(4), w.format);
      assert.equal(Number(r.cells[3]).toPrecision(3), Number(w.mean_abs_error).toPrecision(3), w.format);
    }
    // The front: no other format at as few bits or fewer is as accurate or more.
    for (const [i, w] of want.entries()) {
      const beaten = want.some((o) => o.bits_per_weight <= w.bits_per_weight && o.accuracy >= w.accuracy
        && (o.bits_per_weight < w.bits_per_weight || o.accuracy > w.accuracy));
      assert.equal(rows[i].front, !beaten, w.format);
    }
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no sideways scroll at ${width} px (${overflow} px)`);
    await page.locator('.gallery').screenshot({ path: join(shots, `gallery-${width}.png`) });
    if (width === 1280) {
      // A click on a point of the Pareto front (a green dot) picks a format.
      const canvas = page.locator('.gallery canvas');
      const box = await canvas.boundingBox();
      const dot = await canvas.evaluate((c) => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const dpr = window.devicePixelRatio || 1;
        // The front's dots between 4 and 6 bits per weight (a quarter to 45 % across).
        for (let x = Math.floor(c.width * 0.25); x < c.width * 0.45; x++) {
          for (let y = 0; y < c.height; y++) {
            const i = (y * c.width + x) * 4;
            if (d[i] === 0 && d[i + 1] === 158 && d[i + 2] === 115) return [x / dpr, y / dpr];
          }
        }
        return null;
      });
      assert.ok(dot, 'a green dot on the chart');
      const before = await page.$eval('.gallery-table tr.selected', (tr) => tr.textContent);
      await page.mouse.click(box.x + dot[0] + 2, box.y + dot[1] + 2);
      await page.waitForFunction((b) => document.querySelector('.gallery-table tr.selected')?.textContent !== b, before);
      await page.click('.gallery-table tr[data-format="mxfp4"] button');
      await page.waitForFunction(() => location.search.includes('dtype=mxfp4'));
      assert.ok(await page.locator('.gallery-table tr[data-format="mxfp4"]').evaluate((tr) => tr.classList.contains('selected')));
    }
    assert.deepEqual(errors, []);
    await page.close();
  }
});

test('histogram grids: FP8 E4M3 crowds near zero, Q4_0 is even, at phone width too', async () => {
  for (const [dtype, width] of [['fp8_e4m3', 1280], ['nf4', 1280], ['q4_0', 390], ['fp8_e4m3', 390]]) {
    const { page, errors } = await h.open(`?layer=conv2&dtype=${dtype}`, { width });
    await page.waitForSelector('canvas');
    const panel = page.locator('section[aria-labelledby="histogram-title"]');
    await panel.scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
    await panel.screenshot({ path: join(shots, `histogram-${dtype}-${width}.png`) });
    const label = await page.locator('section[aria-labelledby="histogram-title"] canvas').getAttribute('aria-label');
    assert.match(label, dtype === 'fp8_e4m3' ? /the format's \d+ values within the weights' range/ : /this block's \d+ levels/);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no sideways scroll at ${width} px`);
    assert.deepEqual(errors, []);
    await page.close();
  }
});
