// The dashboard's entry: session (GET /auth/me), hash routes, language toggle.
//   #/live          实时事件墙 (default)
//   #/events        事件列表
//   #/events/{id}   event detail
//   #/cameras       摄像机
//   #/wall          视频墙
//   #/report        在线率报表
//   #/users         用户管理 (administrators)

import { api, onUnauthenticated } from "./api.js";
import { applyStatic, currentLang, errorText, setLang, t } from "./i18n.js";
import { forget as forgetCameras } from "./camera-directory.js";
import * as login from "./login.js";
import * as liveWall from "./live-wall.js";
import * as eventList from "./event-list.js";
import * as eventDetail from "./event-detail.js";
import * as cameraStatus from "./camera-status.js";
import * as videoWall from "./video-wall.js";
import * as availabilityReport from "./availability-report.js";
import * as users from "./users.js";

const view = document.getElementById("view");
const sessionBar = document.getElementById("session-bar");
const who = document.getElementById("who");
const langToggle = document.getElementById("lang-toggle");
const logoutButton = document.getElementById("logout");

const session = {
  user: null,
  /** Asks the server whether the session still holds; shows login if not. */
  check: () => checkSession(),
};

let unmount = () => {};
let loginNotice = "";

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [name, id] = hash.split("/");
  if (name === "events" && id) return { name: "events", mount: (root) => eventDetail.mount(root, session, decodeURIComponent(id)) };
  if (name === "events") return { name, mount: (root) => eventList.mount(root, session) };
  if (name === "cameras") return { name, mount: (root) => cameraStatus.mount(root, session) };
  if (name === "wall") return { name, mount: (root) => videoWall.mount(root, session) };
  if (name === "report") return { name, mount: (root) => availabilityReport.mount(root, session) };
  if (name === "users") return { name, mount: (root) => users.mount(root, session) };
  return { name: "live", mount: (root) => liveWall.mount(root, session) };
}

function render() {
  unmount();
  view.replaceChildren();
  langToggle.textContent = t("lang.switch");
  if (!session.user) {
    sessionBar.hidden = true;
    document.body.dataset.view = "login";
    unmount = login.mount(view, loggedIn, loginNotice);
    return;
  }
  sessionBar.hidden = false;
  const u = session.user;
  who.textContent = t("who", { username: u.username, role: t(`role.${u.role}`) });
  const r = route();
  document.body.dataset.view = r.name;
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("current", link.dataset.route === r.name);
    if ("admin" in link.dataset) link.hidden = u.role !== "admin";
  }
  unmount = r.mount(view) || (() => {});
}

function loggedIn(user) {
  session.user = user;
  loginNotice = "";
  render();
}

function loggedOut(notice = "") {
  session.user = null;
  loginNotice = notice;
  forgetCameras();
  render();
}

async function checkSession() {
  try {
    const user = await api.get("/auth/me");
    if (!session.user || session.user.id !== user.id) {
      session.user = user;
      render();
    }
  } catch (e) {
    if (e.status === 401) {
      if (session.user) loggedOut(t("login.expired"));
      else if (!view.querySelector("#login-form")) loggedOut();
    } else {
      loggedOut(errorText(e));
    }
  }
}

onUnauthenticated(() => {
  if (session.user) loggedOut(t("login.expired"));
});

langToggle.addEventListener("click", () => setLang(currentLang() === "zh" ? "en" : "zh"));
window.addEventListener("langchange", render);
window.addEventListener("hashchange", () => {
  if (session.user) render();
});
logoutButton.addEventListener("click", async () => {
  try {
    await api.post("/auth/logout");
  } catch {
    // Gone already, or the server is unreachable: forget the session here anyway.
  }
  loggedOut();
});

applyStatic();
langToggle.textContent = t("lang.switch");
checkSession();
