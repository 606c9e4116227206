// 登录: POST /api/v1/auth/login. The server answers with an HttpOnly session
// cookie, which every later request, picture and the live feed carry.

import { api } from "./api.js";
import { el } from "./dom.js";
import { t, errorText } from "./i18n.js";

function loginError(e) {
  if (e.status === 401) return t("login.invalid");
  if (e.status === 429) {
    const s = Number.parseInt(e.retryAfter, 10);
    return Number.isFinite(s) ? t("login.tooMany", { s }) : t("login.tooManyNoWait");
  }
  return errorText(e);
}

/** Shows the form in `root`; calls `onLoggedIn(user)` after a good login. */
export function mount(root, onLoggedIn, notice = "") {
  const username = el("input", { name: "username", id: "username", autocomplete: "username", required: true });
  const password = el("input", {
    name: "password", id: "password", type: "password", autocomplete: "current-password", required: true,
  });
  const message = el("p", { class: "error", id: "login-error", role: "alert", hidden: !notice }, notice);
  const submit = el("button", { type: "submit", class: "primary" }, t("login.submit"));
  const form = el("form", { class: "login", id: "login-form" },
    el("h1", {}, t("app.title")),
    el("h2", {}, t("login.heading")),
    el("label", { class: "field" }, el("span", {}, t("login.username")), username),
    el("label", { class: "field" }, el("span", {}, t("login.password")), password),
    message,
    submit,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    submit.textContent = t("login.busy");
    try {
      const body = await api.post("/auth/login", { username: username.value.trim(), password: password.value });
      password.value = "";
      onLoggedIn(body.user);
    } catch (err) {
      message.textContent = loginError(err);
      message.hidden = false;
      submit.disabled = false;
      submit.textContent = t("login.submit");
      password.select();
    }
  });
  root.append(form);
  username.focus();
  return () => {};
}
