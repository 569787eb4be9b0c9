// The release build in headless Chromium: loads cleanly, draws, reacts to the controls with the
// numbers the core computes, evaluates accuracy without going stale, and never leaves the origin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { harness, root, shots } from './harness.mjs';

const h = harness();

async function open(width = 1280, height = 900) {
  const opened = await h.open('', { width, height });
  await opened.page.waitForSelector('canvas');
  return opened;
}

/** The numbers in the essay table: { layer: { zero_point, mae } }. */
async function table(page) {
  return page.$$eval('table.essay tbody tr', (rows) =>
    Object.fromEntries(
      rows.map((r) => {
        const c = [...r.children].map((td) => td.textContent.trim());
        return [c[0], { scale: Number(c[4]), zero_point: Number(c[5]), parameters: c[6], mae: Number(c[7]) }];
      }),
    ),
  );
}

/** The current setting's row of the accuracy comparison, once it covers every digit. */
async function settledAccuracy(page, label) {
  const row = page.locator('table.compare tbody tr').nth(1);
  await page.waitForFunction(
    (label) => {
      const r = document.querySelectorAll('table.compare tbody tr')[1];
      return r && r.classList.contains('done') && r.querySelector('th').textContent === label;
    },
    label,
    { timeout: 120_000 },
  );
  return Number((await row.locator('td').first().textContent()).replace('%', ''));
}

function core(bits, mode) {
  const out = execFileSync(join(root, 'target/debug/qp'), ['report', '--bits', String(bits), '--mode', mode, '--format', 'json']);
  return JSON.parse(out);
}

test('loads with no console error, draws every chart, and stays on its origin', async () => {
  const { page, errors, warnings, urls } = await open();
  await page.waitForFunction(() => document.querySelectorAll('table.essay tbody tr').length === 4);
  // Every chart, each scrolled into view (charts out of view are painted when they come into
  // it; the clipping trade-off is computed in short tasks after load).
  const drawn = () =>
    page.$$eval('.chart canvas', async (canvases) => {
      const out = [];
      for (const c of canvases) {
        c.scrollIntoView({ block: 'center' });
        for (let f = 0; f < 3; f++) await new Promise((r) => requestAnimationFrame(r));
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const colours = new Set();
        for (let i = 0; i < d.length; i += 4 * 97) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        out.push(c.width > 0 && colours.size > 3 ? 'drawn' : 'blank');
      }
      window.scrollTo(0, 0);
      return out;
    });
  let blank = await drawn();
  for (let tries = 0; tries < 20 && blank.includes('blank'); tries++) {
    await page.waitForTimeout(250);
    blank = await drawn();
  }
  // Histogram, staircase, error, accuracy, channels, clipping, the format gallery, the flips
  // against bit width, the sensitivity, the allocation, and QAT's "before" histogram (the
  // drawing pad and the digits' thumbnails are images, not charts).
  assert.equal(blank.length, 11);
  assert.deepEqual(blank, Array(11).fill('drawn'));
  // index.html's "Loading…" note is gone once the app runs.
  assert.equal(await page.locator('#boot').count(), 0);
  await page.screenshot({ path: join(shots, 'desktop-1280.png'), fullPage: true });
  assert.deepEqual(h.foreign(urls), []);
  // The workers answer: the FP32 row fills in, from the worker pool (no main-thread fallback).
  await page.waitForFunction(() => document.querySelector('table.compare tbody tr.done'));
  h.assertWorkers(urls, warnings);
  assert.deepEqual(errors, []);
  await page.close();
});

