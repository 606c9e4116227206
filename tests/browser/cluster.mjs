// The cluster's nodes on the cameras page (摄像机 → 集群节点), in real
// headless Chromium: every node is listed with its state, the live ones
// with the cameras they run, a node that stopped beating as 失联 with none.
// Run by
// tests/e2e/cluster.rs after it killed a node; by hand:
//
//   XUELIANG_URL=http://127.0.0.1:8080 XUELIANG_USER=admin XUELIANG_PASSWORD=... \
//     XUELIANG_LIVE_NODES=a,b XUELIANG_LOST_NODE=c node tests/browser/cluster.mjs
//
// Environment: XUELIANG_URL, XUELIANG_USER, XUELIANG_PASSWORD,
// XUELIANG_LIVE_NODES (comma-separated), XUELIANG_LOST_NODE (all required),
// XUELIANG_SCREENSHOT, CHROMIUM.

import { check, logIn, required, runInBrowser, step } from "./harness.mjs";

const base = required("XUELIANG_URL").replace(/\/$/, "");
const user = required("XUELIANG_USER");
const password = required("XUELIANG_PASSWORD");
const liveNodes = required("XUELIANG_LIVE_NODES").split(",");
const lostNode = required("XUELIANG_LOST_NODE");

async function run(page) {
  step("log in and open the cameras page");
  await logIn(page, base, user, password);
  await page.click('#nav a[data-route="cameras"]');

  for (const node of liveNodes) {
    step(`node ${node} is listed as 在线 with the cameras it runs`);
    const row = `.cluster-nodes tr[data-node-id="${node}"]`;
    await page.waitForSelector(row, { timeout: 20_000 });
    const text = await page.textContent(row);
    check(text.includes("在线"), `${node} does not say 在线: ${text}`);
    const cameras = await page.textContent(`${row} td.cameras`);
    check(/^\d+：/.test(cameras.trim()), `${node} lists no cameras: ${cameras}`);
  }

  step(`node ${lostNode} is listed as 失联, running nothing`);
  const lost = `.cluster-nodes tr[data-node-id="${lostNode}"]`;
  await page.waitForSelector(lost, { timeout: 20_000 });
  const text = await page.textContent(lost);
  check(text.includes("失联"), `${lostNode} does not say 失联: ${text}`);
  check((await page.textContent(`${lost} td.cameras`)).trim() === "—", `${lostNode} still lists cameras`);
  check(await page.isVisible(".cluster-nodes"), "the node section is hidden");

}

await runInBrowser("the cluster's nodes", run);
