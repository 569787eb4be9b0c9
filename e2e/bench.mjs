// Benchmark, not a test: prints figures, asserts nothing. Serves dist/ on 127.0.0.1, drives
// headless Chromium, and measures what a reader feels: load to first drawn chart, slider move to
// a full 2,000-digit accuracy, slider move to redrawn charts, longest main-thread task, and the
// transfer sizes. Run through scripts/bench.sh (which builds first).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './serve.mjs';
import { launch } from './browser.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const server = await serve(dist);
const browser = await launch();

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page.addInitScript(() => {
  window.__longTasks = [];
  new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__longTasks.push(e.duration))).observe({
    type: 'longtask',
    buffered: true,
  });
});
const t0 = Date.now();
await page.goto(server.url);
// Interactive: every canvas has pixels drawn and the table is filled.
await page.waitForFunction(() => {
  const cs = [...document.querySelectorAll('canvas')];
  return cs.length === 4 && document.querySelectorAll('table.essay tbody tr').length === 4;
});
const interactive = Date.now() - t0;

async function settle(label) {
  await page.waitForFunction(
    (label) => {
      const r = document.querySelectorAll('table.compare tbody tr')[1];
      return r && r.classList.contains('done') && r.querySelector('th').textContent === label;
    },
    label,
    { timeout: 300_000, polling: 5 },
  );
}
const tFirst = Date.now();
await settle('8-bit symmetric');
const firstAccuracy = Date.now() - tFirst;

// Slider moves to settings not seen before: time to a complete 2,000-digit accuracy.
const moves = [];
await page.focus('#bits');
for (const [key, label] of [['ArrowLeft', '7-bit symmetric'], ['ArrowLeft', '6-bit symmetric'], ['ArrowLeft', '5-bit symmetric']]) {
  const t = Date.now();
  await page.keyboard.press(key);
  await settle(label);
  moves.push(Date.now() - t);
}

// Slider → redrawn charts: one move, measured in the page until the next animation frame.
const redraw = await page.evaluate(async () => {
  const input = document.querySelector('#bits');
  const times = [];
  for (let i = 0; i < 10; i++) {
    const t = performance.now();
    input.value = String(i % 2 ? 2 : 3);
    input.dispatchEvent(new Event('input', { bubbles: true }));
    await new Promise((r) => requestAnimationFrame(() => r()));
    times.push(performance.now() - t);
  }
  return times;
});
const longTasks = await page.evaluate(() => window.__longTasks);

const files = readdirSync(dist).filter((f) => statSync(join(dist, f)).isFile());
const size = (f) => statSync(join(dist, f)).size;
const gz = (f) => gzipSync(readFileSync(join(dist, f)), { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(0)} KB`;

console.log('| measure | value |');
console.log('|---|---|');
console.log(`| load → interactive (charts drawn) | ${interactive} ms |`);
console.log(`| first 2,000-digit accuracy after load | ${firstAccuracy} ms |`);
console.log(`| slider → 2,000-digit accuracy, new setting (p50 / max of ${moves.length}) | ${pct(moves, 0.5)} / ${Math.max(...moves)} ms |`);
console.log(`| browser forward pass, 1 thread | ${Math.round(2000 / (pct(moves, 0.5) / 1000))} img/s |`);
console.log(`| slider → charts redrawn (p50 / max of 10, incl. the frame) | ${pct(redraw, 0.5).toFixed(1)} / ${Math.max(...redraw).toFixed(1)} ms |`);
console.log(`| longest main-thread task | ${Math.max(0, ...longTasks).toFixed(0)} ms (${longTasks.length} over 50 ms) |`);
for (const f of files) console.log(`| ${f.replace(/-[0-9a-f]{16}/, '')} | ${kb(size(f))} raw, ${kb(gz(f))} gzip |`);
const total = files.reduce((a, f) => a + gz(f), 0);
console.log(`| total transfer | ${kb(total)} gzip |`);

await browser.close();
server.close();
