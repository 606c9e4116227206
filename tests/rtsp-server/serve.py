#!/usr/bin/python3
"""A real RTSP server for Xueliang's tests and demo, on GStreamer's RtspServer.

Serves MP4 files (H.264 or H.265) as an IP camera does: RTP over RTSP (TCP
interleaved or UDP), paced in real time, without re-encoding, SPS/PPS (and VPS)
in-band before every key frame. Each client gets its own pipeline, so each starts
at the beginning of the file.

    /usr/bin/python3 tests/rtsp-server/serve.py [--bind 127.0.0.1] [--port 8554|0] \
        --mount NAME=PATH [--mount NAME=PATH ...] [--loop] [--auth USER:PASSWORD] \
        [--silent NAME[=PATH] ...]

Once listening it prints one line "READY port=<port>" to stdout; everything else
goes to stderr. SIGTERM or SIGINT stops it (exit status 0).

Run it with Debian's /usr/bin/python3, which has the GStreamer bindings (python3-gi,
gir1.2-gst-rtsp-server-1.0); see README.md next to this file.
"""

import argparse
import ctypes
import itertools
import os
import re
import signal
import sys
import threading

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstApp", "1.0")
    gi.require_version("GstPbutils", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstApp, GstPbutils, GstRtsp, GstRtspServer  # noqa: F401
except (ImportError, ValueError) as e:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"[rtsp-server] error: GStreamer Python bindings missing ({e}); run with /usr/bin/python3 "
        "after: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
        "gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad\n"
    )
    sys.exit(2)


def log(msg):
    sys.stderr.write(f"[rtsp-server] {msg}\n")
    sys.stderr.flush()


# caps name -> (short name, parser, payloader, packetised stream-format)
CODECS = {
    "video/x-h264": ("h264", "h264parse", "rtph264pay", "avc"),
    "video/x-h265": ("h265", "h265parse", "rtph265pay", "hvc1"),
}
COPY_ALL = (Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.TIMESTAMPS
            | Gst.BufferCopyFlags.META | Gst.BufferCopyFlags.MEMORY)
MOUNT_NAME = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$")
_ids = itertools.count(1)


