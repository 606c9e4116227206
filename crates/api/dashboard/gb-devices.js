// 国标设备 (admins, on the cameras page): the GB/T 28181 devices registered
// to the centre, with their address, transport, last keepalive and
// channels, and a button that asks a device for its catalog again.
// Polls GET /api/v1/gb28181/devices; hidden while there are none (no
// [gb28181] section, or nothing has registered yet).

import { api } from "./api.js";
import { el } from "./dom.js";
import { t, tOr, errorText } from "./i18n.js";
import { beijingTime } from "./format.js";

const REFRESH_S = 10;

function channelList(channels) {
  if (!channels.length) return el("span", { class: "muted" }, "—");
  return el("ul", { class: "channels" }, ...channels.map((c) =>
    el("li", { dataset: { channelId: c.id } },
      c.camera_id
        ? el("a", { href: "#/cameras" }, c.name || c.id)
        : el("span", {}, c.name || c.id),
      el("span", { class: "muted" }, ` ${c.id}${c.status ? ` · ${c.status}` : ""}`),
    )));
}

function row(device, ask) {
  const state = device.online
    ? el("span", { class: "badge state state-online" }, t("devices.online"))
    : el("span", { class: "badge state state-offline" },
      device.reason ? tOr("reason.", device.reason) : t("devices.offline"));
  const button = el("button", { type: "button", disabled: !device.online, onclick: () => ask(device.id, button) },
    t("devices.catalog"));
  return el("tr", { dataset: { deviceId: device.id } },
    el("td", {}, el("strong", {}, device.name || "—"), el("div", { class: "muted" }, device.id)),
    el("td", {}, state),
    el("td", {}, device.address || "—"),
    el("td", {}, (device.transport || "—").toUpperCase()),
    el("td", {}, beijingTime(device.last_keepalive)),
    el("td", {}, channelList(device.channels || [])),
    el("td", {}, button),
  );
}

/** Mounts the device list into `root` for admins; returns the unmount. */
export function mount(root, session) {
  if (!session.user || session.user.role !== "admin") return () => {};
  const message = el("p", { class: "form-message", role: "status" });
  const body = el("tbody");
  const section = el("section", { class: "gb-devices", hidden: true },
    el("h2", {}, t("devices.heading")),
    message,
    el("table", {},
      el("thead", {}, el("tr", {},
        ...["devices.device", "devices.state", "devices.address", "devices.transport",
          "devices.keepalive", "devices.channels", ""].map((k) => el("th", {}, k ? t(k) : "")))),
      body),
  );
  root.append(section);

  async function ask(id, button) {
    button.disabled = true;
    try {
      await api.post(`/gb28181/devices/${encodeURIComponent(id)}/catalog`);
      message.textContent = t("devices.asked", { id });
    } catch (e) {
      message.textContent = errorText(e);
    }
  }

  async function refresh() {
    let items;
    try {
      const reply = await api.get("/gb28181/devices");
      items = Array.isArray(reply && reply.items) ? reply.items : [];
    } catch (e) {
      if (e.status !== 401) message.textContent = errorText(e);
      return;
    }
    section.hidden = items.length === 0;
    body.replaceChildren(...items.map((d) => row(d, ask)));
  }

  refresh();
  const timer = setInterval(refresh, REFRESH_S * 1000);
  return () => clearInterval(timer);
}
