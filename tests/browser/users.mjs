// The users page (用户管理) in real headless Chromium, as an administrator:
// create a user, set the role and villages, list and revoke their token,
// reset the password, disable the account; and a non-admin sees no such
// page. Every step is checked against the API. Run by tests/e2e/dashboard.rs;
// by hand:
//
//   XUELIANG_URL=http://127.0.0.1:8080 XUELIANG_USER=admin XUELIANG_PASSWORD=... \
//     node tests/browser/users.mjs
//
// Environment: XUELIANG_URL, XUELIANG_USER and XUELIANG_PASSWORD (an
// administrator; required), XUELIANG_NEW_USER (the user to make; default
// li.na), XUELIANG_SCREENSHOT, CHROMIUM (as in dashboard.mjs).

import { request } from "playwright-core";
import { check, logIn, required, runInBrowser, step, watch } from "./harness.mjs";

const base = required("XUELIANG_URL").replace(/\/$/, "");
const admin = required("XUELIANG_USER");
const adminPassword = required("XUELIANG_PASSWORD");
const newUser = process.env.XUELIANG_NEW_USER || "li.na";
const firstPassword = "first-password-东村-1";
const secondPassword = "second-password-东村-2";

/** POST /auth/login as `username` from a client of its own: the status. */
async function loginStatus(username, password) {
  const client = await request.newContext({ baseURL: base });
  try {
    const r = await client.post("/api/v1/auth/login", { data: { username, password } });
    return r.status();
  } finally {
    await client.dispose();
  }
}

async function run(page, context, browser) {
  const apiUser = async () => {
    const r = await context.request.get(`${base}/api/v1/users`);
    check(r.status() === 200, `GET /users: ${r.status()}`);
    return ((await r.json()).items || []).find((u) => u.username === newUser);
  };
  const row = `#users-table tr[data-username="${newUser}"]`;

  step("log in as the administrator: the users page is in the menu");
  await logIn(page, base, admin, adminPassword);
  await page.waitForSelector('#nav a[data-route="users"]:not([hidden])');
  await page.click('#nav a[data-route="users"]');
  await page.waitForSelector("#users-create");
  await page.waitForSelector(`#users-table tr[data-username="${admin}"]`);

  step(`create ${newUser}: operator of 东村`);
  await page.fill('#users-create input[name="username"]', newUser);
  await page.fill('#users-create input[name="password"]', firstPassword);
  await page.selectOption('#users-create select[name="role"]', "operator");
  await page.fill('#users-create input[name="villages"]', "东村");
  await page.click("#users-create button[type=submit]");
  await page.waitForSelector(row);
  check((await page.textContent(`${row} .role`)) === "值班员", "the new row's role is not 值班员");
  let u = await apiUser();
  check(u && u.role === "operator" && JSON.stringify(u.villages) === '["东村"]', `API: ${JSON.stringify(u)}`);
  check(!u.disabled, "the new user is disabled");

  step("set the role to viewer and the villages to 东村、西村");
  await page.click(`${row} button.manage`);
  await page.waitForSelector("#user-edit:not([hidden]) #user-access");
  await page.selectOption('#user-access select[name="role"]', "viewer");
  await page.fill('#user-access input[name="villages"]', "东村、西村");
  await page.click("#user-access button[type=submit]");
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === "只读", `${row} .role`);
  u = await apiUser();
  check(u.role === "viewer" && JSON.stringify(u.villages) === '["东村","西村"]', `API: ${JSON.stringify(u)}`);

  step(`${newUser} logs in: the users page is not theirs`);
  const theirs = await browser.newContext({ locale: "zh-CN" });
  const theirPage = await theirs.newPage();
  watch(theirPage);
  await logIn(theirPage, base, newUser, firstPassword);
  check(await theirPage.isHidden('#nav a[data-route="users"]'), "a viewer sees the users link");
  await theirPage.goto(`${base}/#/users`);
  await theirPage.waitForSelector("#users-forbidden");
  check((await theirPage.$("#users-create")) === null, "a viewer sees the create form");
  const refused = await theirs.request.get(`${base}/api/v1/users`);
  check(refused.status() === 403, `GET /users as a viewer: ${refused.status()}`);
  // A session cannot make a longer-lived token without the password again.
  const unconfirmed = await theirs.request.post(`${base}/api/v1/tokens`, { data: { name: "县平台" } });
  check(unconfirmed.status() === 403, `POST /tokens without the password as ${newUser}: ${unconfirmed.status()}`);
  const made = await theirs.request.post(`${base}/api/v1/tokens`, {
    data: { name: "县平台", password: firstPassword },
  });
  check(made.status() === 201, `POST /tokens as ${newUser}: ${made.status()}`);
  const apiToken = (await made.json()).token;
  const asToken = () => request.newContext({
    baseURL: base, extraHTTPHeaders: { Authorization: `Bearer ${apiToken}` },
  });
  const tokenClient = await asToken();
  check((await tokenClient.get("/api/v1/auth/me")).status() === 200, "the new API token does not work");

  step("the administrator lists their tokens (a session, an API token) and revokes the API token");
  await page.click('#nav a[data-route="report"]');
  await page.click('#nav a[data-route="users"]');
  await page.click(`${row} button.manage`);
  await page.waitForSelector('#user-tokens tr[data-kind="api"] button.revoke');
  check((await page.$('#user-tokens tr[data-kind="session"]')) !== null, "their session is not listed");
  await page.click('#user-tokens tr[data-kind="api"] button.revoke');
  await page.waitForSelector('#user-tokens tr[data-kind="api"] .revoked');
  check((await tokenClient.get("/api/v1/auth/me")).status() === 401, "the revoked token still works");
  await tokenClient.dispose();

  step("reset the password: the old one stops working, their session ends");
  await page.fill('#user-password input[name="password"]', secondPassword);
  await page.click("#user-password button[type=submit]");
  await page.waitForFunction(() => /已重置/.test(document.querySelector("#users-message")?.textContent || ""));
  check((await loginStatus(newUser, firstPassword)) === 401, "the old password still works");
  check((await theirs.request.get(`${base}/api/v1/auth/me`)).status() === 401, "their session survived the reset");
  check((await loginStatus(newUser, secondPassword)) === 200, "the new password does not work");
  await theirs.close();

  step("disable the account: it cannot log in");
  await page.click("#user-toggle");
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === "已停用", `${row} .state`);
  u = await apiUser();
  check(u.disabled === true, `API: ${JSON.stringify(u)}`);
  check((await loginStatus(newUser, secondPassword)) === 401, "a disabled user can log in");
}

await runInBrowser("users page browser test", run);
