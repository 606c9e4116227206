// 事件列表: filters, a table of events, and "load more" along the cursor.
// The filters are kept while the page is open, so coming back from an
// event's detail shows the same search.

import { api, query } from "./api.js";
import { el, select } from "./dom.js";
import { t, tOr, errorText } from "./i18n.js";
import { beijingTime, fromBeijingInput, percent } from "./format.js";
import { loadCameras, cameraName, villages } from "./camera-directory.js";
import { kindBadge, workflowBadge } from "./event-card.js";

const PAGE = 50;
const KINDS = [
  "object", "intrusion", "loitering", "crowd", "line_crossing", "vehicle_dwell",
  "camera_offline", "camera_recovered", "video_frozen", "video_blocked", "scene_changed",
  "store_full",
];
const WORKFLOW = ["new", "acknowledged", "assigned", "resolved", "false_alarm"];
const EMPTY_FILTERS = {
  camera: "", village: "", kind: "", label: "", status: "", workflow: "",
  since: "", until: "", min_score: "",
};

let filters = { ...EMPTY_FILTERS };

function options(values, prefix) {
  return [["", t("list.any")], ...values.map((v) => [v, prefix ? tOr(prefix, v) : v])];
}

function field(labelKey, control) {
  return el("label", { class: "field" }, el("span", {}, t(labelKey)), control);
}

function filterForm(cameras, onSearch) {
  const cams = [["", t("list.any")], ...cameras.map((c) => [c.id, c.name || c.id])];
  const form = el("form", { class: "filters", id: "event-filters" },
    field("event.camera", select("camera", cams, filters.camera)),
    field("event.village", select("village", options(villages()), filters.village)),
    field("event.kind", select("kind", options(KINDS, "kind."), filters.kind)),
    field("event.label", el("input", { name: "label", value: filters.label, list: "label-choices", autocomplete: "off" })),
    el("datalist", { id: "label-choices" },
      ...["person", "car", "bicycle", "motorcycle", "bus", "truck"].map((l) => el("option", { value: l }))),
    field("event.status", select("status", options(["active", "ended"], "event.status."), filters.status)),
    field("event.workflow", select("workflow", options(WORKFLOW, "workflow."), filters.workflow)),
    field("list.since", el("input", { type: "datetime-local", name: "since", value: filters.since })),
    field("list.until", el("input", { type: "datetime-local", name: "until", value: filters.until })),
    field("list.minScore", el("input", {
      type: "number", name: "min_score", min: "0", max: "1", step: "0.05", value: filters.min_score,
    })),
    el("div", { class: "buttons" },
      el("button", { type: "submit", class: "primary" }, t("list.apply")),
      el("button", { type: "reset" }, t("list.reset")),
    ),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    filters = Object.fromEntries(Object.keys(EMPTY_FILTERS).map((k) => [k, String(data.get(k) ?? "").trim()]));
    onSearch();
  });
  form.addEventListener("reset", (e) => {
    e.preventDefault();
    filters = { ...EMPTY_FILTERS };
    onSearch(true);
  });
  return form;
}

function apiParams(cursor) {
  return {
    camera: filters.camera,
    village: filters.village,
    kind: filters.kind,
    label: filters.label,
    status: filters.status,
    workflow: filters.workflow,
    since: fromBeijingInput(filters.since),
    until: fromBeijingInput(filters.until),
    min_score: filters.min_score,
    limit: PAGE,
    cursor,
  };
}

function row(event) {
  const open = () => {
    location.hash = `#/events/${encodeURIComponent(event.id)}`;
  };
  const tr = el("tr", { class: "event-row", tabindex: "0", dataset: { eventId: String(event.id) } },
    el("td", {}, el("a", { href: `#/events/${encodeURIComponent(event.id)}` }, String(event.id))),
    el("td", {}, beijingTime(event.started_at)),
    el("td", {}, cameraName(event.camera_id)),
    el("td", {}, event.village || "—"),
    el("td", {}, kindBadge(event.kind)),
    el("td", {}, tOr("label.", event.label)),
    el("td", { class: "num" }, percent(event.score)),
    el("td", {}, tOr("event.status.", event.status)),
    el("td", {}, workflowBadge(event)),
  );
  tr.addEventListener("click", (e) => {
    if (!(e.target instanceof HTMLAnchorElement)) open();
  });
  tr.addEventListener("keydown", (e) => {
    if (e.key === "Enter") open();
  });
  return tr;
}

export function mount(root) {
  let alive = true;
  const holder = el("div", {});
  const error = el("p", { class: "error", hidden: true, role: "alert" });
  const tbody = el("tbody", {});
  const table = el("table", { class: "events" },
    el("thead", {}, el("tr", {},
      ...["event.id", "event.time", "event.camera", "event.village", "event.kind", "event.label",
        "event.score", "event.status", "event.workflow"].map((k) => el("th", {}, t(k))))),
    tbody);
  const info = el("p", { class: "muted" });
  const more = el("button", { type: "button", class: "more", hidden: true }, t("list.loadMore"));
  root.append(holder, error, table, info, more);

  let cursor = null;
  let shown = 0;

  async function load(reset) {
    if (reset) {
      tbody.replaceChildren();
      cursor = null;
      shown = 0;
    }
    more.disabled = true;
    info.textContent = t("list.loading");
    try {
      const page = await api.get(`/events${query(apiParams(cursor))}`);
      if (!alive) return;
      for (const event of page.items || []) tbody.append(row(event));
      shown += (page.items || []).length;
      cursor = page.next_cursor || null;
      error.hidden = true;
    } catch (e) {
      if (!alive) return;
      error.textContent = errorText(e);
      if (e.status === 400) error.textContent = t("error.generic", { message: e.message });
      error.hidden = false;
    }
    info.textContent = shown === 0 ? t("list.empty") : t("list.count", { n: shown });
    more.hidden = !cursor;
    more.disabled = false;
  }

  more.addEventListener("click", () => load(false));

  loadCameras().then((cameras) => {
    if (!alive) return;
    const search = (reset) => {
      // A reset rebuilds the form so that every control shows "any" again.
      if (reset) holder.replaceChildren(filterForm(cameras, search));
      load(true);
    };
    holder.replaceChildren(filterForm(cameras, search));
    load(true);
  });
  return () => {
    alive = false;
  };
}
