#!/usr/bin/env bash
# Installs what Xueliang needs to build, run and test, and only what is missing:
#   - Debian packages (FFmpeg development files, GStreamer RTSP server, ffmpeg CLI,
#     sipp from sip-tester: the GB/T 28181 device in the SIP tests),
#   - the onnxruntime shared library from the PyPI wheel, into .local/onnxruntime/,
#   - the test footage (tests/fixtures/), made from Debian's opencv-doc vtest.avi,
#   - the dashboard's browser test: Debian's chromium, Node.js and npm, and
#     playwright-core (pinned in tests/browser/package-lock.json) via `npm ci`.
#   - schemathesis (the API fuzz test) and kubernetes-validate (the deploy/
#     manifests' test) in a Python virtual environment, .local/venv/.
# Idempotent: a second run does nothing but checks. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

ORT_VERSION=1.32.0
SCHEMATHESIS_VERSION=4.32.5
KUBERNETES_VALIDATE_VERSION=1.37.0
APT_PACKAGES=(
  pkg-config clang libclang-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  ffmpeg
  gir1.2-gst-rtsp-server-1.0 python3-gi python3-venv
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-tools
  sip-tester
)

log() { printf '[setup] %s\n' "$*" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# onnxruntime: the shared library ships inside the PyPI wheel; it needs only libc/libstdc++.
ort_dir="$root/.local/onnxruntime"
ort_lib="$ort_dir/libonnxruntime.so.$ORT_VERSION"
if [ ! -f "$ort_lib" ]; then
  log "fetching onnxruntime==$ORT_VERSION wheel from PyPI"
  py=$(command -v python3)
  if ! "$py" -m pip --version >/dev/null 2>&1; then
    # Debian's python3 comes without pip; `pip download` only fetches the wheel.
    log "installing Debian package: python3-pip"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  PYTHON="$py" "$root/scripts/fetch-onnxruntime.sh" "$ORT_VERSION" "$ort_dir" >/dev/null
fi

# Mosquitto: the alerts tests publish to, and subscribe at, a real MQTT broker
# on 127.0.0.1:1883 (Debian's default config listens on localhost only).
if ! command -v mosquitto >/dev/null || ! command -v mosquitto_sub >/dev/null; then
  log "installing Debian packages: mosquitto mosquitto-clients"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mosquitto mosquitto-clients >/dev/null
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  log "starting mosquitto on 127.0.0.1:1883"
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.1; done
  (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null || { log "mosquitto did not start on 127.0.0.1:1883"; exit 1; }
fi

# PostgreSQL: the store's second backend. Its tests (and the API's and the
# alert dispatcher's, run again on it) use the role xueliang_test on the
# local server, which may make databases; sqlite3 and psql read the files
# and tables the way someone with the database would.
pg_missing=()
command -v sqlite3 >/dev/null || pg_missing+=(sqlite3)
command -v psql >/dev/null || pg_missing+=(postgresql-client)
command -v pg_ctlcluster >/dev/null || pg_missing+=(postgresql)
if [ ${#pg_missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${pg_missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pg_missing[@]}" >/dev/null
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL on 127.0.0.1:5432"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
  [ -n "$cluster" ] || { log "no PostgreSQL cluster (pg_lsclusters shows none)"; exit 1; }
  # shellcheck disable=SC2086
  $SUDO pg_ctlcluster $cluster start
  for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.1; done
  pg_isready -q -h 127.0.0.1 -p 5432 || { log "PostgreSQL did not start on 127.0.0.1:5432"; exit 1; }
fi
if ! PGPASSWORD=xueliang_test psql -h 127.0.0.1 -U xueliang_test -d postgres -Atc "SELECT 1" >/dev/null 2>&1; then
  log "making the PostgreSQL role xueliang_test (may make databases) for the tests"
  sql="DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'xueliang_test') THEN
         CREATE ROLE xueliang_test LOGIN CREATEDB PASSWORD 'xueliang_test'; END IF; END \$\$;"
  # As the server's superuser over its socket (peer authentication on a
  # fresh Debian machine), else over TCP as postgres (trust here).
  if id postgres >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- psql -q -d postgres -c "$sql"
  else
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "$sql"
  fi
fi

# The dashboard's browser test: headless Chromium from Debian (never a
# downloaded browser) driven by playwright-core from npm.
browser_missing=()
[ -x /usr/bin/chromium ] || browser_missing+=(chromium)
# A CJK font, so the Chinese interface is legible in failure screenshots.
[ -d /usr/share/fonts/truetype/wqy ] || browser_missing+=(fonts-wqy-microhei)
command -v node >/dev/null || browser_missing+=(nodejs)
command -v npm >/dev/null || browser_missing+=(npm)
if [ ${#browser_missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${browser_missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${browser_missing[@]}" >/dev/null
fi
# `npm ci` when node_modules is missing or older than the lock file (npm
# writes node_modules/.package-lock.json on every install).
browser="$root/tests/browser"
if [ ! -f "$browser/node_modules/.package-lock.json" ] \
   || [ "$browser/package-lock.json" -nt "$browser/node_modules/.package-lock.json" ]; then
  log "installing the browser test's node modules (npm ci in tests/browser)"
  (cd "$browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

# schemathesis: tests/e2e/schemathesis.rs runs it against the real binary,
# from a virtual environment of its own (pinned, so runs are comparable). The
# venv's scripts name its absolute path, so it is made at the resolved path
# (.local may be a link), and made afresh when missing, moved or outdated.
mkdir -p "$root/.local"
venv="$(cd "$root/.local" && pwd -P)/venv"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
  log "installing schemathesis==$SCHEMATHESIS_VERSION into a new Python virtual environment, .local/venv"
  python3 -m venv --clear "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
# kubernetes-validate: tests/e2e/deploy.rs checks deploy/kubernetes/ against
# the Kubernetes schemas with it (and reads deploy/compose.yaml with its PyYAML).
if [ "$("$venv/bin/kubernetes-validate" --version 2>/dev/null)" != "$KUBERNETES_VALIDATE_VERSION" ]; then
  log "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into .local/venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi

"$root/scripts/make-fixtures.sh"
log "ready"
