// The GB/T 28181 device list on the cameras page (摄像机 → 国标设备), in real
// headless Chromium, as an administrator: the registered device shows with
// its name, online state, transport and its catalog's channels (Chinese
// names sent in GBK), and "查询目录" asks it for its catalog again. Run by
// tests/e2e/gb28181.rs while sipp plays the device; by hand:
//
//   XUELIANG_URL=http://127.0.0.1:8080 XUELIANG_USER=admin XUELIANG_PASSWORD=... \
//     XUELIANG_DEVICE=34020000001320000001 XUELIANG_DEVICE_NAME='东门 NVR' \
//     XUELIANG_CHANNEL_NAME='东门口 枪机' node tests/browser/gb-devices.mjs
//
// Environment: XUELIANG_URL, XUELIANG_USER, XUELIANG_PASSWORD (an
// administrator), XUELIANG_DEVICE, XUELIANG_DEVICE_NAME and
// XUELIANG_CHANNEL_NAME (all required), XUELIANG_SCREENSHOT, CHROMIUM.

import { check, logIn, required, runInBrowser, step } from "./harness.mjs";

const base = required("XUELIANG_URL").replace(/\/$/, "");
const user = required("XUELIANG_USER");
const password = required("XUELIANG_PASSWORD");
const device = required("XUELIANG_DEVICE");
const deviceName = required("XUELIANG_DEVICE_NAME");
const channelName = required("XUELIANG_CHANNEL_NAME");

async function run(page) {
  step("log in as the administrator and open the cameras page");
  await logIn(page, base, user, password);
  await page.click('#nav a[data-route="cameras"]');

  step(`the device ${device} is listed, online, with its channels`);
  const row = `.gb-devices tr[data-device-id="${device}"]`;
  await page.waitForSelector(row, { timeout: 20_000 });
  check(await page.isVisible(".gb-devices"), "the device section is hidden");
  const text = await page.textContent(row);
  check(text.includes(deviceName), `the row lacks the device's name: ${text}`);
  check(text.includes("在线"), `the row does not say 在线: ${text}`);
  check(text.includes("UDP"), `the row does not say UDP: ${text}`);
  const channels = await page.$$eval(`${row} ul.channels li`, (lis) => lis.map((li) => li.textContent));
  check(channels.length === 3, `expected 3 channels, got ${JSON.stringify(channels)}`);
  check(channels.some((c) => c.includes(channelName)), `no channel named ${channelName}: ${JSON.stringify(channels)}`);

  step("查询目录 asks the device for its catalog again");
  await page.click(`${row} button`);
  await page.waitForSelector(`.gb-devices p.form-message:has-text("${device}")`);
}

await runInBrowser("the GB/T 28181 device list", run);
