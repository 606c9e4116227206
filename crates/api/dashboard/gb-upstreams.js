// 上级平台 (admins, on the cameras page): the superior platforms the centre
// registers to as a lower platform (GB/T 28181 cascade), each with its
// state, address, registration, last keepalive, what it asked of us, and
// the last error. Polls GET /api/v1/gb28181/upstreams; hidden while there
// are none (no [[gb28181.upstream]]).

import { api } from "./api.js";
import { el } from "./dom.js";
import { t, tOr, errorText } from "./i18n.js";
import { beijingTime } from "./format.js";

const REFRESH_S = 10;

/** The badge class of a link state: registered is good, failed is bad. */
const STATE_CLASS = { registered: "state-online", failed: "state-offline" };

function counts(link) {
  const parts = [t("upstreams.catalog_queries", { n: link.catalog_queries ?? 0 })];
  if (link.alarms_sent !== undefined) {
    parts.push(t("upstreams.alarms", { sent: link.alarms_sent, failed: link.alarms_failed ?? 0 }));
  }
  if (link.catalog_notifies_sent !== undefined) {
    parts.push(t("upstreams.catalog_notifies", {
      sent: link.catalog_notifies_sent, failed: link.catalog_notifies_failed ?? 0 }));
  }
  if (link.streams !== undefined) {
    parts.push(t("upstreams.streams", { n: link.streams }));
  }
  return parts.join(" · ");
}

function row(link) {
  const state = el("span", { class: `badge state ${STATE_CLASS[link.state] || ""}` },
    tOr("upstreams.state.", link.state));
  return el("tr", { dataset: { upstreamId: link.id, state: link.state } },
    el("td", {}, el("strong", {}, link.id), el("div", { class: "muted" }, t("upstreams.as", { id: link.local_id }))),
    el("td", {}, state, el("div", { class: "muted" }, beijingTime(link.since))),
    el("td", {}, link.address, el("div", { class: "muted" }, (link.transport || "").toUpperCase())),
    el("td", {}, beijingTime(link.registered_until)),
    el("td", {}, beijingTime(link.last_keepalive)),
    el("td", {}, counts(link)),
    el("td", { class: link.last_error ? "link-error" : "muted" }, link.last_error || "—"),
  );
}

/** Mounts the superior platforms' list into `root` for admins; returns the unmount. */
export function mount(root, session) {
  if (!session.user || session.user.role !== "admin") return () => {};
  const message = el("p", { class: "form-message", role: "status" });
  const body = el("tbody");
  const section = el("section", { class: "gb-upstreams", hidden: true },
    el("h2", {}, t("upstreams.heading")),
    message,
    el("table", {},
      el("thead", {}, el("tr", {},
        ...["upstreams.platform", "upstreams.state", "upstreams.address", "upstreams.until",
          "upstreams.keepalive", "upstreams.asked", "upstreams.error"].map((k) => el("th", {}, t(k))))),
      body),
  );
  root.append(section);

  async function refresh() {
    let items;
    try {
      const reply = await api.get("/gb28181/upstreams");
      items = Array.isArray(reply && reply.items) ? reply.items : [];
    } catch (e) {
      if (e.status !== 401) message.textContent = errorText(e);
      return;
    }
    message.textContent = "";
    section.hidden = items.length === 0;
    body.replaceChildren(...items.map(row));
  }

  refresh();
  const timer = setInterval(refresh, REFRESH_S * 1000);
  return () => clearInterval(timer);
}
