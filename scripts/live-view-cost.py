#!/usr/bin/python3
"""What live viewers and event clips cost, through the real `xueliang serve`.

Serves N cameras (the D1 bench clip: 704x576, 25 fps, ~1 Mb/s, 2 s GOP) from
xueliang-rtsp-peer, detecting at 1/s, clips on (the defaults), then measures
xueliang's CPU (utime+stime from /proc) and RSS over a window:
  1. with no viewer;
  2. with V viewers spread over the cameras (curl reading live.mp4 into
     /dev/null; their own CPU is not counted).
Per viewer = (2 - 1) / V. The rings' bytes per camera come from the
metrics (xueliang_media_ring_bytes).

    /usr/bin/python3 scripts/live-view-cost.py [--cameras 4] [--viewers 32] [--seconds 30]

Needs what scripts/setup.sh installs and the release binaries (xueliang,
xueliang-rtsp-peer).
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

CLIP = REPO / "tests/fixtures/vtest-d1-25fps.mp4"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def window(pid, seconds):
    """xueliang's share of one core over `seconds`, and its RSS at the end."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0), rss_mb(pid)


def metric(port, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--xueliang", default=str(REPO / "target/release/xueliang"))
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--viewers", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="xueliang-live-cost-"))
    procs = []
    try:
        peer = subprocess.Popen(
            [str(REPO / "target/release/xueliang-rtsp-peer"), "--clip", str(CLIP), "--port", "0",
             "--stagger", "2"],
            stdout=subprocess.PIPE, stderr=open(work / "rtsp-peer.log", "w"), text=True)
        procs.append(peer)
        rtsp = int(peer.stdout.readline().strip().removeprefix("READY port="))
        api, metrics = free_port(), free_port()
        cameras = "".join(
            f'[[cameras]]\nid = "cam{i:03}"\nname = "cam {i}"\n'
            f'url = "rtsp://127.0.0.1:{rtsp}/cam{i:03}"\n' for i in range(args.cameras))
        config = work / "config.toml"
        config.write_text(config_head(work, api, metrics) + f"""
[detection]
fps = 1
labels = ["person", "car"]
[live]
max_viewers_per_camera = {args.viewers}
max_viewers = {args.viewers}
{cameras}""")
        xl, token = serve(args.xueliang, config, work, "cost")
        procs.append(xl)
        time.sleep(20)
        idle_cpu, idle_rss = window(xl.pid, args.seconds)
        ring = metric(metrics, "xueliang_media_ring_bytes")
        for v in range(args.viewers):
            procs.append(subprocess.Popen(
                ["curl", "-sN", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}",
                 f"http://127.0.0.1:{api}/api/v1/cameras/cam{v % args.cameras:03}/live.mp4"]))
        time.sleep(5)
        watched_cpu, watched_rss = window(xl.pid, args.seconds)
        viewers = metric(metrics, "xueliang_live_viewers")
        sent = metric(metrics, "xueliang_live_sent_bytes_total")
        print(json.dumps({
            "cameras": args.cameras,
            "viewers": viewers,
            "cpu_pct_no_viewer": round(idle_cpu, 1),
            "cpu_pct_with_viewers": round(watched_cpu, 1),
            "cpu_pct_per_viewer": round((watched_cpu - idle_cpu) / max(viewers or 1, 1), 3),
            "rss_mb_no_viewer": round(idle_rss),
            "rss_mb_with_viewers": round(watched_rss),
            "ring_mb_per_camera": round((ring or 0) / args.cameras / 2**20, 2),
            "sent_mb": round((sent or 0) / 2**20, 1),
            "load": os.getloadavg(),
        }, indent=1))
    finally:
        stop(procs)


if __name__ == "__main__":
    sys.exit(main())
