// What the browser scripts share: required settings from the environment,
// named steps, checks, watching the page for CSP violations and script
// errors, logging in through the form, and launching Debian's Chromium with
// a screenshot of the page on failure.

import { chromium } from "playwright-core";

export function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${process.argv[1]}: set ${name}`);
    process.exit(2);
  }
  return value;
}

const started = Date.now();
let stepName = "launch Chromium";

export function step(name) {
  stepName = name;
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${name}`);
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** CSP violations and script errors seen on the watched pages. */
export const problems = [];

export function watch(page) {
  page.on("console", (msg) => {
    const text = msg.text();
    if (/Content Security Policy|Refused to (execute|apply|load|connect)/i.test(text)) {
      problems.push(`CSP: ${text}`);
    }
  });
  page.on("pageerror", (err) => problems.push(`script error: ${err.name}: ${err.message}\n${err.stack || ""}`));
}

/** Logs in through the form on `base`; waits for the session bar. */
export async function logIn(page, base, username, password) {
  await page.goto(`${base}/`);
  await page.waitForSelector("#login-form", { timeout: 15_000 });
  await page.fill("#username", username);
  await page.fill("#password", password);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#session-bar:not([hidden])", { timeout: 10_000 });
}

/**
 * Runs `run(page, context, browser)` in headless Chromium and exits: 0 when
 * it passed, 1 (after a screenshot to $XUELIANG_SCREENSHOT) when not.
 */
export async function runInBrowser(name, run) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const screenshot = process.env.XUELIANG_SCREENSHOT || "";
  let failed = false;
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: "zh-CN" });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    watch(page);
    try {
      await run(page, context, browser);
      check(problems.length === 0, `the page reported problems:\n  ${problems.join("\n  ")}`);
      console.log(`PASS: ${name} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } catch (e) {
      failed = true;
      console.error(`FAIL at step "${stepName}": ${e && e.message ? e.message : e}`);
      if (problems.length) console.error(`page problems:\n  ${problems.join("\n  ")}`);
      if (screenshot) {
        try {
          await page.screenshot({ path: screenshot, fullPage: true });
          console.error(`screenshot: ${screenshot}`);
        } catch (err) {
          console.error(`could not save the screenshot: ${err.message}`);
        }
      }
    }
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
}
