// 摄像机: every camera grouped by village, with its live state, the reason
// when it is not online, its frame rate and its latest frame. Polls
// GET /api/v1/cameras every few seconds and updates the cards in place.
// Admins also see the GB/T 28181 devices below (gb-devices.js); with
// several nodes, everyone sees the cluster's nodes (cluster-nodes.js).

import { api } from "./api.js";
import { el } from "./dom.js";
import { t, tOr, errorText } from "./i18n.js";
import { beijingTime, duration } from "./format.js";
import { rememberCameras } from "./camera-directory.js";
import * as gbDevices from "./gb-devices.js";
import * as gbUpstreams from "./gb-upstreams.js";
import * as clusterNodes from "./cluster-nodes.js";
import { liveButton } from "./live-player.js";

const REFRESH_S = 5;
/** Thumbnails are heavier than the JSON: every second refresh. */
const THUMB_EVERY = 2;

function thumbnail(camera) {
  const box = el("div", { class: "thumb empty" }, el("span", {}, t("cameras.noFrame")));
  const img = el("img", { alt: camera.name || camera.id, decoding: "async" });
  box.refresh = () => {
    // Load off-screen and swap only on success, so a 404 (no frame yet) or
    // a failed load never blanks a picture that was there.
    const next = new Image();
    next.addEventListener("load", () => {
      img.src = next.src;
      if (!img.isConnected) box.replaceChildren(img);
      box.classList.remove("empty");
    });
    next.src = `/api/v1/cameras/${encodeURIComponent(camera.id)}/frame.jpg?t=${Date.now()}`;
  };
  return box;
}

function card(camera) {
  const state = el("span", { class: "badge state" });
  const reason = el("span", { class: "reason" });
  const facts = el("dl", { class: "facts" });
  const thumb = thumbnail(camera);
  const live = liveButton(camera);
  const node = el("article", { class: "camera-card", dataset: { cameraId: camera.id } },
    thumb,
    el("div", { class: "card-body" },
      live,
      el("div", { class: "card-line" }, el("strong", { class: "camera-name" }, camera.name || camera.id), state),
      reason,
      facts,
    ),
  );
  node.update = (cam) => {
    const h = cam.health || {};
    const s = h.state || "connecting";
    node.dataset.state = s;
    state.className = `badge state state-${s}`;
    state.textContent = tOr("state.", s);
    reason.textContent = h.reason ? `${tOr("reason.", h.reason)}${h.detail ? ` (${h.detail})` : ""}` : "";
    reason.hidden = !h.reason;
    const fps = Number.isFinite(h.fps) ? h.fps.toFixed(1) : "—";
    facts.replaceChildren(
      el("dt", {}, t("cameras.fps")), el("dd", { class: "fps" }, fps),
      el("dt", {}, t("cameras.since")), el("dd", {}, duration(h.seconds_in_state)),
      el("dt", {}, t("cameras.lastFrame")), el("dd", {}, beijingTime(h.last_frame_at)),
      el("dt", {}, t("cameras.reconnects")), el("dd", {}, String(h.reconnects ?? "—")),
      el("dt", {}, t("cameras.location")), el("dd", {}, [cam.location, cam.grid].filter(Boolean).join(" · ") || "—"),
    );
  };
  node.thumb = thumb;
  node.stop = () => live.stop();
  return node;
}

function byVillage(cameras) {
  const groups = new Map();
  for (const cam of cameras) {
    const key = cam.village || "";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(cam);
  }
  return [...groups.entries()].sort(([a], [b]) => (a === "" ? 1 : b === "" ? -1 : a.localeCompare(b, "zh-CN")));
}

export function mount(root, session) {
  const summary = el("p", { class: "summary" });
  const hint = el("span", { class: "muted" }, t("cameras.refreshing", { s: REFRESH_S }));
  const error = el("p", { class: "error", hidden: true, role: "alert" });
  const groupsNode = el("div", { class: "camera-groups" });
  root.append(el("div", { class: "toolbar" }, summary, hint), error, groupsNode);

  let layout = ""; // the camera ids and villages the cards were built for
  const cards = new Map();
  let round = 0;

  async function refresh() {
    let cameras;
    try {
      const body = await api.get("/cameras");
      cameras = Array.isArray(body && body.items) ? body.items : [];
      error.hidden = true;
    } catch (e) {
      if (e.status !== 401) {
        error.textContent = errorText(e);
        error.hidden = false;
      }
      return;
    }
    rememberCameras(cameras);
    const groups = byVillage(cameras);
    const shape = JSON.stringify(groups.map(([v, cams]) => [v, cams.map((c) => [c.id, c.name])]));
    if (shape !== layout) {
      layout = shape;
      for (const c of cards.values()) c.stop();
      cards.clear();
      groupsNode.replaceChildren(
        ...groups.map(([village, cams]) =>
          el("section", { class: "village" },
            el("h2", {}, village || t("cameras.noVillage")),
            el("div", { class: "camera-grid" }, ...cams.map((cam) => {
              const c = card(cam);
              cards.set(cam.id, c);
              return c;
            })),
          )),
      );
      if (!cameras.length) groupsNode.append(el("p", { class: "empty" }, t("cameras.empty")));
    }
    const count = { online: 0, degraded: 0, offline: 0 };
    for (const cam of cameras) {
      const c = cards.get(cam.id);
      if (c) {
        c.update(cam);
        if (round % THUMB_EVERY === 0 && cam.enabled !== false) c.thumb.refresh();
      }
      const s = cam.health && cam.health.state;
      if (s in count) count[s] += 1;
    }
    summary.textContent = t("cameras.summary", { total: cameras.length, ...count });
    round += 1;
  }

  refresh();
  const timer = setInterval(refresh, REFRESH_S * 1000);
  const unmountDevices = gbDevices.mount(root, session);
  const unmountUpstreams = gbUpstreams.mount(root, session);
  const unmountNodes = clusterNodes.mount(root);
  return () => {
    clearInterval(timer);
    for (const c of cards.values()) c.stop();
    unmountDevices();
    unmountUpstreams();
    unmountNodes();
  };
}