test('bits slider from 8 to 2 by keyboard: error grows, accuracy changes and settles', async () => {
  const { page, errors } = await open();
  const eight = await settledAccuracy(page, '8-bit symmetric');
  const before = await table(page);
  // Every chart's pixels. Charts below the fold are painted when they scroll into view, not on
  // every move (that CPU goes to the accuracy workers), so each is scrolled to before it is read.
  await page.evaluate(() => {
    window.pixelHash = (c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let h = 0;
      for (let k = 0; k < d.length; k += 7) h = (h * 31 + d[k]) | 0;
      return h;
    };
  });
  const fingerprint = (i) =>
    page.$$eval(
      'canvas',
      async (cs, i) => {
        cs[i].scrollIntoView({ block: 'center' });
        // The intersection observer reports, the chart paints; two frames is ample.
        for (let f = 0; f < 3; f++) await new Promise((r) => requestAnimationFrame(r));
        return window.pixelHash(cs[i]);
      },
      i,
    );
  const fingerprints = async () => {
    const out = [];
    for (let i = 0; i < 4; i++) out.push(await fingerprint(i));
    await page.evaluate(() => window.scrollTo(0, 0));
    return out;
  };
  const charts = await fingerprints();
  const below = await page.$$eval('canvas', (cs) => cs.map((c) => c.getBoundingClientRect().top > innerHeight + 200));
  assert.ok(below.some((b) => b), 'a chart is off screen');
  await page.focus('#bits');
  for (let i = 0; i < 6; i++) await page.keyboard.press('ArrowLeft');
  assert.equal(await page.textContent('#bits-value'), '2');
  await page.waitForTimeout(300);
  // Printing paints a chart that is still out of view (here without scrolling to it).
  const offscreen = below.indexOf(true);
  const printed = await page.$$eval(
    'canvas',
    (cs, i) => {
      window.dispatchEvent(new Event('beforeprint'));
      return window.pixelHash(cs[i]);
    },
    offscreen,
  );
  assert.notEqual(printed, charts[offscreen], 'an off-screen chart is painted for printing');
  const redrawn = await fingerprints();
  assert.ok(charts.every((f, i) => f !== redrawn[i]), `every chart repainted: ${charts} → ${redrawn}`);
  const two = await settledAccuracy(page, '2-bit symmetric');
  const after = await table(page);
  for (const layer of ['conv1', 'conv2', 'fc1', 'fc2']) {
    assert.ok(after[layer].mae > before[layer].mae * 10, `${layer}: ${before[layer].mae} → ${after[layer].mae}`);
  }
  assert.ok(two >= 0 && two <= 100);
  assert.notEqual(two, eight);
  // The page shows exactly the accuracy the native core computes for this setting.
  assert.equal(two.toFixed(2), core(2, 'sym').quantized.accuracy.toFixed(2));
  assert.deepEqual(errors, []);
  await page.close();
});

// Where workers cannot run, the page evaluates on its own thread, in slices, and shows the same
// numbers: both ways the pool can fail, each against the native core.
for (const [how, init] of [
  // No Worker at all (as under a `worker-src 'none'` policy): the pool never starts.
  ['cannot be created', () => (window.Worker = function Worker() { throw new Error('no workers here'); })],
  // Workers that fail before they are ready (a script that does not load, say).
  [
    'fail before they are ready',
    () =>
      (window.Worker = class {
        constructor() {
          setTimeout(() => this.onerror?.(new ErrorEvent('error', { message: 'stub worker failed' })), 50);
        }
        postMessage() {}
        terminate() {}
      }),
  ],
]) {
  test(`when workers ${how}, the main thread evaluates, with the CLI's accuracy`, async () => {
    const { page, errors, warnings, urls } = await h.open('?bits=4&mode=asym', { init });
    const four = await settledAccuracy(page, '4-bit asymmetric');
    assert.equal(four.toFixed(2), core(4, 'asym').quantized.accuracy.toFixed(2));
    assert.ok(!urls.some((u) => u.startsWith('blob:')), 'no worker script ran');
    if (how.startsWith('fail')) {
      assert.ok(warnings.some((w) => /main thread/.test(w) && /stub worker failed/.test(w)), `warned: ${warnings}`);
    }
    // The page still answers a move, and fills in the other settings in the background.
    await page.focus('#bits');
    await page.keyboard.press('ArrowLeft');
    await settledAccuracy(page, '3-bit asymmetric');
    assert.deepEqual(errors, []);
    await page.close();
  });
}

