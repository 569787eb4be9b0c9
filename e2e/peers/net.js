// The benchmark's peers (scripts/bench.sh → e2e/bench.mjs): the same CNN as the app, in the
// runtimes issue 5 compares with, on the same machine and in the same browser. Shapes are what
// matters for speed, so the weights are seeded random numbers, not the trained ones.
// conv1 1→32 3×3 pad 1, ReLU, 2×2 max-pool; conv2 32→64 likewise; fc1 3136→128, ReLU; fc2 128→10.
'use strict';

// A seeded generator (mulberry32), so both peers get the same numbers run after run.
function random(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const next = random(1);
const fill = (n, scale) => Float32Array.from({ length: n }, () => (next() - 0.5) * scale);

// In PyTorch's layouts: conv [out][in][3][3], linear [out][in].
window.peerNet = {
  w1: fill(32 * 9, 0.6), b1: fill(32, 0.1),
  w2: fill(64 * 32 * 9, 0.1), b2: fill(64, 0.1),
  w3: fill(128 * 3136, 0.04), b3: fill(128, 0.1),
  w4: fill(10 * 128, 0.2), b4: fill(10, 0.1),
  digits: (n) => Float32Array.from({ length: n * 784 }, () => next()),
};

// Images per second of `run(batch)` (which must finish the pass, results read back): five
// warm-up passes, then seven timed runs of ≥ 2,000 images each; sorted, like the app's row.
window.timeBatches = async (run, batch) => {
  for (let i = 0; i < 5; i++) await run();
  const passes = Math.ceil(2000 / batch);
  const rates = [];
  for (let r = 0; r < 7; r++) {
    const t = performance.now();
    for (let i = 0; i < passes; i++) await run();
    rates.push((passes * batch) / ((performance.now() - t) / 1000));
  }
  return rates.sort((a, b) => a - b);
};
