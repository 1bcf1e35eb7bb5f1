import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/**
 * Debian's chromium, installed with apt-get when missing: a browser test never skips for want of
 * its browser, it installs it or fails saying why.
 */
export function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () => execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], { env, stdio: "inherit" });
  try {
    install();
  } catch {
    // A machine whose package lists are missing or stale: fetch them, then try once more.
    execFileSync("apt-get", ["update"], { env, stdio: "inherit" });
    install();
  }
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get install chromium left no ${CHROMIUM}`);
}

/** Headless chromium as the issue prescribes (no sandbox as root, no GPU, no calls home). */
export function launchChromium(): Promise<Browser> {
  ensureChromium();
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}