test('a worker that stops mid-evaluation: the other takes over its digits, and the page says so', async () => {
  // The second worker stops once it is working (its blocks handed out, some in flight). Two
  // workers whatever the machine's cores, so that exactly one carries on.
  const init = () => {
    Object.defineProperty(navigator, 'hardwareConcurrency', { get: () => 2 });
    const Real = window.Worker;
    let started = 0;
    window.Worker = class extends Real {
      constructor(...args) {
        super(...args);
        if (started++ === 1) {
          this.addEventListener('message', () => {
            if (this.stopped) return;
            this.stopped = true;
            setTimeout(() => {
              this.terminate();
              this.onerror?.(new ErrorEvent('error', { message: 'stub: worker 2 crashed' }));
            }, 30);
          });
        }
      }
    };
  };
  const { page, errors, warnings, urls } = await h.open('?bits=3&mode=sym', { init });
  const three = await settledAccuracy(page, '3-bit symmetric');
  assert.equal(three.toFixed(2), core(3, 'sym').quantized.accuracy.toFixed(2));
  await page.waitForFunction(() => Number(document.querySelector('section[data-done]')?.dataset.done) === 17, null, { timeout: 120_000 });
  const alert = await page.textContent('.panel [role=alert]');
  assert.match(alert, /worker 2 stopped \(stub: worker 2 crashed\); the other carries on/);
  // The remaining worker carried on, not the main thread.
  h.assertWorkers(urls, warnings);
  assert.deepEqual(errors, []);
  await page.close();
});

test('switching the scheme changes zero_point as the core says', async () => {
  const { page, errors } = await open();
  await page.focus('#bits');
  for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowLeft'); // 8 → 5
  const sym = await table(page);
  for (const l of Object.values(sym)) assert.equal(l.zero_point, 0);
  await page.click('input[name=scheme][value=asym]');
  await page.waitForFunction(() => document.querySelector('#model-size').textContent.includes('5 bits'));
  const asym = await table(page);
  const expected = core(5, 'asym');
  for (const layer of expected.layers) {
    assert.equal(asym[layer.layer].zero_point, layer.zero_point, layer.layer);
    assert.ok(Math.abs(asym[layer.layer].scale - layer.scale) / layer.scale < 1e-5, layer.layer);
  }
  assert.ok(Object.values(asym).some((l) => l.zero_point !== 0));
  // The staircase's formulas are MathML filled in with the selected layer's numbers: both
  // schemes' scale and zero point side by side (the CLI's, at this bit width), the reader's marked.
  const formulas = () =>
    page.$$eval('.formulas .by-scheme', (groups) =>
      Object.fromEntries(
        groups.map((g) => {
          const ms = [...g.querySelectorAll('math')];
          return [
            g.dataset.scheme,
            {
              current: g.getAttribute('aria-current') === 'true',
              visible: ms.length > 0 && ms.every((m) => m.getClientRects().length > 0),
              mathml: ms.every((m) => m.namespaceURI === 'http://www.w3.org/1998/Math/MathML'),
              numbers: ms.flatMap((m) => [...m.querySelectorAll('mn')].map((n) => Number(n.textContent.replace(/−/g, '-')))),
              text: ms.map((m) => m.textContent).join(' '),
            },
          ];
        }),
      ),
    );
  const layer = await page.$eval('input[name=layer]:checked', (i) => i.value);
  const near = (xs, v) => xs.some((n) => Math.abs(n - v) / v < 1e-3);
  const f = await formulas();
  for (const g of [f.sym, f.asym]) assert.ok(g.visible && g.mathml, 'both schemes shown, in MathML');
  assert.ok(f.asym.current && !f.sym.current, 'asymmetric is marked');
  assert.ok(f.asym.text.includes('clamp') && f.sym.text.includes('max'), JSON.stringify(f));
  assert.ok(f.asym.numbers.includes(asym[layer].zero_point), `${layer} z = ${asym[layer].zero_point} in ${f.asym.numbers}`);
  assert.ok(near(f.asym.numbers, asym[layer].scale), `${layer} asymmetric scale in ${f.asym.numbers}`);
  assert.ok(near(f.sym.numbers, sym[layer].scale), `${layer} symmetric scale in ${f.sym.numbers}`);
  assert.ok(!near(f.sym.numbers, asym[layer].scale), 'each scheme shows its own scale');
  await page.click('input[name=scheme][value=sym]');
  await page.waitForFunction(() => document.querySelector('.formulas [data-scheme=sym]').getAttribute('aria-current') === 'true');
  const back = await formulas();
  assert.ok(!back.asym.current, 'only the reader\'s scheme is marked');
  assert.deepEqual([back.sym.numbers, back.asym.numbers], [f.sym.numbers, f.asym.numbers], 'a switch changes no number');
  assert.deepEqual(errors, []);
  await page.close();
});

