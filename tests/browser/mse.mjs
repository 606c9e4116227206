// Plays fragmented MP4 through Media Source Extensions in headless Chromium,
// as the dashboard's live view will: the init segment and the media segments
// in XUELIANG_MSE_DIR (init.mp4, 0001.m4s, 0002.m4s, ...; mime.txt holds the
// MIME type with its codec string) are appended to one SourceBuffer in
// order, the video plays muted, and the script checks that its time
// advances and its picture has XUELIANG_MSE_WIDTH x XUELIANG_MSE_HEIGHT.
// Also prints, for the record, whether this Chromium plays H.264 and H.265
// through MSE at all. Exit status 0 when it played.

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { check, required, runInBrowser, step } from "./harness.mjs";

const dir = required("XUELIANG_MSE_DIR");
const width = Number(required("XUELIANG_MSE_WIDTH"));
const height = Number(required("XUELIANG_MSE_HEIGHT"));
const mime = readFileSync(join(dir, "mime.txt"), "utf8").trim();
const files = ["init.mp4", ...readdirSync(dir).filter((f) => f.endsWith(".m4s")).sort()];
const segments = files.map((f) => readFileSync(join(dir, f)).toString("base64"));

await runInBrowser("mse", async (page) => {
  step("open an empty page");
  await page.goto("about:blank");
  const support = await page.evaluate(() => ({
    h264: MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001e"'),
    h265: MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L90.90"'),
  }));
  console.log(`MSE support in this Chromium: ${JSON.stringify(support)}`);

  step(`append ${segments.length} segments (${mime}) and play`);
  const result = await page.evaluate(
    async ({ mime, segments }) => {
      if (!MediaSource.isTypeSupported(mime)) return { unsupported: mime };
      const video = document.createElement("video");
      video.muted = true;
      document.body.append(video);
      const source = new MediaSource();
      video.src = URL.createObjectURL(source);
      await new Promise((ok) => source.addEventListener("sourceopen", ok, { once: true }));
      const buffer = source.addSourceBuffer(mime);
      const errors = [];
      video.addEventListener("error", () => errors.push(`video: ${video.error?.message}`));
      for (const b64 of segments) {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        buffer.appendBuffer(bytes);
        await new Promise((ok) => buffer.addEventListener("updateend", ok, { once: true }));
      }
      source.endOfStream();
      await video.play();
      const start = performance.now();
      while (video.currentTime < 2 && performance.now() - start < 10_000 && !video.ended) {
        await new Promise((ok) => setTimeout(ok, 100));
      }
      const ranges = buffer.buffered;
      return {
        currentTime: video.currentTime,
        width: video.videoWidth,
        height: video.videoHeight,
        buffered: ranges.length ? [ranges.start(0), ranges.end(ranges.length - 1)] : [],
        rangeCount: ranges.length,
        errors,
      };
    },
    { mime, segments },
  );
  console.log(JSON.stringify(result));
  check(!result.unsupported, `MSE does not take ${result.unsupported}`);
  check(result.errors.length === 0, `errors: ${result.errors}`);
  check(result.currentTime >= 2, `the time did not advance past 2 s: ${result.currentTime}`);
  check(
    result.width === width && result.height === height,
    `picture ${result.width}x${result.height}, want ${width}x${height}`,
  );
  check(result.rangeCount === 1, `the buffered media has gaps: ${result.rangeCount} ranges`);
});
