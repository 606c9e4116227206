// Times are shown in Beijing time (the centre's clock), whatever the
// browser's own time zone; the API speaks RFC 3339 UTC.

import { t } from "./i18n.js";

const BEIJING = "Asia/Shanghai";
const parts = new Intl.DateTimeFormat("en-GB", {
  timeZone: BEIJING,
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});

function beijingParts(date) {
  const p = {};
  for (const { type, value } of parts.formatToParts(date)) p[type] = value;
  return p;
}

/** "2026-11-30 06:00:05" in Beijing time, or "—" for nothing. */
export function beijingTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "—";
  const p = beijingParts(date);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** A Date as the value of an <input type="datetime-local"> in Beijing time. */
export function toBeijingInput(date) {
  const p = beijingParts(date);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

/** The value of a datetime-local input, read as Beijing time, as RFC 3339 UTC. */
export function fromBeijingInput(value) {
  if (!value) return "";
  const date = new Date(`${value.length === 16 ? value + ":00" : value}+08:00`);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/** 0.873 -> "87%" */
export function percent(x, digits = 0) {
  return Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : "—";
}

/** Seconds as "3 分 20 秒" / "3 min 20 s" (the largest two units). */
export function duration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.floor(seconds);
  const units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  const out = [];
  let rest = s;
  for (const [name, size] of units) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0 || (out.length === 0 && name === "second")) out.push(t(`unit.${name}`, { n }));
    if (out.length === 2) break;
  }
  return out.join(" ");
}
