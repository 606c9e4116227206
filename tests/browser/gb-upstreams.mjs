// The superior platforms on the cameras page (摄像机 → 上级平台), in real
// headless Chromium, as an administrator: the superior the centre registers
// to (sipp playing the county platform) shows as 已注册 with its address and
// transport, and with the catalog queries and alarms it got. Run by an e2e
// test of the cascade while sipp plays the superior; by hand:
//
//   XUELIANG_URL=http://127.0.0.1:8080 XUELIANG_USER=admin XUELIANG_PASSWORD=... \
//     XUELIANG_UPSTREAM=34010000002000000001 XUELIANG_UPSTREAM_ADDRESS=127.0.0.1:15060 \
//     XUELIANG_ALARMS_SENT=1 node tests/browser/gb-upstreams.mjs
//
// Environment: XUELIANG_URL, XUELIANG_USER, XUELIANG_PASSWORD (an
// administrator), XUELIANG_UPSTREAM, XUELIANG_UPSTREAM_ADDRESS (required),
// XUELIANG_ALARMS_SENT (optional: the least alarms the row must count),
// XUELIANG_SCREENSHOT, CHROMIUM.

import { check, logIn, required, runInBrowser, step } from "./harness.mjs";

const base = required("XUELIANG_URL").replace(/\/$/, "");
const user = required("XUELIANG_USER");
const password = required("XUELIANG_PASSWORD");
const upstream = required("XUELIANG_UPSTREAM");
const address = required("XUELIANG_UPSTREAM_ADDRESS");
const alarmsSent = process.env.XUELIANG_ALARMS_SENT;

async function run(page) {
  step("log in as the administrator and open the cameras page");
  await logIn(page, base, user, password);
  await page.click('#nav a[data-route="cameras"]');

  step(`the superior ${upstream} is listed, registered`);
  const row = `.gb-upstreams tr[data-upstream-id="${upstream}"]`;
  await page.waitForSelector(`${row}[data-state="registered"]`, { timeout: 30_000 });
  check(await page.isVisible(".gb-upstreams"), "the superior platforms' section is hidden");
  const text = await page.textContent(row);
  check(text.includes("已注册"), `the row does not say 已注册: ${text}`);
  check(text.includes(address), `the row lacks the address ${address}: ${text}`);
  check(text.includes("UDP") || text.includes("TCP"), `the row names no transport: ${text}`);
  if (alarmsSent !== undefined) {
    step(`it counts at least ${alarmsSent} alarm(s) sent`);
    const sent = async () => {
      const m = /报警 已送 (\d+)/.exec(await page.textContent(row));
      return m ? Number(m[1]) : -1;
    };
    const until = Date.now() + 25_000;
    while ((await sent()) < Number(alarmsSent) && Date.now() < until) {
      await page.waitForTimeout(500);
    }
    check((await sent()) >= Number(alarmsSent),
      `the row does not count ${alarmsSent} alarms sent: ${await page.textContent(row)}`);
  }
}

await runInBrowser("the superior platforms (GB/T 28181 cascade)", run);