test('more knobs: per-channel groups and a clip, from the keyboard, give the CLI\'s parameters and accuracy', async () => {
  const { page, errors } = await open();
  await page.waitForFunction(() => document.querySelectorAll('table.essay tbody tr').length === 4);
  await page.click('details.advanced summary');
  await page.focus('#granularity');
  await page.selectOption('#granularity', 'group:32');
  await page.selectOption('#range', 'clip');
  // The clip slider by keyboard: 0.80 → 0.75.
  await page.focus('#clip');
  for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowLeft');
  assert.equal(await page.textContent('#clip-value'), '0.75');
  await page.waitForFunction(() => location.search.includes('range=clip:0.75'));
  const recipe = 'bits=8&scheme=sym&granularity=group:32&range=clip:0.75';
  assert.ok(new URL(page.url()).search.startsWith(`?${recipe}&`), page.url());
  const cli = JSON.parse(execFileSync(join(root, 'target/debug/qp'), ['report', '--recipe', recipe, '--format', 'json']));
  const rows = await table(page);
  for (const l of cli.layers) {
    assert.equal(rows[l.layer].parameters, `${l.blocks.toLocaleString('en-US')} groups of 32`);
    // Scales and errors shown to six significant digits, as the core's.
    assert.ok(Math.abs(rows[l.layer].mae - l.mean_abs_error) <= 1e-5 * l.mean_abs_error, `${l.layer} mae`);
  }
  // The accuracy of this recipe, complete, is the CLI's.
  const acc = await settledAccuracy(page, '8-bit symmetric');
  assert.equal(acc.toFixed(2), cli.quantized.accuracy.toFixed(2));
  // A channel of fc1: the histogram's picker and the staircase follow the URL's block.
  await page.click('input[name="layer"][value="fc1"]', { force: true });
  await page.selectOption('#granularity', 'channel');
  await page.focus('#histogram-block');
  for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => location.search.includes('block=3'));
  assert.match(await page.textContent('#staircase-context'), /Channel 3 of 0–127/);
  // The clipping trade-off is computed for this layer and recipe, and says what it found.
  await page.waitForFunction(() => /MSE: [0-9.e-]+ \(keeps/.test(document.querySelector('#clipping-caption')?.textContent ?? ''));
  assert.deepEqual(errors, []);
  await page.close();
});

test('no horizontal scroll at 390 and 360 px wide, nor at 200% zoom', async () => {
  // 200% zoom of a 1280 px window lays out like a 640 px viewport at device pixel ratio 2.
  for (const [width, deviceScaleFactor, shot] of [[390, 1, 'phone-390.png'], [360, 1, null], [640, 2, null]]) {
    const { page, errors } = await h.open('', { width, height: 844, deviceScaleFactor });
    await page.waitForFunction(() => document.querySelectorAll('table.essay tbody tr').length === 4);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${width} px at ×${deviceScaleFactor}: ${overflow}px wider than the viewport`);
    const backing = await page.$eval('canvas', (c) => c.width / c.getBoundingClientRect().width);
    assert.ok(Math.abs(backing - deviceScaleFactor) < 0.02, `canvas backing store ×${backing}`);
    if (shot) await page.screenshot({ path: join(shots, shot), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  }
});
