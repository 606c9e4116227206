// An event's detail: picture with boxes, its fields, the audit trail
// (GET /events/{id}/actions) and, for operators and administrators, the
// workflow actions (POST /events/{id}/actions).

import { api } from "./api.js";
import { el } from "./dom.js";
import { t, tOr, errorText } from "./i18n.js";
import { beijingTime, percent } from "./format.js";
import { loadCameras, cameraName } from "./camera-directory.js";
import { snapshotFigure } from "./snapshot.js";
import { liveButton } from "./live-player.js";
import { kindBadge, workflowBadge } from "./event-card.js";

const ACTIONS = ["acknowledge", "assign", "resolve", "false_alarm", "note"];

function canAct(user) {
  return !!user && (user.role === "admin" || user.role === "operator");
}

function fields(event) {
  const wf = event.workflow || {};
  const rows = [
    ["event.id", String(event.id)],
    ["event.kind", kindBadge(event.kind)],
    ["event.label", tOr("label.", event.label)],
    ["event.score", percent(event.score)],
    ["event.camera", `${cameraName(event.camera_id)} (${event.camera_id})`],
    ["event.village", event.village || "—"],
    ["event.grid", event.grid || "—"],
    ["event.startedAt", beijingTime(event.started_at)],
    ["event.endedAt", beijingTime(event.ended_at)],
    ["event.status", tOr("event.status.", event.status)],
    ["event.workflow", workflowBadge(event)],
    ["event.assignee", wf.assignee || "—"],
    ["event.updatedBy", wf.updated_by ? `${wf.updated_by} · ${beijingTime(wf.updated_at)}` : "—"],
  ];
  if (event.zone) rows.push(["event.zone", event.zone]);
  if (event.rule) rows.push(["event.rule", event.rule]);
  if (event.detail) rows.push(["event.detail", event.detail]);
  const dl = el("dl", { class: "fields" });
  for (const [key, value] of rows) {
    dl.append(el("dt", {}, t(key)), el("dd", { dataset: { field: key.replace("event.", "") } }, value));
  }
  return dl;
}

function auditTrail(items) {
  if (!items.length) return el("p", { class: "muted", id: "audit-empty" }, t("detail.auditEmpty"));
  return el("table", { class: "audit", id: "audit" },
    el("thead", {}, el("tr", {},
      ...["event.time", "detail.by", "detail.action", "event.assignee", "detail.note"].map((k) => el("th", {}, t(k))))),
    el("tbody", {}, ...items.map((a) =>
      el("tr", { dataset: { action: a.action, user: a.user || "" } },
        el("td", {}, beijingTime(a.at)),
        el("td", { class: "user" }, a.user || "—"),
        el("td", { class: "action" }, tOr("action.", a.action)),
        el("td", {}, a.assignee || "—"),
        el("td", { class: "note" }, a.note || ""),
      ))),
  );
}

/** Whether `action` applies in workflow `state` (as the server decides it). */
function allowed(action, state) {
  if (action === "note") return true;
  if (state === "resolved" || state === "false_alarm") return false;
  return action !== "acknowledge" || state === "new";
}

function actionForm(state, onAction) {
  const assignee = el("input", { name: "assignee", id: "assignee", autocomplete: "off" });
  const note = el("textarea", { name: "note", id: "note", rows: "2", placeholder: t("detail.notePlaceholder") });
  const message = el("p", { class: "form-message", role: "status" });
  const buttons = ACTIONS.map((action) =>
    el("button", {
      type: "button",
      class: action === "acknowledge" ? "primary" : action === "false_alarm" ? "warn" : "",
      dataset: { action },
    }, t(`action.${action}`)));
  const form = el("div", { class: "actions", id: "actions" },
    el("h3", {}, t("detail.actions")),
    el("label", { class: "field" }, el("span", {}, t("detail.assignee")), assignee),
    el("label", { class: "field wide" }, el("span", {}, t("detail.note")), note),
    el("div", { class: "buttons" }, ...buttons),
    message,
  );
  const enable = () => {
    for (const b of buttons) b.disabled = !allowed(b.dataset.action, state);
  };
  enable();
  for (const button of buttons) {
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      const body = { action };
      const noteText = note.value.trim();
      const who = assignee.value.trim();
      if (action === "assign") {
        if (!who) return show(t("detail.needAssignee"), true);
        body.assignee = who;
      }
      if (action === "note" && !noteText) return show(t("detail.needNote"), true);
      if (noteText) body.note = noteText;
      for (const b of buttons) b.disabled = true;
      try {
        await onAction(body);
      } catch (e) {
        show(errorText(e), true);
        enable();
      }
    });
  }
  function show(text, isError) {
    message.textContent = text;
    message.className = isError ? "form-message error" : "form-message ok";
  }
  return { form, show };
}

export function mount(root, session, id) {
  let alive = true;
  const body = el("div", { class: "detail", id: "event-detail" });
  // The camera's live video, opened on demand; kept across re-renders.
  const liveBox = el("section", { class: "detail-live", id: "event-live" });
  let live = null;
  root.append(el("p", {}, el("a", { href: "#/events", class: "back" }, t("detail.back"))), body, liveBox);

  async function render(flash) {
    let event;
    let actions;
    try {
      await loadCameras();
      [event, actions] = await Promise.all([
        api.get(`/events/${encodeURIComponent(id)}`),
        api.get(`/events/${encodeURIComponent(id)}/actions`).catch((e) => {
          if (e.status === 404 || e.status === 403) return { items: [] };
          throw e;
        }),
      ]);
    } catch (e) {
      if (!alive) return;
      body.replaceChildren(el("p", { class: "error", role: "alert" },
        e.status === 404 ? t("detail.notFound") : errorText(e)));
      return;
    }
    if (!alive) return;
    const side = el("div", { class: "detail-side" },
      fields(event),
      el("h3", {}, t("detail.audit")),
      auditTrail(Array.isArray(actions && actions.items) ? actions.items : []),
    );
    if (canAct(session.user)) {
      const state = (event.workflow && event.workflow.state) || "new";
      const { form, show } = actionForm(state, async (action) => {
        await api.post(`/events/${encodeURIComponent(id)}/actions`, action);
        await render(t("detail.done", { action: t(`action.${action.action}`) }));
      });
      side.append(form);
      if (flash) show(flash, false);
    } else {
      side.append(el("p", { class: "muted" }, t("detail.viewerHint")));
    }
    const clip = event.clip_url
      ? el("figure", { class: "event-clip" },
        el("video", { controls: true, preload: "metadata", src: event.clip_url, id: "event-clip" }),
        el("figcaption", {}, t("detail.clip", { s: event.clip.duration_s.toFixed(1) })))
      : el("p", { class: "muted" }, t(event.status === "active" ? "detail.clipLater" : "detail.noClip"));
    body.replaceChildren(
      el("div", { class: "detail-picture" }, snapshotFigure(event, String(event.score)), clip),
      side,
    );
    if (!live) {
      live = liveButton({ id: event.camera_id, name: cameraName(event.camera_id) });
      liveBox.replaceChildren(live);
    }
  }

  render();
  return () => {
    alive = false;
    if (live) live.stop();
  };
}
