// Your own tensor: a generated safetensors file of ~300 MB (one large tensor, then the essay's
// ResNet18-conv1-like tensor) and a .npy file, opened in the page. The header alone is read,
// then the chosen tensor; the numbers are `qp inspect`'s; no request leaves the page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { harness, root, shots } from './harness.mjs';

const h = harness();
const qp = (...args) => JSON.parse(execFileSync(join(root, 'target/debug/qp'), [...args, '--format', 'json']));

/** A safetensors file: `big` (F32, `bigValues` zeros) and `conv1.weight` (the golden tensor). */
function writeBig(path, bigValues) {
  const npy = readFileSync(join(root, 'core/tests/goldens/inspect.npy'));
  const conv1 = npy.subarray(npy.length - 64 * 3 * 7 * 7 * 4);
  const bigBytes = bigValues * 4;
  let header = JSON.stringify({
    __metadata__: { format: 'pt' },
    big: { dtype: 'F32', shape: [bigValues], data_offsets: [0, bigBytes] },
    'conv1.weight': { dtype: 'F32', shape: [64, 3, 7, 7], data_offsets: [bigBytes, bigBytes + conv1.length] },
  });
  while ((8 + header.length) % 8) header += ' ';
  const fd = openSync(path, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  writeSync(fd, len);
  writeSync(fd, Buffer.from(header));
  const zeros = Buffer.alloc(1 << 20);
  for (let left = bigBytes; left > 0; left -= zeros.length) writeSync(fd, zeros, 0, Math.min(left, zeros.length));
  writeSync(fd, conv1);
  closeSync(fd);
}

test('a 300 MB checkpoint opens at once, its tensor gets qp inspect’s numbers, and nothing is sent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qp-tensor-'));
  const big = join(dir, 'checkpoint.safetensors');
  writeBig(big, 75_000_000);
  const want = qp('inspect', big, '--tensor', 'conv1.weight', '--bits', '8', '--mode', 'asym');
  for (const width of [1280, 390]) {
    const { page, errors, urls } = await h.open('?embed=tensor&bits=8&scheme=asym', { width });
    await page.waitForSelector('#tensor-file');
    const before = urls.length;
    await page.setInputFiles('#tensor-file', big);
    await page.waitForSelector('table.tensor-list tr[data-tensor="conv1.weight"]');
    const names = await page.$$eval('table.tensor-list tbody tr', (trs) => trs.map((t) => t.dataset.tensor));
    assert.deepEqual(names.sort(), ['big', 'conv1.weight']);
    // A conv1.weight of another shape: not offered as a network, and told why.
    assert.match(await page.textContent('#tensor-not-model'), /conv1\.weight has shape \[64, 3, 7, 7\], expected \[32, 1, 3, 3\]/);
    assert.doesNotMatch(await page.textContent('#tensor-not-model'), /weights file:/, 'said once, by the sentence');
    assert.equal(await page.locator('#tensor-use-model').count(), 0);
    const headerMs = Number(await page.getAttribute('#tensor-file-status', 'data-header-ms'));
    assert.ok(headerMs < 1000, `the header of a 300 MB file read in ${headerMs} ms`);
    await page.click('table.tensor-list tr[data-tensor="conv1.weight"] button');
    await page.waitForSelector('table.tensor-printout tbody tr');
    const rows = await page.$$eval('table.tensor-printout tbody tr', (trs) => trs.map((tr) => ({
      recipe: tr.querySelector('th').textContent,
      scale: tr.querySelector('.scale').textContent,
      zp: tr.querySelector('.zp').textContent,
    })));
    for (const [i, w] of want.rows.entries()) {
      assert.equal(rows[i].recipe, w.recipe);
      assert.equal(rows[i].scale, w.scale.toFixed(7), w.recipe);
      assert.equal(Number(rows[i].zp), w.zero_point, w.recipe);
    }
    // The essay's values for ResNet18's conv1: asymmetric scale 0.00729…, zero_point −12;
    // symmetric 0.0079723.
    assert.match(rows[0].scale, /^0\.00729/);
    assert.equal(rows[0].zp, '-12');
    assert.equal(rows[1].scale, '0.0079723');
    // Nothing left the page: no request after load (a File is read locally). Chromium sometimes
    // asks for the page's own icon (index.html links it) a second time meanwhile (2 runs in 3
    // here): a GET of a static asset, which carries nothing of the file.
    assert.deepEqual(urls.slice(before).filter((u) => !/\/favicon-[0-9a-f]+\.svg$/.test(u)), []);
    await page.waitForSelector('#tensor canvas');
    // Everything a bundled layer gets: the grid, the staircase with its formulas, the channels'
    // ranges, the error curve and the clipping trade-off.
    assert.equal(await page.locator('#tensor canvas').count(), 5);
    assert.match(await page.textContent('.tensor-formulas [data-scheme="asym"]'), /−12/);
    const curve = page.locator('.tensor-view', { hasText: 'Error against bit width' });
    await curve.locator('summary').click();
    const eight = await curve.locator('table.numbers tbody tr', { hasText: 'asym' }).filter({ has: page.locator('td:first-child', { hasText: /^8$/ }) }).locator('td').nth(2).textContent();
    assert.equal(eight, want.rows[0].mean_abs_error.toFixed(6), 'the curve at 8-bit asym is the printout');
    await page.locator('#tensor').screenshot({ path: join(shots, `tensor-${width}.png`) });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no sideways scroll at ${width} px (${overflow} px)`);
    assert.deepEqual(errors, []);
  }
});

test('a .npy file and broken files: the numbers, or a clear message', async () => {
  const { page, errors } = await h.open('?embed=tensor&bits=4&scheme=sym&granularity=channel');
  await page.setInputFiles('#tensor-file', join(root, 'core/tests/goldens/inspect.npy'));
  await page.click('table.tensor-list tr[data-tensor="array"] button');
  await page.waitForSelector('table.tensor-printout tbody tr');
  const want = qp('inspect', join(root, 'core/tests/goldens/inspect.npy'), '--bits', '4', '--mode', 'sym', '--granularity', 'channel');
  const first = await page.textContent('table.tensor-printout tbody tr .scale');
  assert.equal(first, `${want.rows[0].blocks} blocks`);
  // Another channel axis: the blocks run along it, as qp inspect --axis.
  await page.selectOption('#tensor-axis', '1');
  const alongOne = qp('inspect', join(root, 'core/tests/goldens/inspect.npy'), '--axis', '1', '--bits', '4', '--mode', 'sym', '--granularity', 'channel');
  await page.waitForFunction((n) => document.querySelector('table.tensor-printout tbody tr .scale')?.textContent === `${n} blocks`, alongOne.rows[0].blocks);
  const cells = await page.$$eval('table.tensor-printout tbody tr:first-child td', (tds) => tds.map((t) => t.textContent));
  assert.equal(cells[2], alongOne.rows[0].mean_abs_error.toFixed(6));
  assert.notEqual(alongOne.rows[0].blocks, want.rows[0].blocks);
  assert.ok((await page.textContent('#tensor')).includes(`Each of the ${alongOne.rows[0].blocks} channels' range (axis 1)`));
  const dir = mkdtempSync(join(tmpdir(), 'qp-broken-'));
  for (const [name, bytes, message] of [
    ['huge-header.safetensors', Buffer.concat([Buffer.from([0, 0, 0, 0x40, 0, 0, 0, 0]), Buffer.from('{}')]), /more than the 16 MB allowed/],
    ['garbage.safetensors', Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0x7b, 0x7d, 1, 2, 3, 4]), /not UTF-8/],
    ['short.npy', Buffer.concat([Buffer.from([0x93]), Buffer.from('NUMPY')]), /shorter than its preamble/],
  ]) {
    const path = join(dir, name);
    const fd = openSync(path, 'w');
    writeSync(fd, bytes);
    closeSync(fd);
    await page.setInputFiles('#tensor-file', path);
    await page.waitForSelector('#tensor .error');
    assert.match(await page.textContent('#tensor .error'), message, name);
  }
  assert.deepEqual(errors, []);
});

