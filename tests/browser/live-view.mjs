// Live video in real headless Chromium, as an operator: the video wall
// (视频墙) plays the H.264 camera through Media Source Extensions (time
// advances, the picture has a size, playback stays close behind the newest
// frame) and shows the H.265 camera as frames where this Chromium cannot
// play H.265 (or plays it where it can), without an error; the chosen layout
// survives a reload; the cameras page opens a live tile on demand; an
// event's clip plays on its page (XUELIANG_CLIP_EVENT, the event's id). Run by
// tests/e2e/live_view.rs; by hand:
//
//   XUELIANG_URL=http://127.0.0.1:8080 XUELIANG_USER=... XUELIANG_PASSWORD=... \
//     node tests/browser/live-view.mjs
//
// The cameras must be "walkway" (H.264) and "hevc" (H.265).

import { check, logIn, required, runInBrowser, step } from "./harness.mjs";

const base = required("XUELIANG_URL").replace(/\/$/, "");
const user = required("XUELIANG_USER");
const password = required("XUELIANG_PASSWORD");
const clipEvent = required("XUELIANG_CLIP_EVENT");

const video = (tile) => (v) => ({
  time: v.currentTime,
  width: v.videoWidth,
  height: v.videoHeight,
  behind: v.buffered.length ? v.buffered.end(v.buffered.length - 1) - v.currentTime : null,
  error: v.error && v.error.message,
});

/** Waits for the tile to play, then checks that its time advances. */
async function plays(page, tile, what) {
  await page.waitForSelector(`${tile}[data-mode="video"]`, { timeout: 20_000 });
  const a = await page.$eval(`${tile} video`, video());
  await page.waitForTimeout(2000);
  const b = await page.$eval(`${tile} video`, video());
  check(!b.error, `${what}: the video element failed: ${b.error}`);
  check(b.width === 768 && b.height === 576, `${what}: picture ${b.width}x${b.height}`);
  check(b.time - a.time > 1.0, `${what}: time went from ${a.time} to ${b.time} in 2 s`);
  check(b.behind !== null && b.behind <= 1.5, `${what}: ${b.behind} s behind the newest frame`);
  console.log(`${what}: plays, ${b.width}x${b.height}, ${b.behind.toFixed(2)} s behind the newest frame`);
}

async function run(page) {
  step("log in and open the video wall with four tiles");
  await logIn(page, base, user, password);
  await page.click('#nav a[data-route="wall"]');
  await page.waitForSelector("#wall-layout");
  await page.selectOption("#wall-layout", "4");
  const h264 = '#video-wall .live-tile[data-camera-id="walkway"]';
  const h265 = '#video-wall .live-tile[data-camera-id="hevc"]';
  await page.waitForSelector(h264);
  await page.waitForSelector(h265);

  step("the H.264 camera plays live");
  await plays(page, h264, "H.264 on the wall");

  step("the H.265 camera plays or falls back to frames, without an error");
  const hevcPlayable = await page.evaluate(() => MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L90.90"'));
  if (hevcPlayable) {
    await plays(page, h265, "H.265 on the wall");
  } else {
    await page.waitForSelector(`${h265}[data-mode="frames"]`, { timeout: 20_000 });
    await page.waitForFunction((sel) => {
      const img = document.querySelector(`${sel} img`);
      return img && img.naturalWidth === 768;
    }, h265, { timeout: 10_000 });
    const codec = await page.getAttribute(h265, "data-codec");
    check(codec.includes("hvc1"), `the H.265 stream's type: ${codec}`);
    const note = await page.textContent(`${h265} .live-note`);
    check(note.includes("不支持"), `the fallback does not say why: ${note}`);
    console.log(`H.265 on the wall: this Chromium cannot play ${codec}; frames shown instead`);
  }

  step("the layout is remembered across a reload");
  await page.selectOption("#wall-layout", "9");
  await page.waitForSelector('#video-wall[data-layout="9"]');
  await page.reload();
  await page.waitForSelector("#wall-layout");
  const layout = await page.$eval("#wall-layout", (s) => s.value);
  check(layout === "9", `the layout after a reload: ${layout}`);
  await plays(page, h264, "H.264 on the wall after a reload");

  step("the cameras page opens a live tile on demand");
  await page.click('#nav a[data-route="cameras"]');
  const card = '.camera-card[data-camera-id="walkway"]';
  await page.click(`${card} .live-open`);
  await plays(page, `${card} .live-tile`, "H.264 on the cameras page");
  await page.click(`${card} .live-close`);
  await page.waitForSelector(`${card} .live-open`);

  step(`event ${clipEvent}'s clip plays on its page`);
  await page.goto(`${base}/#/events/${clipEvent}`);
  await page.waitForSelector("#event-clip");
  await page.$eval("#event-clip", (v) => { v.muted = true; return v.play(); });
  await page.waitForFunction(() => {
    const v = document.querySelector("#event-clip");
    return v && v.currentTime > 1 && v.videoWidth === 768;
  }, null, { timeout: 15_000 });
  const clip = await page.$eval("#event-clip", (v) => ({ error: v.error && v.error.message, duration: v.duration }));
  check(!clip.error && clip.duration > 2, `the clip: ${JSON.stringify(clip)}`);
  console.log(`event ${clipEvent}: its ${clip.duration.toFixed(1)} s clip plays`);
}

await runInBrowser("live video on the wall and the cameras page", run);
