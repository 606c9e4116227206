#!/usr/bin/env bash
# Makes the test footage in tests/fixtures/ from Debian's opencv-doc package:
#   usr/share/doc/opencv-doc/examples/data/vtest.avi (768x576, 10 fps, 795 frames,
#   a fixed camera over a walkway with pedestrians and parked cars), transcoded as an
#   IP camera sends it (2 s GOP, no B-frames, yuv420p, ~1 Mb/s) to
#     tests/fixtures/vtest-h264.mp4  (H.264 High, libx264)
#     tests/fixtures/vtest-h265.mp4  (H.265 Main, libx265, hvc1)
#   and, for the performance bench (crates/bench), the same frames re-timed to 25 fps
#   and scaled to D1 as a camera's sub-stream sends it (2 s GOP = 50 frames, no
#   B-frames, ~1 Mb/s; 795 frames = 31.8 s, closed GOPs so it loops cleanly) to
#     tests/fixtures/vtest-d1-25fps.mp4  (H.264 High, libx264, 704x576, 25 fps)
# Idempotent: the source is cached under .local/cache/ and each output that already
# exists is left alone. Needs apt-get, dpkg and the ffmpeg CLI; run as root on Debian 12.
#
#   scripts/make-fixtures.sh                # make what is missing, check the sha256s
#   scripts/make-fixtures.sh --provenance   # also (re)write tests/fixtures/PROVENANCE.md,
#                                           # encoding each fixture a second time to check
#                                           # that the encode is byte-reproducible
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '[fixtures] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

write_provenance=0
case "${1:-}" in
  "") ;;
  --provenance) write_provenance=1 ;;
  -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument: $1 (try --help)" ;;
esac

cache="$root/.local/cache"
srcdir="$cache/opencv-doc"
src="$srcdir/vtest.avi"
fixtures="$root/tests/fixtures"
provenance="$fixtures/PROVENANCE.md"
deb_member="usr/share/doc/opencv-doc/examples/data/vtest.avi"
# sha256 of vtest.avi in opencv-doc 4.6.0+dfsg-12 (Debian 12); a mismatch is only a warning.
VTEST_SHA256=45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf

for tool in ffmpeg ffprobe sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install ffmpeg)"
done

