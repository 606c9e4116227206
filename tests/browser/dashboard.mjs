// The operators' dashboard in real headless Chromium (Debian's
// /usr/bin/chromium), against a running `xueliang serve` whose cameras
// see people. Run by tests/e2e/dashboard.rs; by hand:
//
//   XUELIANG_URL=http://127.0.0.1:8080 XUELIANG_USER=admin XUELIANG_PASSWORD=... \
//     node tests/browser/dashboard.mjs
//
// Environment:
//   XUELIANG_URL         base URL of the server (required)
//   XUELIANG_USER        an operator or administrator (required)
//   XUELIANG_PASSWORD    their password (required)
//   XUELIANG_SCREENSHOT  where to save a screenshot on failure (optional)
//   XUELIANG_LIVE_WAIT_S how long to wait for a live event (default 90)
//   CHROMIUM             the browser (default /usr/bin/chromium)
//
// Exits 0 when every step passed; otherwise prints the failed step and exits 1.

import { check, required, runInBrowser, step } from "./harness.mjs";

const base = required("XUELIANG_URL").replace(/\/$/, "");
const username = required("XUELIANG_USER");
const password = required("XUELIANG_PASSWORD");
const liveWaitMs = Number(process.env.XUELIANG_LIVE_WAIT_S || 90) * 1000;

async function run(page, context) {
  step("open the dashboard: the login form shows, in Chinese");
  await page.goto(`${base}/`);
  await page.waitForSelector("#login-form", { timeout: 15_000 });
  check((await page.textContent("#login-form h2")) === "登录", "the login heading is not 登录");

  step("a wrong password is refused with a message");
  await page.fill("#username", username);
  await page.fill("#password", `${password}-wrong`);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#login-error:not([hidden])", { timeout: 10_000 });
  const refusal = (await page.textContent("#login-error")) || "";
  check(/用户名或密码错误|尝试次数过多/.test(refusal), `unexpected login error text: ${refusal}`);

  step("log in");
  await page.fill("#password", password);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#session-bar:not([hidden])", { timeout: 10_000 });
  const who = (await page.textContent("#who")) || "";
  check(who.includes(username), `the top bar names ${JSON.stringify(who)}, not ${username}`);
  await page.waitForSelector("#wall", { timeout: 10_000 });

  step("the live wall connects to the event stream");
  await page.waitForSelector(".live-status.connected", { timeout: 15_000 });

  step(`an event arrives live from the pipeline (up to ${liveWaitMs / 1000} s)`);
  const card = await page.waitForSelector('.event-card[data-live="true"]', { timeout: liveWaitMs });
  const eventId = Number(await card.getAttribute("data-event-id"));
  check(Number.isInteger(eventId) && eventId > 0, `the card has no event id (${eventId})`);
  console.log(`    event ${eventId}: ${(await card.innerText()).replace(/\s+/g, " ")}`);

  step("the card shows the snapshot with its boxes over it");
  await page.waitForFunction(
    (id) => {
      const img = document.querySelector(`.event-card[data-event-id="${id}"] .snapshot img`);
      return img && img.complete && img.naturalWidth > 0;
    },
    eventId,
    { timeout: 15_000 },
  );
  const boxes = await page.$$eval(
    `.event-card[data-event-id="${eventId}"] .snapshot svg.boxes rect`,
    (rects) => rects.map((r) => r.getBoundingClientRect()).map((b) => [b.width, b.height]),
  );
  check(boxes.length > 0, "no detection box is drawn over the snapshot");
  check(boxes.every(([w, h]) => w > 0 && h > 0), `a box has no size: ${JSON.stringify(boxes)}`);

  step("open the event");
  await page.click(`.event-card[data-event-id="${eventId}"]`);
  await page.waitForSelector("#event-detail #actions button[data-action=acknowledge]", { timeout: 15_000 });
  check(page.url().endsWith(`#/events/${eventId}`), `the detail's address is ${page.url()}`);

  step("acknowledge it");
  await page.fill("#note", "浏览器测试确认");
  await page.click("#actions button[data-action=acknowledge]");
  await page.waitForSelector('#audit tr[data-action="acknowledge"]', { timeout: 10_000 });
  const row = await page.$('#audit tr[data-action="acknowledge"]');
  const rowUser = (await row.$eval(".user", (n) => n.textContent)) || "";
  check(rowUser === username, `the audit trail names ${JSON.stringify(rowUser)}, not ${username}`);
  check(((await row.$eval(".action", (n) => n.textContent)) || "") === "确认", "the audit row does not say 确认");
  const state = (await page.textContent('#event-detail dd[data-field="workflow"]')) || "";
  check(state.includes("已确认"), `the detail's handling state is ${JSON.stringify(state)}, not 已确认`);

  step("the API agrees (same session cookie)");
  const event = await (await context.request.get(`${base}/api/v1/events/${eventId}`)).json();
  check(event.workflow && event.workflow.state === "acknowledged", `API workflow: ${JSON.stringify(event.workflow)}`);
  check(event.workflow.updated_by === username, `API updated_by: ${JSON.stringify(event.workflow)}`);
  const actions = await (await context.request.get(`${base}/api/v1/events/${eventId}/actions`)).json();
  const ack = (actions.items || []).find((a) => a.action === "acknowledge");
  check(ack && ack.user === username, `API actions: ${JSON.stringify(actions)}`);
  check(ack.note === "浏览器测试确认", `the note did not arrive: ${JSON.stringify(ack)}`);

  step("the English toggle changes the labels, and is remembered");
  const navBefore = await page.textContent('#nav a[data-route="live"]');
  check(navBefore === "实时事件墙", `nav label before: ${navBefore}`);
  await page.click("#lang-toggle");
  await page.waitForFunction(() => document.querySelector('#nav a[data-route="live"]').textContent === "Live wall");
  check((await page.textContent("#actions button[data-action=acknowledge]")) === "Acknowledge", "the action buttons stay Chinese");
  await page.reload();
  await page.waitForSelector("#event-detail #audit", { timeout: 15_000 });
  check((await page.textContent('#nav a[data-route="live"]')) === "Live wall", "English is not remembered after a reload");
  await page.click("#lang-toggle");
  await page.waitForFunction(() => document.querySelector('#nav a[data-route="live"]').textContent === "实时事件墙");

  step("the other views load: events, cameras, report");
  await page.click('#nav a[data-route="events"]');
  await page.waitForSelector(`tr.event-row[data-event-id="${eventId}"]`, { timeout: 15_000 });
  await page.click('#nav a[data-route="cameras"]');
  await page.waitForSelector('.camera-card[data-state="online"]', { timeout: 15_000 });
  await page.click('#nav a[data-route="report"]');
  await page.waitForSelector("#report svg.bar-chart, #report .empty", { timeout: 15_000 });

  step("log out: the login form returns and the session is gone");
  await page.click("#logout");
  await page.waitForSelector("#login-form", { timeout: 10_000 });
  const me = await context.request.get(`${base}/api/v1/auth/me`);
  check(me.status() === 401, `GET /auth/me after logout: ${me.status()}`);
}

await runInBrowser("dashboard browser test", run);
