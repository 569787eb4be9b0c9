// Take it home: the page's "Download this quantized model" is the file `qp quantize` writes for
// the same recipe, byte for byte; its count right is `qp report`'s; the page shows the very
// script core/src/load_quantized.py; and, where the PyTorch venv exists (reference.md §5; not in
// CI), that script run on the download prints the same accuracy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { harness, root, shots } from './harness.mjs';

const h = harness();
const qp = (...args) => execFileSync(join(root, 'target/debug/qp'), args, { encoding: 'utf8' });
const python = join(root, '.venv/bin/python');
const torch = existsSync(python) && spawnSync(python, ['-c', 'import torch, safetensors']).status === 0;

const cases = [
  { query: 'bits=3&scheme=asym&granularity=channel', flags: ['--bits', '3', '--mode', 'asym', '--granularity', 'channel'] },
  { query: 'bits=8&fc1.bits=2&fc2.dtype=fp32', flags: ['--bits', '8', '--layer-bits', 'conv1=8,conv2=8,fc1=2,fc2=fp32'] },
  { query: 'dtype=nf4', flags: ['--dtype', 'nf4'] },
];

for (const [i, { query, flags }] of cases.entries()) {
  test(`${query}: the download is qp quantize's file, with qp report's count right`, async () => {
    const { page, errors, urls } = await h.open(`?${query}&embed=export`, { width: i === 0 ? 390 : 1280 });
    await page.waitForSelector('#export-download');
    await page.waitForLoadState('networkidle');
    const loaded = urls.length;
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-download')]);
    const dir = mkdtempSync(join(tmpdir(), 'qp-export-'));
    const file = join(dir, download.suggestedFilename());
    await download.saveAs(file);
    assert.match(download.suggestedFilename(), /^mnistnet-[a-z0-9-]+\.safetensors$/);

    const theirs = join(dir, 'qp.safetensors');
    qp('quantize', ...flags, '--out', theirs);
    assert.ok(readFileSync(file).equals(readFileSync(theirs)), 'the same bytes as qp quantize');

    const report = JSON.parse(qp('report', ...flags, '--format', 'json')).quantized;
    const status = await page.locator('.export-made').textContent();
    assert.match(status, new RegExp(`${report.correct.toLocaleString('en-US')} of 2,000 test digits right \\(${report.accuracy.toFixed(2)} %\\)`));
    // The script shown is the committed one.
    assert.equal(await page.locator('#export-snippet').textContent(), readFileSync(join(root, 'core/src/load_quantized.py'), 'utf8'));

    if (torch) {
      const out = execFileSync(python, [join(root, 'core/src/load_quantized.py'), file], { encoding: 'utf8' });
      assert.match(out, new RegExp(`accuracy: ${report.correct}/2000 = ${report.accuracy.toFixed(2)}%`), out);
      if (flags.includes('channel')) assert.match(out, /conv1: int codes in \[-4, 3\], rebuilt exactly/);
      if (flags.includes('nf4')) assert.match(out, /fc1: nf4 \(no integer codes\)/);
    } else {
      console.log('PyTorch not installed here (.venv): the snippet was not run; see scripts/check_export.py');
    }
    assert.equal(urls.length, loaded, `no request for the download: ${urls.slice(loaded)}`);
    assert.deepEqual(errors, []);
    if (i < 2) {
      await page.locator('.export-contents summary').click();
      await page.screenshot({ path: join(shots, `export-${i === 0 ? 390 : 1280}.png`), fullPage: true });
      const sideways = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(sideways <= 0, `no sideways scroll (${sideways} px)`);
    }
    await page.close();
  });
}

test('every chart downloads as SVG: a valid document at the chart’s size, with its labels and marks', async () => {
  const { page, errors } = await h.open('?bits=3&layer=fc2&theme=dark');
  await page.waitForFunction(() => document.querySelectorAll('table.essay tbody tr').length === 4);
  const count = await page.locator('.chart canvas').count();
  assert.equal(count, 11, 'the full page’s charts');
  const names = [];
  for (let i = 0; i < count; i++) {
    const canvas = page.locator('.chart canvas').nth(i);
    await canvas.scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
    const button = page.locator('.chart-tools button.svg').nth(i);
    const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
    const name = download.suggestedFilename();
    assert.match(name, /^quant-playground-[a-z0-9-]+\.svg$/);
    names.push(name);
    const text = readFileSync(await download.path(), 'utf8');
    const cssWidth = await canvas.evaluate((c) => Math.round(c.getBoundingClientRect().width));
    const parsed = await page.evaluate((text) => {
      const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
      const svg = doc.documentElement;
      return {
        error: doc.querySelector('parsererror')?.textContent ?? null,
        root: svg.tagName,
        width: Number(svg.getAttribute('width')),
        texts: [...doc.querySelectorAll('text')].map((t) => t.textContent),
        marks: doc.querySelectorAll('line, polyline, rect, circle, polygon').length,
        background: svg.querySelector('rect')?.getAttribute('fill'),
      };
    }, text);
    assert.equal(parsed.error, null, `${name} parses`);
    assert.equal(parsed.root, 'svg');
    assert.equal(parsed.width, cssWidth, `${name}: the chart's CSS width`);
    assert.ok(parsed.texts.length >= 3, `${name}: labels ${parsed.texts}`);
    assert.ok(parsed.marks >= 5, `${name}: ${parsed.marks} marks`);
    assert.equal(parsed.background, '#181a1f', `${name}: the dark theme's panel colour`);
  }
  assert.equal(new Set(names).size, count, `one name per chart: ${names}`);
  assert.deepEqual(errors, []);
  await page.close();
});