# ---------------------------------------------------------------------------
# 1. The source clip, from Debian's opencv-doc .deb (kept in .local/cache/).
# ---------------------------------------------------------------------------
if [ ! -f "$src" ]; then
  command -v apt-get >/dev/null && command -v dpkg >/dev/null ||
    die "apt-get and dpkg are needed to fetch opencv-doc"
  mkdir -p "$cache"
  apt_opts=()
  # as root, apt downloads as the unprivileged _apt user, which cannot write here
  [ "$(id -u)" = 0 ] && apt_opts=(-o APT::Sandbox::User=root)
  deb=$(ls "$cache"/opencv-doc_*_all.deb 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$deb" ]; then
    log "downloading opencv-doc with apt-get download into .local/cache/"
    if ! (cd "$cache" && apt-get "${apt_opts[@]}" download opencv-doc >&2); then
      [ "$(id -u)" = 0 ] || die "apt-get download opencv-doc failed (run 'apt-get update' as root?)"
      log "apt-get download failed; running apt-get update and retrying"
      apt-get update -qq >&2
      (cd "$cache" && apt-get "${apt_opts[@]}" download opencv-doc >&2)
    fi
    deb=$(ls "$cache"/opencv-doc_*_all.deb | sort -V | tail -n 1)
  else
    log "using cached $(basename "$deb")"
  fi
  tmp=$(mktemp -d "$cache/opencv-doc.tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  log "dpkg -x $(basename "$deb")"
  dpkg -x "$deb" "$tmp"
  [ -f "$tmp/$deb_member" ] || die "$deb_member is not in $(basename "$deb")"
  mkdir -p "$srcdir"
  cp "$tmp/usr/share/doc/opencv-doc/copyright" "$srcdir/copyright"
  {
    printf 'Package: %s\n' "$(dpkg-deb -f "$deb" Package)"
    printf 'Version: %s\n' "$(dpkg-deb -f "$deb" Version)"
    printf 'Source: %s\n' "$(dpkg-deb -f "$deb" Source)"
    printf 'Deb: %s\n' "$(basename "$deb")"
    printf 'Deb-SHA256: %s\n' "$(sha256sum "$deb" | cut -d' ' -f1)"
    printf 'Member: %s\n' "$deb_member"
  } >"$srcdir/source.txt"
  cp "$tmp/$deb_member" "$src.part"
  mv "$src.part" "$src"          # last, so that an interrupted run starts over
  rm -rf "$tmp"
  trap - EXIT
  log "source: $src"
fi
src_sha=$(sha256sum "$src" | cut -d' ' -f1)
[ "$src_sha" = "$VTEST_SHA256" ] ||
  log "warning: vtest.avi sha256 is $src_sha, expected $VTEST_SHA256 (different opencv-doc?)"

# ---------------------------------------------------------------------------
# 2. The fixtures. Deterministic: one encoder thread, bit-exact decoder/muxer.
#    GOP 20 frames = 2 s at 10 fps, no scene-cut key frames, closed GOP, no B-frames.
# ---------------------------------------------------------------------------
IN_ARGS=(-nostdin -hide_banner -loglevel error -flags:v +bitexact -i)
OUT_COMMON=(-map 0:v:0 -an -sn -dn -map_metadata -1 -map_chapters -1
            -fflags +bitexact -flags:v +bitexact -pix_fmt yuv420p)
OUT_MP4=(-movflags +faststart -f mp4)
H264_ARGS=(-c:v libx264 -threads:v 1 -preset medium -profile:v high -crf 23
           -maxrate 1200k -bufsize 2400k
           -x264-params keyint=20:min-keyint=20:scenecut=0:bframes=0:open-gop=0)
H265_ARGS=(-c:v libx265 -threads:v 1 -preset medium -crf 25
           -x265-params keyint=20:min-keyint=20:bframes=0:scenecut=0:open-gop=0:pools=1:frame-threads=1:vbv-maxrate=1200:vbv-bufsize=2400:log-level=error
           -tag:v hvc1)
# D1 (704x576) at 25 fps: every source frame becomes one output frame 40 ms apart.
D1_ARGS=(-vf 'setpts=N/(25*TB),scale=704:576:flags=bicubic' -r 25
         -c:v libx264 -threads:v 1 -preset medium -profile:v high
         -b:v 1000k -maxrate 1200k -bufsize 2000k
         -x264-params keyint=50:min-keyint=50:scenecut=0:bframes=0:open-gop=0)

FIXTURES=(h264 h265 d1)
# fixture_name <h264|h265|d1>: the file name under tests/fixtures/
fixture_name() {
  case "$1" in
    h264) echo vtest-h264.mp4 ;;
    h265) echo vtest-h265.mp4 ;;
    d1) echo vtest-d1-25fps.mp4 ;;
    *) die "unknown fixture kind $1" ;;
  esac
}
# codec_args <h264|h265|d1>: sets the array `args`
codec_args() {
  case "$1" in
    h264) args=("${H264_ARGS[@]}") ;;
    h265) args=("${H265_ARGS[@]}") ;;
    d1) args=("${D1_ARGS[@]}") ;;
    *) die "unknown fixture kind $1" ;;
  esac
}

# encode <h264|h265|d1> <output>
encode() {
  local codec=$1 out=$2 args
  codec_args "$codec"
  ffmpeg "${IN_ARGS[@]}" "$src" "${OUT_COMMON[@]}" "${args[@]}" "${OUT_MP4[@]}" -y "$out"
}

# the command line as written in PROVENANCE.md (paths relative to the repository)
command_line() {
  local codec=$1 out=$2 args
  codec_args "$codec"
  printf 'ffmpeg'
  printf ' %q' "${IN_ARGS[@]}" ".local/cache/opencv-doc/vtest.avi" "${OUT_COMMON[@]}" \
    "${args[@]}" "${OUT_MP4[@]}" -y "$out"
  printf '\n'
}

