// 用户管理 (administrators only): create a user, set the role and villages,
// reset a password, disable or enable, list and revoke a user's tokens.
// GET/POST /users, PATCH /users/{id}, GET /tokens, DELETE /tokens/{id}.

import { api } from "./api.js";
import { el, select } from "./dom.js";
import { t, errorText } from "./i18n.js";
import { beijingTime } from "./format.js";

const ROLES = ["viewer", "operator", "admin"];

/** "东村, 西村" (also 、 and ，) -> ["东村", "西村"]; empty: every village. */
function parseVillages(text) {
  return text.split(/[,，、]/).map((v) => v.trim()).filter(Boolean);
}

function villagesText(villages) {
  return villages && villages.length ? villages.join(", ") : t("users.allVillages");
}

function roleSelect(name, selected) {
  return select(name, ROLES.map((r) => [r, t(`role.${r}`)]), selected);
}

export function mount(root, session) {
  if (!session.user || session.user.role !== "admin") {
    root.append(el("p", { class: "error", id: "users-forbidden", role: "alert" }, t("users.adminOnly")));
    return () => {};
  }
  let alive = true;
  let users = [];
  let tokens = [];
  let selected = null; // the id of the user being edited

  const message = el("p", { class: "notice", id: "users-message", role: "status", hidden: true });
  function say(text, isError = false) {
    message.textContent = text;
    message.className = isError ? "error" : "notice";
    message.hidden = false;
  }
  async function act(work, done) {
    try {
      await work();
      if (!alive) return;
      say(done);
      await load();
    } catch (e) {
      if (alive) say(errorText(e), true);
    }
  }

  const createForm = el("form", { class: "filters", id: "users-create" },
    el("label", { class: "field" }, el("span", {}, t("users.username")),
      el("input", { name: "username", required: true, autocomplete: "off" })),
    el("label", { class: "field" }, el("span", {}, t("users.password")),
      el("input", { name: "password", type: "password", required: true, minlength: 8, autocomplete: "new-password" })),
    el("label", { class: "field" }, el("span", {}, t("users.role")), roleSelect("role", "operator")),
    el("label", { class: "field" }, el("span", {}, t("users.villages")),
      el("input", { name: "villages", placeholder: t("users.villagesHint") })),
    el("div", { class: "buttons" }, el("button", { type: "submit", class: "primary" }, t("users.create"))),
  );
  createForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = createForm.elements;
    const body = {
      username: f.username.value.trim(),
      password: f.password.value,
      role: f.role.value,
      villages: parseVillages(f.villages.value),
    };
    act(async () => {
      const user = await api.post("/users", body);
      selected = user.id;
      createForm.reset();
    }, t("users.created", { username: body.username }));
  });

  const table = el("table", { id: "users-table" });
  const editor = el("section", { class: "panel", id: "user-edit", hidden: true });
  root.append(el("h2", {}, t("nav.users")), createForm, message, table, editor);

  function renderTable() {
    table.replaceChildren(
      el("thead", {}, el("tr", {},
        el("th", {}, t("users.username")), el("th", {}, t("users.role")),
        el("th", {}, t("users.villages")), el("th", {}, t("users.state")), el("th", {}, ""))),
      el("tbody", {}, users.map((u) => el("tr", { dataset: { username: u.username, userId: String(u.id) } },
        el("td", {}, u.username),
        el("td", { class: "role" }, t(`role.${u.role}`)),
        el("td", { class: "villages" }, villagesText(u.villages)),
        el("td", { class: "state" }, u.disabled ? t("users.disabled") : t("users.active")),
        el("td", {}, el("button", {
          type: "button", class: "manage", onclick: () => { selected = u.id; renderEditor(); },
        }, t("users.manage")))))),
    );
    if (!users.length) table.append(el("caption", {}, t("users.empty")));
  }

  function tokenRow(tok) {
    const revoked = Boolean(tok.revoked_at);
    return el("tr", { dataset: { tokenId: String(tok.id), kind: tok.kind } },
      el("td", {}, t(`users.token.${tok.kind}`)),
      el("td", {}, tok.name || "—"),
      el("td", {}, beijingTime(tok.created_at)),
      el("td", {}, tok.last_used_at ? beijingTime(tok.last_used_at) : "—"),
      el("td", {}, tok.expires_at ? beijingTime(tok.expires_at) : "—"),
      el("td", {}, revoked
        ? el("span", { class: "revoked" }, t("users.revoked"))
        : el("button", {
          type: "button", class: "revoke",
          onclick: () => act(() => api.del(`/tokens/${tok.id}`), t("users.revokedDone")),
        }, t("users.revoke"))),
    );
  }

  function renderEditor() {
    const u = users.find((x) => x.id === selected);
    editor.hidden = !u;
    if (!u) return;
    const role = roleSelect("role", u.role);
    const villages = el("input", { name: "villages", value: (u.villages || []).join(", "), placeholder: t("users.villagesHint") });
    const access = el("form", { class: "filters", id: "user-access" },
      el("label", { class: "field" }, el("span", {}, t("users.role")), role),
      el("label", { class: "field" }, el("span", {}, t("users.villages")), villages),
      el("div", { class: "buttons" }, el("button", { type: "submit", class: "primary" }, t("users.save"))));
    access.addEventListener("submit", (e) => {
      e.preventDefault();
      act(() => api.patch(`/users/${u.id}`, { role: role.value, villages: parseVillages(villages.value) }),
        t("users.saved", { username: u.username }));
    });
    const password = el("input", { name: "password", type: "password", required: true, minlength: 8, autocomplete: "new-password" });
    const reset = el("form", { class: "filters", id: "user-password" },
      el("label", { class: "field" }, el("span", {}, t("users.newPassword")), password),
      el("div", { class: "buttons" }, el("button", { type: "submit" }, t("users.resetPassword"))));
    reset.addEventListener("submit", (e) => {
      e.preventDefault();
      act(() => api.patch(`/users/${u.id}`, { password: password.value }),
        t("users.passwordReset", { username: u.username }));
    });
    const toggle = el("button", {
      type: "button", id: "user-toggle",
      onclick: () => act(() => api.patch(`/users/${u.id}`, { disabled: !u.disabled }),
        t(u.disabled ? "users.enabledDone" : "users.disabledDone", { username: u.username })),
    }, u.disabled ? t("users.enable") : t("users.disable"));
    const own = tokens.filter((tok) => tok.user_id === u.id);
    const tokenTable = own.length
      ? el("table", { id: "user-tokens" },
        el("thead", {}, el("tr", {},
          el("th", {}, t("users.tokenKind")), el("th", {}, t("users.tokenName")),
          el("th", {}, t("users.tokenCreated")), el("th", {}, t("users.tokenLastUsed")),
          el("th", {}, t("users.tokenExpires")), el("th", {}, ""))),
        el("tbody", {}, own.map(tokenRow)))
      : el("p", { class: "empty", id: "user-tokens" }, t("users.tokensEmpty"));
    editor.replaceChildren(
      el("h3", {}, t("users.editing", { username: u.username })),
      access, reset,
      el("div", { class: "buttons" }, toggle),
      el("h4", {}, t("users.tokens")),
      tokenTable,
    );
  }

  async function load() {
    let lists;
    try {
      lists = await Promise.all([api.get("/users"), api.get("/tokens")]);
    } catch (e) {
      if (alive) say(errorText(e), true);
      return;
    }
    if (!alive) return;
    users = lists[0].items;
    tokens = lists[1].items;
    renderTable();
    renderEditor();
  }

  load();
  return () => { alive = false; };
}
