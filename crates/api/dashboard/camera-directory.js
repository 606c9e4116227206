// The cameras this user may see, for names and filter choices. Loaded once
// and refreshed at most every minute (the cameras view polls on its own).

import { api } from "./api.js";

const MAX_AGE_MS = 60_000;
let cameras = [];
let loadedAt = 0;
let pending = null;

/** The camera list (cached); never throws: an empty list on failure. */
export async function loadCameras(force = false) {
  if (!force && Date.now() - loadedAt < MAX_AGE_MS) return cameras;
  if (!pending) {
    pending = api
      .get("/cameras")
      .then((body) => {
        cameras = Array.isArray(body && body.items) ? body.items : [];
        loadedAt = Date.now();
        return cameras;
      })
      .catch(() => cameras)
      .finally(() => {
        pending = null;
      });
  }
  return pending;
}

/** Remembers a list fetched elsewhere (the cameras view). */
export function rememberCameras(items) {
  cameras = items;
  loadedAt = Date.now();
}

/** The camera's name, or its id when unknown. */
export function cameraName(id) {
  const cam = cameras.find((c) => c.id === id);
  return cam ? cam.name : id;
}

/** The villages of the known cameras, sorted. */
export function villages() {
  const set = new Set(cameras.map((c) => c.village).filter(Boolean));
  return [...set].sort((a, b) => a.localeCompare(b, "zh-CN"));
}

export function forget() {
  cameras = [];
  loadedAt = 0;
}