mkdir -p "$fixtures"
for codec in "${FIXTURES[@]}"; do
  f=$(fixture_name "$codec")
  out="$fixtures/$f"
  if [ -s "$out" ]; then
    log "exists, skipped: tests/fixtures/$f"
    continue
  fi
  log "encoding tests/fixtures/$f (single-threaded; up to a minute)"
  part="$fixtures/.$f.part.mp4"
  encode "$codec" "$part"
  mv "$part" "$out"
  log "made tests/fixtures/$f ($(stat -c %s "$out") bytes)"
done

# ---------------------------------------------------------------------------
# 3. Check the outputs against PROVENANCE.md, or (--provenance) rewrite it.
# ---------------------------------------------------------------------------
sha() { sha256sum "$1" | cut -d' ' -f1; }

if [ "$write_provenance" = 0 ]; then
  for codec in "${FIXTURES[@]}"; do
    f=$(fixture_name "$codec")
    got=$(sha "$fixtures/$f")
    want=$(sed -n "s/^| \`$f\` | sha256 | \`\([0-9a-f]\{64\}\)\` |\$/\1/p" "$provenance" 2>/dev/null || true)
    if [ -z "$want" ]; then
      log "$f sha256 $got (no recorded value; run with --provenance to record it)"
    elif [ "$got" = "$want" ]; then
      log "$f sha256 matches PROVENANCE.md"
    else
      log "note: $f sha256 $got differs from PROVENANCE.md ($want); another ffmpeg/x264/x265 build encodes differently; the clip is still usable"
    fi
  done
  exit 0
fi

log "writing tests/fixtures/PROVENANCE.md (encodes each fixture once more to compare)"
[ -f "$srcdir/source.txt" ] || die "$srcdir/source.txt is missing; remove $src and rerun"
field() { sed -n "s/^$1: //p" "$srcdir/source.txt"; }
tmpdir=$(mktemp -d /tmp/make-fixtures.XXXXXX)
trap 'rm -rf "$tmpdir"' EXIT

lib_versions() { # e.g. "libavcodec59 7:5.1.9-0+deb12u1, libx264-164 2:0.164.3095+gitbaee400-3, ..."
  dpkg-query -W -f '${Package} ${Version}\n' 'libavcodec[0-9]*' 'libx264-[0-9]*' 'libx265-[0-9]*' 2>/dev/null |
    awk 'NF == 2 { s = s (s == "" ? "" : ", ") "`" $1 "` " $2 } END { print (s == "" ? "unknown" : s) }'
}
probe() { # probe <file> <entries>: value of the first video stream
  ffprobe -v error -select_streams v:0 -show_entries "stream=$2" -of default=nw=1:nk=1 "$1" | head -n 1
}
keyframe_gops() { # distinct distances between key frames, e.g. "20"
  ffprobe -v error -select_streams v:0 -show_entries packet=flags -of csv=p=0 "$1" |
    awk '/K/ { if (last != "") d[NR - last] = 1; last = NR; n++ }
         END { s = ""; for (k in d) s = s (s == "" ? "" : ",") k; printf "%d key frames, every %s frames\n", n, s }'
}

