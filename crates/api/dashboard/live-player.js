// 实时画面: one camera's live video. The camera's own H.264/H.265 comes as
// fragmented MP4 from GET /api/v1/cameras/{id}/live.mp4 and plays through
// Media Source Extensions; where the browser cannot play the codec (most
// cannot play H.265), the tile shows the camera's decoded frame twice a
// second instead. The stream starts when the tile is made and stops with
// tile.stop(); a stream that ends (camera restarted, codec changed, server
// busy) is opened again after a pause.
//
// The tile says what it does in data-mode: connecting, video, frames
// (the JPEG fallback) or error; data-codec holds the stream's type.

import { el } from "./dom.js";
import { t } from "./i18n.js";

const RETRY_MS = 3000;
const FRAME_EVERY_MS = 500;
/** Further than this behind the newest frame, playback jumps ahead. */
const MAX_BEHIND_S = 1.0;
/** Where it jumps to: this far behind the newest frame. */
const JUMP_TO_S = 0.3;
/** Media kept behind the playback position. */
const KEEP_S = 10;

function u32(buf, at) {
  return ((buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]) >>> 0;
}

function boxType(buf, at) {
  return String.fromCharCode(buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]);
}

/**
 * Splits a byte stream into appendable pieces: everything up to and
 * including a `moov` (init) or an `mdat` (one fragment).
 */
class BoxSplitter {
  constructor() {
    this.buf = new Uint8Array(0);
    this.start = 0; // where the current piece began
  }

  push(chunk) {
    const joined = new Uint8Array(this.buf.length + chunk.length);
    joined.set(this.buf);
    joined.set(chunk, this.buf.length);
    this.buf = joined;
    const out = [];
    let at = this.scan || 0;
    while (at + 8 <= this.buf.length) {
      const size = u32(this.buf, at);
      if (size < 8) throw new Error("bad box size");
      if (at + size > this.buf.length) break;
      const type = boxType(this.buf, at);
      at += size;
      if (type === "moov" || type === "mdat") {
        out.push(this.buf.slice(this.start, at));
        this.start = at;
      }
    }
    // Keep only the unfinished piece.
    this.buf = this.buf.slice(this.start);
    this.scan = at - this.start;
    this.start = 0;
    return out;
  }
}

/** A live tile for `camera` ({id, name}); `tile.stop()` ends it. */
export function livePlayer(camera) {
  const url = `/api/v1/cameras/${encodeURIComponent(camera.id)}/live.mp4`;
  const video = el("video", { muted: true, autoplay: true, playsinline: true, class: "live-video" });
  video.muted = true;
  const img = el("img", { alt: camera.name || camera.id, class: "live-frame", hidden: true });
  const note = el("span", { class: "live-note" }, t("player.connecting"));
  const tile = el("figure", { class: "live-tile", dataset: { cameraId: camera.id, mode: "connecting" } },
    video, img,
    el("figcaption", {}, el("strong", {}, camera.name || camera.id), " ", note),
  );

  let stopped = false;
  let abort = null;
  let retry = null;
  let frames = null;
  let objectUrl = null;

  function setMode(mode, text) {
    tile.dataset.mode = mode;
    note.textContent = text;
  }

  function later() {
    if (stopped) return;
    clearTimeout(retry);
    retry = setTimeout(start, RETRY_MS);
  }

  function showFrames() {
    video.hidden = true;
    img.hidden = false;
    setMode("frames", t("player.frames"));
    const load = () => {
      const next = new Image();
      next.addEventListener("load", () => { img.src = next.src; });
      next.src = `/api/v1/cameras/${encodeURIComponent(camera.id)}/frame.jpg?t=${Date.now()}`;
    };
    load();
    frames = setInterval(load, FRAME_EVERY_MS);
  }

  async function start() {
    if (stopped) return;
    abort = new AbortController();
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", signal: abort.signal });
    } catch {
      if (!stopped) { setMode("error", t("player.lost")); later(); }
      return;
    }
    if (!response.ok) {
      let message = response.statusText;
      try { message = (await response.json()).error.message; } catch { /* not JSON */ }
      setMode("error", message);
      later();
      return;
    }
    const type = response.headers.get("Content-Type") || "";
    tile.dataset.codec = type;
    if (!window.MediaSource || !MediaSource.isTypeSupported(type)) {
      abort.abort();
      showFrames();
      return;
    }
    try {
      await play(response, type);
    } catch {
      // Ended, cut, or the browser refused a piece: open it again.
    }
    if (!stopped) { setMode("connecting", t("player.reconnecting")); later(); }
  }

  async function play(response, type) {
    const source = new MediaSource();
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = URL.createObjectURL(source);
    video.src = objectUrl;
    await new Promise((resolve) => source.addEventListener("sourceopen", resolve, { once: true }));
    const buffer = source.addSourceBuffer(type);
    const queue = [];
    const appendNext = () => {
      if (buffer.updating || !queue.length || source.readyState !== "open") return;
      buffer.appendBuffer(queue.shift());
    };
    buffer.addEventListener("updateend", () => {
      // Stopped, or replaced by a new stream: the buffer is gone.
      if (stopped || source.readyState !== "open") return;
      const ranges = buffer.buffered;
      if (ranges.length) {
        const end = ranges.end(ranges.length - 1);
        const first = ranges.start(0);
        if (video.currentTime < first || end - video.currentTime > MAX_BEHIND_S) {
          video.currentTime = Math.max(first, end - JUMP_TO_S);
        }
        if (!buffer.updating && video.currentTime - first > KEEP_S * 2) {
          buffer.remove(first, video.currentTime - KEEP_S);
          return;
        }
        if (tile.dataset.mode !== "video") {
          setMode("video", t("player.live"));
          video.play().catch(() => {});
        }
      }
      appendNext();
    });
    const reader = response.body.getReader();
    const splitter = new BoxSplitter();
    for (;;) {
      const { done, value } = await reader.read();
      if (done || stopped) return;
      for (const piece of splitter.push(value)) queue.push(piece);
      appendNext();
    }
  }

  tile.stop = () => {
    stopped = true;
    clearTimeout(retry);
    clearInterval(frames);
    if (abort) abort.abort();
    video.removeAttribute("src");
    video.load();
    if (objectUrl) URL.revokeObjectURL(objectUrl);
  };
  /** How far playback is behind the newest frame received, seconds. */
  tile.behind = () => {
    const r = video.buffered;
    return r.length ? r.end(r.length - 1) - video.currentTime : null;
  };
  start();
  return tile;
}

/**
 * A button that opens `camera`'s live tile in its place, and a close
 * button that puts it back; `box.stop()` ends any stream.
 */
export function liveButton(camera) {
  const box = el("div", { class: "live-box" });
  let tile = null;
  const open = el("button", { type: "button", class: "live-open" }, t("player.open"));
  const close = el("button", { type: "button", class: "live-close" }, t("player.close"));
  const closed = () => box.replaceChildren(open);
  open.addEventListener("click", () => {
    tile = livePlayer(camera);
    box.replaceChildren(tile, close);
  });
  close.addEventListener("click", () => {
    if (tile) tile.stop();
    tile = null;
    closed();
  });
  box.stop = () => {
    if (tile) tile.stop();
  };
  closed();
  return box;
}
