// Debian's Chromium driven by playwright-core, with the flags this closed network needs
// (see ../shared/toolchain.md): never a downloaded browser. playwright gives each launch a fresh
// temporary profile itself.
import { chromium } from 'playwright-core';

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
