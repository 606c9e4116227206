// 在线率报表: GET /reports/availability?from&to&group_by, as a bar chart and
// a table. The range is entered in Beijing time; the last 24 hours by default.

import { api, query } from "./api.js";
import { el, select } from "./dom.js";
import { t, errorText } from "./i18n.js";
import { duration, fromBeijingInput, percent, toBeijingInput } from "./format.js";
import { barChart, rateClass } from "./bar-chart.js";
import { loadCameras, cameraName } from "./camera-directory.js";

const GROUPS = ["village", "grid", "camera", "township"];
let choice = null; // {from, to, group_by} kept while the page is open

function defaults() {
  const now = new Date();
  return {
    from: toBeijingInput(new Date(now.getTime() - 24 * 3600 * 1000)),
    to: toBeijingInput(new Date(now.getTime() + 60 * 1000)),
    group_by: "village",
  };
}

function keyLabel(row, groupBy) {
  if (groupBy === "township") return t("report.township");
  if (row.key === null || row.key === undefined || row.key === "") return t("report.unassigned");
  return groupBy === "camera" ? cameraName(row.key) : row.key;
}

function shorten(text, max = 14) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function mount(root) {
  let alive = true;
  choice = choice || defaults();
  const form = el("form", { class: "filters", id: "report-form" },
    el("label", { class: "field" }, el("span", {}, t("report.from")),
      el("input", { type: "datetime-local", name: "from", value: choice.from, required: true })),
    el("label", { class: "field" }, el("span", {}, t("report.to")),
      el("input", { type: "datetime-local", name: "to", value: choice.to, required: true })),
    el("label", { class: "field" }, el("span", {}, t("report.groupBy")),
      select("group_by", GROUPS.map((g) => [g, t(`report.group.${g}`)]), choice.group_by)),
    el("div", { class: "buttons" }, el("button", { type: "submit", class: "primary" }, t("report.show"))),
  );
  const error = el("p", { class: "error", hidden: true, role: "alert" });
  const result = el("div", { class: "report", id: "report" });
  root.append(form, error, result);

  async function show() {
    const params = {
      from: fromBeijingInput(choice.from),
      to: fromBeijingInput(choice.to),
      group_by: choice.group_by,
    };
    let report;
    try {
      await loadCameras();
      report = await api.get(`/reports/availability${query(params)}`);
      error.hidden = true;
    } catch (e) {
      if (!alive) return;
      error.textContent = e.status === 400 ? t("error.generic", { message: e.message }) : errorText(e);
      error.hidden = false;
      result.replaceChildren();
      return;
    }
    if (!alive) return;
    const groupBy = report.group_by || choice.group_by;
    const rows = (report.items || []).filter((r) => r.sampled_s > 0);
    if (!rows.length) {
      result.replaceChildren(el("p", { class: "empty" }, t("report.empty")));
      return;
    }
    rows.sort((a, b) => a.online_rate - b.online_rate); // worst first: what needs a visit
    result.replaceChildren(
      barChart(
        rows.map((r) => ({
          label: shorten(keyLabel(r, groupBy)),
          value: r.online_rate,
          text: percent(r.online_rate, 1),
        })),
        t("report.chartTitle"),
      ),
      el("table", { class: "report-table" },
        el("thead", {}, el("tr", {},
          ...["report.key", "report.cameras", "report.sampled", "report.online", "report.rate"]
            .map((k) => el("th", {}, t(k))))),
        el("tbody", {}, ...rows.map((r) =>
          el("tr", {},
            el("td", {}, keyLabel(r, groupBy)),
            el("td", { class: "num" }, String(r.cameras)),
            el("td", { class: "num" }, duration(r.sampled_s)),
            el("td", { class: "num" }, duration(r.online_s)),
            el("td", { class: `num rate ${rateClass(r.online_rate)}` }, percent(r.online_rate, 1)),
          ))),
      ),
    );
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    choice = {
      from: String(data.get("from") || ""),
      to: String(data.get("to") || ""),
      group_by: String(data.get("group_by") || "village"),
    };
    show();
  });
  show();
  return () => {
    alive = false;
  };
}
