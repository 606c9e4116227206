#!/usr/bin/python3
"""Motion onset to first detection, through the real `xueliang serve`.

Serves one camera with a clip that is still for 30.5 s (the D1 bench clip's
first frame held, with light sensor noise) and then plays the walkway footage
from its second frame on (pedestrians start moving), encoded as a camera
does (25 fps, 2 s GOP, no B-frames, no scene-cut key frames, so the onset
falls 13 frames after a key frame). The clip loops; each loop is one onset.

While it runs it polls `GET /api/v1/cameras/cam001/health` every ~10 ms and
reports, per onset:
  - arrival: the first poll where `frames_received` counts the onset frame;
  - wake: the first poll where `idle` is false again;
  - first detection: the first poll where `frames_detected` grew after the
    arrival.
Onset to first detection = first detection - arrival (poll resolution about
10-20 ms: an upper bound). The onset's stream time is known from the clip.

    /usr/bin/python3 scripts/onset-latency.py [--xueliang target/release/xueliang] [--onsets 2]

Needs what scripts/setup.sh installs and the release binary.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.request

from xlrun import REPO, config_head, free_port, serve, stop

FPS = 25
STILL = 763  # frames: 30.52 s; the onset frame is number 763 (from 0), 13 after a key frame
BUSY = REPO / "tests/fixtures/vtest-d1-25fps.mp4"


def make_clip(path):
    if path.is_file():
        return
    vf = f"loop=loop={STILL - 1}:size=1:start=0,setpts=N/({FPS}*TB),noise=alls=3:allf=t"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(BUSY), "-vf", vf, "-r", str(FPS),
         "-frames:v", str(STILL + 794), "-an", "-pix_fmt", "yuv420p", "-c:v", "libx264",
         "-threads:v", "1", "-preset", "medium", "-profile:v", "high", "-crf", "23",
         "-maxrate", "1200k", "-bufsize", "2000k",
         "-x264-params", "keyint=50:min-keyint=50:scenecut=0:bframes=0:open-gop=0",
         "-movflags", "+faststart", "-f", "mp4", str(path)],
        check=True,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--xueliang", default=str(REPO / "target/release/xueliang"))
    ap.add_argument("--onsets", type=int, default=2)
    ap.add_argument("--quiet-cameras", type=int, default=0,
                    help="this many more cameras, each a still scene served by xueliang-rtsp-peer "
                         "(target/release; the bench's idle clip, made by `xueliang-bench --scene "
                         "idle`), GOPs staggered: the onset measured on a loaded server")
    args = ap.parse_args()
    quiet_clip = REPO / ".local/cache/bench/vtest-d1-25fps-still.mp4"
    if args.quiet_cameras and not quiet_clip.is_file():
        sys.exit(f"{quiet_clip} is missing: run `target/release/xueliang-bench --scene idle "
                 "--cameras 1 --seconds 5 --skip-limits` once to make it")
    clip = REPO / ".local/cache/bench/onset-d1-25fps.mp4"
    clip.parent.mkdir(parents=True, exist_ok=True)
    make_clip(clip)
    clip_frames = int(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-count_packets", "-show_entries",
         "stream=nb_read_packets", "-of", "csv=p=0", str(clip)],
        check=True, capture_output=True, text=True).stdout.strip())
    work = pathlib.Path(tempfile.mkdtemp(prefix="xueliang-onset-"))
    procs = []
    try:
        server = subprocess.Popen(
            ["/usr/bin/python3", str(REPO / "tests/rtsp-server/serve.py"), "--port", "0", "--loop",
             "--mount", f"cam001={clip}"],
            stdout=subprocess.PIPE, stderr=open(work / "rtsp.log", "w"), text=True)
        procs.append(server)
        rtsp = int(server.stdout.readline().strip().removeprefix("READY port="))
        quiet = ""
        if args.quiet_cameras:
            peer = subprocess.Popen(
                [str(REPO / "target/release/xueliang-rtsp-peer"), "--clip", str(quiet_clip),
                 "--port", "0", "--stagger", "2"],
                stdout=subprocess.PIPE, stderr=open(work / "rtsp-peer.log", "w"), text=True)
            procs.append(peer)
            peer_port = int(peer.stdout.readline().strip().removeprefix("READY port="))
            quiet = "".join(
                f'[[cameras]]\nid = "quiet{i:03}"\nname = "quiet {i}"\n'
                f'url = "rtsp://127.0.0.1:{peer_port}/quiet{i:03}"\n'
                for i in range(args.quiet_cameras))
        api = free_port()
        config = work / "config.toml"
        config.write_text(config_head(work, api, free_port()) + f"""
[detection]
fps = 5
labels = ["person", "car"]
cooldown_s = 1
lost_after_s = 1
[[cameras]]
id = "cam001"
name = "onset"
url = "rtsp://127.0.0.1:{rtsp}/cam001"
{quiet}""")
        xl, token = serve(args.xueliang, config, work, "onset")
        procs.append(xl)

        def health():
            req = urllib.request.Request(
                f"http://127.0.0.1:{api}/api/v1/cameras/cam001/health",
                headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.load(r)

        polls = []
        deadline = time.monotonic() + 60 + args.onsets * clip_frames / FPS
        while time.monotonic() < deadline:
            try:
                h = health()
                polls.append((time.monotonic(), h["frames_received"], h["idle"], h["frames_detected"]))
            except OSError:
                pass
            time.sleep(0.01)
        results = []
        for k in range(args.onsets):
            onset_count = STILL + 1 + k * clip_frames
            arrival = next((p for p in polls if p[1] >= onset_count), None)
            if arrival is None:
                break
            before = [p for p in polls if p[0] < arrival[0]]
            was_idle = any(p[2] for p in before[-50:])
            wake = next((p for p in polls if p[0] >= arrival[0] and not p[2]), None)
            det = next((p for p in polls if p[0] >= arrival[0] and p[3] > before[-1][3]), None)
            results.append({
                "onset": k + 1,
                "idle_before": was_idle,
                "wake_ms": round((wake[0] - arrival[0]) * 1e3) if wake else None,
                "first_detection_ms": round((det[0] - arrival[0]) * 1e3) if det else None,
            })
        gaps = [b[0] - a[0] for a, b in zip(polls, polls[1:])]
        print(json.dumps({"quiet_cameras": args.quiet_cameras, "polls": len(polls), "poll_ms_mean": round(1e3 * sum(gaps) / max(len(gaps), 1), 1),
                          "load": os.getloadavg(), "onsets": results}, indent=1))
    finally:
        stop(procs)


if __name__ == "__main__":
    sys.exit(main())