test('a file with MNISTNet’s tensors becomes the page’s network: its accuracy is qp report’s on that file', async () => {
  // Another network than the bundled one: the bundled weights fake-quantized at 3 bits, as the
  // export writes them (MNISTNet's names plus codes and digits, which are ignored).
  const dir = mkdtempSync(join(tmpdir(), 'qp-model-'));
  const file = join(dir, 'my-mnistnet.safetensors');
  execFileSync(join(root, 'target/debug/qp'), ['quantize', '--bits', '3', '--mode', 'sym', '--out', file]);
  const { page, errors, urls } = await h.open('?embed=tensor&bits=2&scheme=sym');
  await page.setInputFiles('#tensor-file', file);
  await page.waitForSelector('#tensor-use-model');
  await Promise.all([page.waitForURL(/model=file/), page.click('#tensor-use-model')]);
  const note = page.locator('.model-note');
  await note.waitFor();
  assert.match(await note.textContent(), /your file my-mnistnet\.safetensors/);
  await page.waitForFunction(() => [...document.querySelectorAll('table.compare tbody tr')].slice(0, 2)
    .every((r) => r.classList.contains('done')), null, { timeout: 120_000 });
  const acc = (i) => page.locator('table.compare tbody tr').nth(i).locator('td').first().textContent();
  const cli = qp('report', '--weights', file, '--bits', '2', '--mode', 'sym');
  assert.equal(await acc(0), `${cli.fp32.accuracy.toFixed(2)}%`);
  assert.equal(await acc(1), `${cli.quantized.accuracy.toFixed(2)}%`);
  assert.notEqual(await acc(0), '99.00%', 'not the bundled network');
  h.assertWorkers(urls, []);
  await page.screenshot({ path: join(shots, 'tensor-model-1280.png') });
  // Back to the bundled network.
  await Promise.all([page.waitForURL((u) => !u.search.includes('model=file')), note.locator('a').click()]);
  await page.waitForFunction(() => document.querySelectorAll('table.compare tbody tr')[0]?.classList.contains('done'), null, { timeout: 120_000 });
  assert.equal(await acc(0), '99.00%');
  assert.deepEqual(h.foreign(urls), []);
  assert.deepEqual(errors, []);
});
