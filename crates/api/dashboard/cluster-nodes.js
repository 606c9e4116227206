// 集群节点 (on the cameras page): with several nodes ([cluster]), each node
// with its state (live, draining, lost), CPU, last heartbeat and the cameras
// it runs, and the cameras no node runs now. Polls GET /api/v1/cluster;
// hidden on a node that runs alone.

import { api } from "./api.js";
import { el } from "./dom.js";
import { t, errorText } from "./i18n.js";
import { beijingTime } from "./format.js";

const REFRESH_S = 10;

function stateBadge(node) {
  if (!node.live) return el("span", { class: "badge state state-offline" }, t("cluster.lost"));
  if (node.draining) return el("span", { class: "badge state state-degraded" }, t("cluster.draining"));
  return el("span", { class: "badge state state-online" }, t("cluster.live"));
}

function cameraList(ids) {
  if (!ids.length) return el("span", { class: "muted" }, "—");
  return el("span", {}, `${ids.length}：${ids.join("、")}`);
}

function row(node, here) {
  return el("tr", { dataset: { nodeId: node.node_id } },
    el("td", {}, el("strong", {}, node.node_id),
      node.node_id === here ? el("div", { class: "muted" }, t("cluster.thisNode")) : ""),
    el("td", {}, stateBadge(node)),
    el("td", {}, `${Math.round(node.cpu_percent)}%`),
    el("td", {}, beijingTime(node.heartbeat_at)),
    el("td", { class: "cameras" }, cameraList(node.cameras || [])),
  );
}

/** Mounts the node list into `root`; returns the unmount. */
export function mount(root) {
  const message = el("p", { class: "form-message", role: "status" });
  const unassigned = el("p", { class: "unassigned" });
  const body = el("tbody");
  const section = el("section", { class: "cluster-nodes", hidden: true },
    el("h2", {}, t("cluster.heading")),
    message,
    el("table", {},
      el("thead", {}, el("tr", {},
        ...["cluster.node", "cluster.state", "cluster.cpu", "cluster.heartbeat", "cluster.cameras"]
          .map((k) => el("th", {}, t(k))))),
      body),
    unassigned,
  );
  root.append(section);

  async function refresh() {
    let reply;
    try {
      reply = await api.get("/cluster");
    } catch (e) {
      if (e.status !== 401) message.textContent = errorText(e);
      return;
    }
    message.textContent = "";
    section.hidden = !(reply && reply.clustered);
    if (section.hidden) return;
    body.replaceChildren(...(reply.nodes || []).map((n) => row(n, reply.this_node)));
    const waiting = reply.unassigned || [];
    unassigned.textContent = waiting.length
      ? t("cluster.unassigned", { ids: waiting.join("、") })
      : "";
  }

  refresh();
  const timer = setInterval(refresh, REFRESH_S * 1000);
  return () => clearInterval(timer);
}
