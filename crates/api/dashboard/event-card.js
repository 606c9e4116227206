// One event as a card on the live wall: picture with boxes, what, where, when.

import { el } from "./dom.js";
import { t, tOr } from "./i18n.js";
import { beijingTime, percent } from "./format.js";
import { cameraName } from "./camera-directory.js";
import { snapshotFigure } from "./snapshot.js";

export function workflowState(event) {
  return (event.workflow && event.workflow.state) || "new";
}

export function kindBadge(kind) {
  return el("span", { class: `badge kind kind-${kind}` }, tOr("kind.", kind));
}

export function workflowBadge(event) {
  const state = workflowState(event);
  return el("span", { class: `badge wf wf-${state}` }, tOr("workflow.", state));
}

export function eventCard(event, { live = false } = {}) {
  const card = el("a", {
    class: "event-card",
    href: `#/events/${encodeURIComponent(event.id)}`,
    dataset: { eventId: String(event.id), live: live ? "true" : "false", status: event.status },
  });
  const what = event.kind === "object" ? tOr("label.", event.label) : tOr("kind.", event.kind);
  card.append(
    snapshotFigure(event, `${event.score}-${(event.boxes || []).length}`),
    el("div", { class: "card-body" },
      el("div", { class: "card-line" },
        kindBadge(event.kind),
        el("span", { class: "what" }, what),
        event.score > 0 && event.kind !== "camera_offline" ? el("span", { class: "score" }, percent(event.score)) : null,
        live ? el("span", { class: "badge live" }, t("live.new")) : null,
      ),
      el("div", { class: "card-line camera" },
        el("span", { class: "camera-name" }, cameraName(event.camera_id)),
        event.village ? el("span", { class: "village" }, event.village) : null,
      ),
      el("div", { class: "card-line muted" },
        el("time", { datetime: event.started_at }, beijingTime(event.started_at)),
        el("span", { class: `status status-${event.status}` }, tOr("event.status.", event.status)),
        workflowBadge(event),
      ),
    ),
  );
  return card;
}
