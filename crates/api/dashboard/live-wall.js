// 实时事件墙: the newest events as cards, updated live from the SSE feed
// (GET /api/v1/events/stream). The first cards come from the event list;
// cards for events that arrive live are marked `data-live="true"`.

import { api, query } from "./api.js";
import { el } from "./dom.js";
import { t, errorText } from "./i18n.js";
import { loadCameras } from "./camera-directory.js";
import { eventCard } from "./event-card.js";

const MAX_CARDS = 48;
const INITIAL = 12;
const CHANGES = ["started", "improved", "ended", "updated"];

export function mount(root, session) {
  const status = el("p", { class: "live-status connecting", role: "status" }, t("live.connecting"));
  const note = el("p", { class: "error", hidden: true });
  const wall = el("div", { class: "wall", id: "wall" });
  const empty = el("p", { class: "empty" }, t("live.empty"));
  root.append(el("div", { class: "toolbar" }, status), note, empty, wall);

  const cards = new Map(); // event id -> card element
  const liveIds = new Set();

  function showEmpty() {
    empty.hidden = cards.size > 0;
  }

  function put(event, live) {
    if (!event || typeof event.id !== "number") return;
    if (live) liveIds.add(event.id);
    const card = eventCard(event, { live: liveIds.has(event.id) });
    const old = cards.get(event.id);
    if (old) {
      old.replaceWith(card);
    } else if (live) {
      wall.prepend(card);
      card.classList.add("fresh");
    } else {
      wall.append(card);
    }
    cards.set(event.id, card);
    while (cards.size > MAX_CARDS) {
      const last = wall.lastElementChild;
      if (!last) break;
      cards.delete(Number(last.dataset.eventId));
      last.remove();
    }
    showEmpty();
  }

  async function loadRecent() {
    try {
      await loadCameras();
      const page = await api.get(`/events${query({ limit: INITIAL })}`);
      for (const event of page.items || []) {
        if (!cards.has(event.id)) put(event, false);
      }
      note.hidden = true;
    } catch (e) {
      if (e.status !== 401) {
        note.textContent = errorText(e);
        note.hidden = false;
      }
    }
    showEmpty();
  }

  const source = new EventSource("/api/v1/events/stream", { withCredentials: true });
  source.addEventListener("open", () => {
    status.textContent = t("live.connected");
    status.className = "live-status connected";
  });
  source.addEventListener("error", () => {
    status.textContent = t("live.reconnecting");
    status.className = "live-status reconnecting";
    // The browser retries by itself unless the server refused the stream
    // (e.g. 401 after the session ended): then see whether we are still in.
    if (source.readyState === EventSource.CLOSED) session.check();
  });
  for (const change of CHANGES) {
    source.addEventListener(change, (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      // Updates to events that are not on the wall (any more) are ignored.
      if (change === "started" || cards.has(event.id)) put(event, change === "started");
    });
  }
  source.addEventListener("lagged", () => {
    note.textContent = t("live.lagged");
    note.hidden = false;
    loadRecent();
  });

  loadRecent();
  return () => source.close();
}