def launch_quote(s):
    """A string as one quoted value in gst-launch syntax."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def probe_file(path):
    """(caps name, duration in ns) of the first video stream of a media file."""
    disc = GstPbutils.Discoverer.new(10 * Gst.SECOND)
    try:
        info = disc.discover_uri(Gst.filename_to_uri(os.path.abspath(path)))
    except GLib.Error as e:
        raise SystemExit(f"[rtsp-server] error: cannot read {path}: {e.message}")
    videos = info.get_video_streams()
    if not videos:
        raise SystemExit(f"[rtsp-server] error: {path} has no video stream")
    name = videos[0].get_caps().get_structure(0).get_name()
    if name not in CODECS:
        raise SystemExit(f"[rtsp-server] error: {path}: video is {name}; only H.264 and H.265 are served")
    return name, info.get_duration()


def enable_basic_and_digest(auth):
    """auth.set_supported_methods(BASIC | DIGEST). GstRTSPAuthMethod is an enum in
    GObject introspection, so PyGObject refuses the bitwise OR (3); call the C
    function directly (PyGObject's hash() of a GObject is its address)."""
    try:
        lib = ctypes.CDLL("libgstrtspserver-1.0.so.0")
        lib.gst_rtsp_auth_set_supported_methods.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.gst_rtsp_auth_set_supported_methods.restype = None
        both = int(GstRtsp.RTSPAuthMethod.BASIC) | int(GstRtsp.RTSPAuthMethod.DIGEST)
        lib.gst_rtsp_auth_set_supported_methods(hash(auth) & (2**64 - 1), both)
        return int(auth.get_supported_methods()) == both
    except (OSError, AttributeError, ValueError) as e:
        log(f"ctypes: {e}")
        return False


class MountFactory(GstRtspServer.RTSPMediaFactory):
    """One media pipeline per client: filesrc ! qtdemux ! parse ! pay, not re-encoded."""

    def __init__(self, mount, path, caps_name):
        super().__init__()
        self.mount = mount
        self.path = path
        self.codec, self.parse, self.pay, self.packetised = CODECS[caps_name]
        self.set_shared(False)

    def source_description(self):
        return (f"filesrc location={launch_quote(self.path)} ! qtdemux ! {self.parse} "
                f"! {self.pay} name=pay0 pt=96 config-interval=-1")

    def do_create_element(self, url):
        return Gst.parse_launch(f"( {self.source_description()} )")


class LoopFeeder:
    """Reads a file forever (seeking back at EOS) and feeds an appsrc with the
    access units, their timestamps shifted by the clip length at every pass, so
    that the client sees one endless stream with increasing timestamps."""

    def __init__(self, factory):
        self.factory = factory
        self.offset = 0  # ns added to the file's timestamps in this pass
        self.end = 0  # end (pts + duration) of the latest access unit of this pass
        self.stopped = False
        self.lock = threading.Lock()
        self.reader = Gst.parse_launch(
            f"filesrc location={launch_quote(factory.path)} ! qtdemux ! {factory.parse} "
            f"! video/x-{factory.codec},stream-format={factory.packetised},alignment=au "
            "! appsink name=sink sync=false max-buffers=32 enable-last-sample=false"
        )
        self.sink = self.reader.get_by_name("sink")
        self.reader.set_state(Gst.State.PAUSED)
        ret, _, _ = self.reader.get_state(10 * Gst.SECOND)
        if ret != Gst.StateChangeReturn.SUCCESS:
            self.reader.set_state(Gst.State.NULL)
            raise RuntimeError(f"cannot preroll {factory.path}")
        self.caps = self.sink.pull_preroll().get_caps()
        self.reader.set_state(Gst.State.PLAYING)

    def on_need_data(self, appsrc, _length):
        with self.lock:
            if self.stopped:
                return
            for _ in range(3):  # at most one wrap per call; a broken file must not spin
                sample = self.sink.try_pull_sample(10 * Gst.SECOND)
                if sample is not None:
                    break
                if not self.sink.is_eos():
                    log(f"/{self.factory.mount}: reading {self.factory.path} stalled")
                    appsrc.end_of_stream()
                    return
                # end of the file: start it again, later in time by the clip length
                self.offset += self.end
                self.end = 0
                self.reader.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
            else:
                log(f"/{self.factory.mount}: cannot loop {self.factory.path}")
                appsrc.end_of_stream()
                return
            buf = sample.get_buffer()
            pts, dts, dur = buf.pts, buf.dts, buf.duration
            # a new buffer sharing the memory (Python's Buffer.copy() gives the same buffer)
            out = buf.copy_region(COPY_ALL, 0, buf.get_size())
            if pts != Gst.CLOCK_TIME_NONE:
                out.pts = pts + self.offset
                self.end = max(self.end, pts + (dur if dur != Gst.CLOCK_TIME_NONE else 0))
            if dts != Gst.CLOCK_TIME_NONE:
                out.dts = dts + self.offset
            appsrc.emit("push-buffer", out)

    def stop(self, *_args):
        with self.lock:
            if not self.stopped:
                self.stopped = True
                self.reader.set_state(Gst.State.NULL)


class LoopMountFactory(MountFactory):
    """As MountFactory, but the file loops forever: appsrc (fed by a LoopFeeder) ! pay."""

    def __init__(self, mount, path, caps_name):
        super().__init__(mount, path, caps_name)
        self.feeders = {}
        self.connect("media-configure", self._on_media_configure)

    def do_create_element(self, url):
        feeder = LoopFeeder(self)
        name = f"loop{next(_ids)}"
        el = Gst.parse_launch(
            f"( name={name} appsrc name=src format=time is-live=false stream-type=stream "
            f"! {self.pay} name=pay0 pt=96 config-interval=-1 )"
        )
        src = el.get_by_name("src")
        src.set_property("caps", feeder.caps)
        src.connect("need-data", feeder.on_need_data)
        self.feeders[el.get_name()] = feeder
        return el

    def _on_media_configure(self, _factory, media):
        feeder = self.feeders.pop(media.get_element().get_name(), None)
        if feeder is not None:
            media.connect("unprepared", feeder.stop)


class SilentFactory(MountFactory):
    """Answers DESCRIBE/SETUP/PLAY with a complete H.264 SDP, then sends no media.

    The pipeline is a normal one, but a probe on the payloader's input turns the
    first access unit into a GAP event (which completes the server's preroll, like a
    buffer would) and drops every buffer and the EOS; the caps, with codec_data,
    still reach the payloader, so the SDP has sprop-parameter-sets."""

    def __init__(self, mount, path):
        super().__init__(mount, path or "", "video/x-h264")
        self.connect("media-configure", self._on_media_configure)

    def source_description(self):
        if self.path:
            return super().source_description()
        # no H.264 file given: a one-frame encode, only for its SPS/PPS
        return ("videotestsrc num-buffers=1 pattern=black "
                "! video/x-raw,format=I420,width=768,height=576,framerate=10/1 "
                "! x264enc tune=zerolatency key-int-max=20 ! h264parse "
                "! video/x-h264,stream-format=avc,alignment=au "
                "! rtph264pay name=pay0 pt=96 config-interval=-1")

    def _on_media_configure(self, _factory, media):
        pay = media.get_element().get_by_name("pay0")
        state = {"gap_sent": False}

        def mute(pad, info):
            if info.type & Gst.PadProbeType.BUFFER:
                if not state["gap_sent"]:
                    state["gap_sent"] = True
                    buf = info.get_buffer()
                    pts = buf.pts if buf.pts != Gst.CLOCK_TIME_NONE else 0
                    pad.send_event(Gst.Event.new_gap(pts, Gst.CLOCK_TIME_NONE))
                return Gst.PadProbeReturn.DROP
            event = info.get_event()
            if event is not None and event.type == Gst.EventType.EOS:
                return Gst.PadProbeReturn.DROP
            return Gst.PadProbeReturn.OK

        pay.get_static_pad("sink").add_probe(
            Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST | Gst.PadProbeType.EVENT_DOWNSTREAM, mute
        )


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="RTSP server for tests: serves MP4 files (H.264/H.265) as an IP camera does.",
        epilog='Prints "READY port=<port>" on stdout once listening; logs go to stderr.',
    )
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDR",
                   help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8554, help="TCP port; 0 picks a free one (default 8554)")
    p.add_argument("--mount", action="append", default=[], metavar="NAME=PATH",
                   help="serve the MP4 file PATH at rtsp://ADDR:PORT/NAME (repeatable)")
    p.add_argument("--loop", action="store_true",
                   help="loop every --mount forever (timestamps keep increasing, no EOS)")
    p.add_argument("--auth", metavar="USER:PASSWORD",
                   help="require RTSP Basic or Digest authentication for all mounts")
    p.add_argument("--silent", action="extend", nargs="+", default=[], metavar="NAME[=PATH]",
                   help="a mount that answers DESCRIBE/SETUP/PLAY (H.264 SDP) but never sends media; "
                        "its SPS/PPS come from PATH, else from the first H.264 --mount, else from a "
                        "one-frame x264enc encode")
    a = p.parse_args(argv)
    if not a.mount and not a.silent:
        p.error("nothing to serve: give at least one --mount NAME=PATH or --silent NAME")
    if not 0 <= a.port <= 65535:
        p.error("--port must be 0..65535")
    if a.auth is not None and (":" not in a.auth or not a.auth.split(":", 1)[0]):
        p.error("--auth must be USER:PASSWORD")
    seen = set()

    def check_name(name, opt):
        name = name.strip("/")
        if not MOUNT_NAME.match(name):
            p.error(f"{opt}: bad mount name {name!r} (letters, digits, . _ ~ - and /)")
        if name in seen:
            p.error(f"{opt}: mount /{name} given twice")
        seen.add(name)
        return name

    mounts = []
    for m in a.mount:
        name, sep, path = m.partition("=")
        if not sep or not path:
            p.error(f"--mount {m!r}: expected NAME=PATH")
        if not os.path.isfile(path):
            p.error(f"--mount {m!r}: no such file {path!r}")
        mounts.append((check_name(name, "--mount"), os.path.abspath(path)))
    silents = []
    for s in a.silent:
        name, sep, path = s.partition("=")
        if sep and not os.path.isfile(path):
            p.error(f"--silent {s!r}: no such file {path!r}")
        silents.append((check_name(name, "--silent"), os.path.abspath(path) if sep else None))
    a.mounts, a.silents = mounts, silents
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    Gst.init(None)

    server = GstRtspServer.RTSPServer()
    server.set_address(args.bind)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()

    auth = None
    if args.auth is not None:
        user, password = args.auth.split(":", 1)
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        auth = GstRtspServer.RTSPAuth()
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        auth.add_digest(user, password, token)
        if not enable_basic_and_digest(auth):
            log("warning: could not enable Digest authentication; Basic only")
        server.set_auth(auth)  # no default token: anonymous requests get 401
    role = Gst.Structure.from_string(
        "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")[0]

    def add(name, factory, what):
        if auth is not None:
            factory.add_role_from_structure(role)
        mounts.add_factory("/" + name, factory)
        log(f"/{name}: {what}")

    first_h264 = None
    for name, path in args.mounts:
        caps_name, duration = probe_file(path)
        if caps_name == "video/x-h264" and first_h264 is None:
            first_h264 = path
        cls = LoopMountFactory if args.loop else MountFactory
        secs = duration / Gst.SECOND if duration and duration != Gst.CLOCK_TIME_NONE else float("nan")
        add(name, cls(name, path, caps_name),
            f"{path} ({CODECS[caps_name][0]}, {secs:.1f} s{', looped' if args.loop else ''})")
    for name, path in args.silents:
        if path is not None and probe_file(path)[0] != "video/x-h264":
            raise SystemExit(f"[rtsp-server] error: --silent {name}={path}: needs an H.264 file")
        path = path or first_h264
        add(name, SilentFactory(name, path),
            f"silent (SDP for H.264 from {path or 'a one-frame x264enc encode'}, no media)")

    loop = GLib.MainLoop()

    def on_client(_server, client):
        conn = client.get_connection()
        peer = conn.get_ip() if conn is not None else "?"
        log(f"client connected from {peer}")
        client.connect("closed", lambda _c: log(f"client from {peer} closed"))

    server.connect("client-connected", on_client)

    if server.attach(None) == 0:
        log(f"error: cannot listen on {args.bind}:{args.port}")
        return 1
    port = server.get_bound_port()
    pool = server.get_session_pool()
    GLib.timeout_add_seconds(2, lambda: pool.cleanup() >= 0)

    def stop(signame):
        log(f"{signame}: stopping")
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, stop, "SIGTERM")
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, stop, "SIGINT")

    sys.stdout.write(f"READY port={port}\n")
    sys.stdout.flush()
    log(f"listening on rtsp://{args.bind}:{port}/")
    loop.run()

    # close the clients (their media pipelines go to NULL), then leave
    server.client_filter(lambda _s, _c, _d: GstRtspServer.RTSPFilterResult.REMOVE, None)
    ctx = GLib.MainContext.default()
    while ctx.iteration(False):
        pass
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
