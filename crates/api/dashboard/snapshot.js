// An event's snapshot with its detection boxes drawn over it. Boxes are in
// pixels of the event's frame; the SVG's viewBox is that frame, stretched
// over the picture, so they line up at any display size.

import { el, svg } from "./dom.js";
import { t, tOr } from "./i18n.js";

function finite(...xs) {
  return xs.every((x) => Number.isFinite(x));
}

function boxesOverlay(event) {
  const w = event.frame_width;
  const h = event.frame_height;
  const overlay = svg("svg", {
    class: "boxes",
    viewBox: `0 0 ${w} ${h}`,
    preserveAspectRatio: "none",
    "aria-hidden": "true",
  });
  const fontSize = Math.max(10, Math.round(h / 30));
  for (const b of event.boxes || []) {
    if (!finite(b.x1, b.y1, b.x2, b.y2) || b.x2 <= b.x1 || b.y2 <= b.y1) continue;
    overlay.append(
      svg("rect", {
        x: b.x1, y: b.y1, width: b.x2 - b.x1, height: b.y2 - b.y1,
        "vector-effect": "non-scaling-stroke",
      }),
    );
    const caption = `${tOr("label.", b.label)} ${Number.isFinite(b.score) ? Math.round(b.score * 100) : ""}`;
    overlay.append(
      svg("text", { x: b.x1 + 2, y: Math.max(fontSize, b.y1 - 3), "font-size": fontSize }, caption.trim()),
    );
  }
  return overlay;
}

/**
 * The picture of `event` with its boxes. `version` changes the image URL
 * when the event got a better picture (the snapshot URL stays the same).
 */
export function snapshotFigure(event, version = "") {
  const figure = el("div", { class: "snapshot" });
  if (!event.snapshot_url) {
    figure.classList.add("no-picture");
    figure.append(el("span", {}, t("snapshot.none")));
    return figure;
  }
  const src = version ? `${event.snapshot_url}?v=${encodeURIComponent(version)}` : event.snapshot_url;
  const img = el("img", { src, alt: t("snapshot.alt"), decoding: "async" });
  img.addEventListener("error", () => {
    figure.replaceChildren(el("span", {}, t("snapshot.none")));
    figure.classList.add("no-picture");
  });
  figure.append(img);
  if (event.frame_width > 0 && event.frame_height > 0 && (event.boxes || []).length > 0) {
    figure.append(boxesOverlay(event));
  }
  return figure;
}