{
  cat <<EOF
# Test footage provenance

Generated by \`scripts/make-fixtures.sh --provenance\` on $(date -u +%Y-%m-%d).
The \`.mp4\` files are not committed (\`.gitignore\`); \`scripts/make-fixtures.sh\`
(called by \`scripts/setup.sh\`) makes them, and checks their sha256 against this file.

## Source

| | |
|---|---|
| Debian package | \`$(field Package)\` $(field Version) (source package \`$(field Source)\`, Debian 12 "bookworm", section main) |
| .deb | \`$(field Deb)\`, sha256 \`$(field Deb-SHA256)\` |
| obtained with | \`apt-get download opencv-doc\`, then \`dpkg -x\` (cached in \`.local/cache/\`) |
| file inside | \`/$(field Member)\` (upstream OpenCV \`samples/data/vtest.avi\`) |
| file sha256 | \`$src_sha\` |
| file | $(stat -c %s "$src") bytes, $(probe "$src" codec_name), $(probe "$src" width)x$(probe "$src" height), $(probe "$src" r_frame_rate) fps, $(probe "$src" nb_frames) frames, $(probe "$src" duration) s |
| content | a fixed camera looking down on a walkway; pedestrians walk through, cars are parked |

### Licence

\`/usr/share/doc/opencv-doc/copyright\` has no stanza of its own for
\`samples/data/vtest.avi\`, so it falls under the package's \`Files: *\` stanza:

\`\`\`
$(awk '/^Files: \*$/ { on = 1 } on && /^$/ { exit } on' "$srcdir/copyright")
\`\`\`

(Debian ships the file in \`main\`, i.e. as DFSG-free; the \`Files-Excluded\` list of the
repackaged \`+dfsg\` upstream source removes \`3rdparty/\`, the "Lena" images, the Milky
icons and some sample resources, not \`vtest.avi\`.) The full licence texts are in that copyright file.

## Encodes

ffmpeg $(ffmpeg -version | sed -n 's/^ffmpeg version \([^ ]*\).*/\1/p') (Debian packages: $(lib_versions)).
All: closed GOP of 2 s, no scene-cut key frames, no B-frames, yuv420p, one encoder
thread, bit-exact flags, no metadata, mp4 with \`moov\` first (faststart).
\`vtest-h264.mp4\` and \`vtest-h265.mp4\` keep the source's size and 10 fps (GOP of
20 frames). \`vtest-d1-25fps.mp4\`, the performance bench's clip (\`crates/bench\`), is
the same 795 frames re-timed to 25 fps (each source frame shown for 40 ms, so the clip
lasts 31.8 s and people walk 2.5 times as fast) and scaled to D1, 704x576, the size of a
typical camera sub-stream, at ~1 Mb/s (GOP of 50 frames). Run from the repository root:

\`\`\`sh
$(command_line h264 tests/fixtures/vtest-h264.mp4)
$(command_line h265 tests/fixtures/vtest-h265.mp4)
$(command_line d1 tests/fixtures/vtest-d1-25fps.mp4)
\`\`\`

| file | property | value |
|---|---|---|
EOF
  for codec in "${FIXTURES[@]}"; do
    f=$(fixture_name "$codec")
    p="$fixtures/$f"
    log "re-encoding $f into $tmpdir to check reproducibility"
    encode "$codec" "$tmpdir/$f"
    if cmp -s "$p" "$tmpdir/$f"; then repro="yes: a second encode is byte-identical"
    else repro="NO: a second encode differs ($(sha "$tmpdir/$f"))"; fi
    frames=$(ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames -of default=nw=1:nk=1 "$p")
    printf '| `%s` | sha256 | `%s` |\n' "$f" "$(sha "$p")"
    printf '| `%s` | size | %s bytes |\n' "$f" "$(stat -c %s "$p")"
    printf '| `%s` | codec | %s %s, tag %s, %s, %sx%s |\n' "$f" "$(probe "$p" codec_name)" \
      "$(probe "$p" profile)" "$(probe "$p" codec_tag_string)" "$(probe "$p" pix_fmt)" \
      "$(probe "$p" width)" "$(probe "$p" height)"
    printf '| `%s` | frames | %s decoded, %s fps, %s s |\n' "$f" "$frames" \
      "$(probe "$p" r_frame_rate)" "$(probe "$p" duration)"
    printf '| `%s` | bit rate | %s b/s |\n' "$f" "$(probe "$p" bit_rate)"
    printf '| `%s` | GOP | %s |\n' "$f" "$(keyframe_gops "$p")"
    printf '| `%s` | B-frames | %s |\n' "$f" "$(probe "$p" has_b_frames | sed 's/^0$/none (has_b_frames=0)/')"
    printf '| `%s` | reproducible | %s |\n' "$f" "$repro"
  done
  cat <<'EOF'

Reproducibility holds for the same ffmpeg/x264/x265 builds (x264 and x265 are
deterministic for a fixed version, settings and thread count; the decoder and
muxer run with bit-exact flags). Other builds will give other bytes but the same
kind of stream; `make-fixtures.sh` then only notes the different sha256.
EOF
} >"$provenance.part"
mv "$provenance.part" "$provenance"
log "wrote tests/fixtures/PROVENANCE.md"
