// 视频墙: live video of 1, 4, 9 or 16 cameras at once, chosen by village and
// grid (网格). The choice is remembered in this browser (localStorage), so
// the duty room's screen comes back as it was after a reload. Tiles are
// live-player.js tiles: H.265 cameras fall back to frames where the
// browser cannot play them.

import { el } from "./dom.js";
import { t } from "./i18n.js";
import { loadCameras } from "./camera-directory.js";
import { livePlayer } from "./live-player.js";

const LAYOUTS = [1, 4, 9, 16];
const KEY = "xueliang.videoWall";

function remembered() {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) || "{}");
    return {
      layout: LAYOUTS.includes(v.layout) ? v.layout : 4,
      village: typeof v.village === "string" ? v.village : "",
      grid: typeof v.grid === "string" ? v.grid : "",
      page: Number.isInteger(v.page) && v.page >= 0 ? v.page : 0,
    };
  } catch {
    return { layout: 4, village: "", grid: "", page: 0 };
  }
}

function remember(choice) {
  try {
    localStorage.setItem(KEY, JSON.stringify(choice));
  } catch {
    // Private mode or full: the wall works, it is only not remembered.
  }
}

function select(id, label, options, value) {
  const node = el("select", { id },
    ...options.map(([v, text]) => el("option", { value: v, selected: v === value }, text)));
  return { node, field: el("label", {}, label, " ", node) };
}

export function mount(root) {
  const choice = remembered();
  const bar = el("div", { class: "toolbar wall-toolbar" });
  const wall = el("div", { class: "video-wall", id: "video-wall" });
  const empty = el("p", { class: "empty", hidden: true }, t("wall.empty"));
  root.append(bar, empty, wall);
  let tiles = [];
  let cameras = [];

  function stopTiles() {
    for (const tile of tiles) tile.stop();
    tiles = [];
  }

  function chosen() {
    return cameras.filter((c) =>
      c.enabled !== false
      && (!choice.village || c.village === choice.village)
      && (!choice.grid || c.grid === choice.grid));
  }

  function draw() {
    remember(choice);
    const villages = [...new Set(cameras.map((c) => c.village).filter(Boolean))].sort((a, b) => a.localeCompare(b, "zh-CN"));
    const grids = [...new Set(cameras
      .filter((c) => !choice.village || c.village === choice.village)
      .map((c) => c.grid).filter(Boolean))].sort((a, b) => a.localeCompare(b, "zh-CN"));
    const list = chosen();
    const pages = Math.max(1, Math.ceil(list.length / choice.layout));
    choice.page = Math.min(choice.page, pages - 1);

    const layout = select("wall-layout", t("wall.layout"),
      LAYOUTS.map((n) => [String(n), t("wall.tiles", { n })]), String(choice.layout));
    const village = select("wall-village", t("wall.village"),
      [["", t("wall.all")], ...villages.map((v) => [v, v])], choice.village);
    const grid = select("wall-grid", t("wall.grid"),
      [["", t("wall.all")], ...grids.map((g) => [g, g])], choice.grid);
    layout.node.addEventListener("change", () => { choice.layout = Number(layout.node.value); choice.page = 0; draw(); });
    village.node.addEventListener("change", () => { choice.village = village.node.value; choice.grid = ""; choice.page = 0; draw(); });
    grid.node.addEventListener("change", () => { choice.grid = grid.node.value; choice.page = 0; draw(); });
    const prev = el("button", { type: "button", id: "wall-prev", disabled: choice.page === 0 }, t("wall.prev"));
    const next = el("button", { type: "button", id: "wall-next", disabled: choice.page >= pages - 1 }, t("wall.next"));
    prev.addEventListener("click", () => { choice.page -= 1; draw(); });
    next.addEventListener("click", () => { choice.page += 1; draw(); });
    bar.replaceChildren(layout.field, village.field, grid.field, prev,
      el("span", { class: "muted" }, t("wall.page", { page: choice.page + 1, pages })), next);

    stopTiles();
    const shown = list.slice(choice.page * choice.layout, (choice.page + 1) * choice.layout);
    tiles = shown.map((c) => livePlayer(c));
    wall.dataset.layout = String(choice.layout);
    wall.replaceChildren(...tiles);
    empty.hidden = shown.length > 0;
  }

  loadCameras(true).then((list) => {
    cameras = list;
    draw();
  });
  return stopTiles;
}
