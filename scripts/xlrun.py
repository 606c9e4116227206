"""What the measurement scripts share: free ports, the config's head (this
checkout's model and onnxruntime, a data directory of the run's own), a
server started with a user and an API token, and stopping what was started.
Imported by onset-latency.py and live-view-cost.py (run them from anywhere:
Python puts their folder first on the import path).
"""

import pathlib
import socket
import subprocess

REPO = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_head(work, api, metrics):
    """`[server]`, `[storage]` and `[detector]` for a run in `work`."""
    return f"""
[server]
listen = "127.0.0.1:{api}"
metrics_listen = "127.0.0.1:{metrics}"
[storage]
data_dir = "{work / 'data'}"
[detector]
model = "{REPO / 'models/ssd_mobilenet_v2_coco.toml'}"
onnxruntime = "{REPO / '.local/onnxruntime/libonnxruntime.so.1.32.0'}"
"""


def serve(xueliang, config, work, username):
    """Adds a viewer `username`, makes its API token, starts `xueliang serve`
    (log in work/xueliang.log): (process, token)."""
    user = [xueliang, "user"]
    subprocess.run(user + ["add", "--username", username, "--role", "viewer", "--password-stdin",
                           "--config", str(config)], input="not-used-password\n", text=True,
                   check=True, capture_output=True)
    token = subprocess.run(user + ["token", "--username", username, "--name", username,
                                   "--config", str(config)],
                           check=True, capture_output=True, text=True).stdout.strip()
    proc = subprocess.Popen([xueliang, "serve", "--config", str(config)],
                            stdout=open(work / "xueliang.log", "w"), stderr=subprocess.STDOUT)
    return proc, token


def stop(procs):
    """SIGTERM, newest first; SIGKILL what does not stop in 10 s."""
    for p in reversed(procs):
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
