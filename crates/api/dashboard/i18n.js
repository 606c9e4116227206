// Every string of the interface, in 简体中文 (the default) and English.
// The choice is remembered in localStorage.

const STORAGE_KEY = "xueliang.lang";

const zh = {
  "app.title": "雪亮 · 综治中心",
  "lang.switch": "English",
  "nav.live": "实时事件墙",
  "nav.events": "事件列表",
  "nav.cameras": "摄像机",
  "nav.report": "在线率报表",
  "nav.logout": "退出登录",
  "who": "{username}（{role}）",
  "role.admin": "管理员",
  "role.operator": "值班员",
  "role.viewer": "只读",

  "login.heading": "登录",
  "login.username": "用户名",
  "login.password": "密码",
  "login.submit": "登录",
  "login.busy": "正在登录…",
  "login.invalid": "用户名或密码错误。",
  "login.tooMany": "尝试次数过多，请 {s} 秒后再试。",
  "login.tooManyNoWait": "尝试次数过多，请稍后再试。",
  "login.expired": "登录已过期，请重新登录。",

  "error.network": "无法连接服务器。",
  "error.forbidden": "没有权限执行此操作。",
  "error.notFound": "未找到。",
  "error.conflict": "当前状态下不能这样操作：{message}",
  "error.generic": "出错了：{message}",

  "live.connecting": "正在连接实时事件流…",
  "live.connected": "实时连接正常",
  "live.reconnecting": "实时连接中断，正在重连…",
  "live.empty": "暂无事件。新事件将实时出现在这里。",
  "live.lagged": "事件过多，已重新加载。",
  "live.new": "新",

  "event.status.active": "进行中",
  "event.status.ended": "已结束",
  "event.camera": "摄像机",
  "event.village": "村/社区",
  "event.grid": "网格",
  "event.kind": "类型",
  "event.label": "目标",
  "event.score": "置信度",
  "event.status": "状态",
  "event.workflow": "处置状态",
  "event.assignee": "处置人",
  "event.startedAt": "开始时间",
  "event.endedAt": "结束时间",
  "event.detail": "说明",
  "event.zone": "区域",
  "event.rule": "规则",
  "event.time": "时间",
  "event.id": "编号",
  "event.updatedBy": "最后操作",

  "snapshot.none": "无抓拍画面",
  "snapshot.alt": "事件抓拍",

  "list.filters": "筛选",
  "list.any": "全部",
  "list.since": "开始于",
  "list.until": "截止到",
  "list.minScore": "最低置信度",
  "list.apply": "查询",
  "list.reset": "重置",
  "list.loadMore": "加载更多",
  "list.loading": "加载中…",
  "list.empty": "没有符合条件的事件。",
  "list.count": "已显示 {n} 条",

  "detail.back": "← 返回事件列表",
  "detail.audit": "处置记录",
  "detail.auditEmpty": "暂无处置记录。",
  "detail.actions": "处置",
  "detail.assignee": "指派给",
  "detail.note": "备注",
  "detail.notePlaceholder": "备注（指派、确认等操作时可选）",
  "detail.needAssignee": "请填写指派对象。",
  "detail.needNote": "请填写备注内容。",
  "detail.done": "已记录：{action}",
  "detail.by": "操作人",
  "detail.action": "操作",
  "detail.viewerHint": "只读账号不能处置事件。",
  "detail.notFound": "事件不存在或无权查看。",

  "action.acknowledge": "确认",
  "action.assign": "指派",
  "action.resolve": "处置完毕",
  "action.false_alarm": "误报",
  "action.note": "备注",

  "workflow.new": "待处理",
  "workflow.acknowledged": "已确认",
  "workflow.assigned": "已指派",
  "workflow.resolved": "已处置",
  "workflow.false_alarm": "误报",

  "kind.object": "目标",
  "kind.camera_offline": "摄像机离线",
  "kind.camera_recovered": "摄像机恢复",
  "kind.video_frozen": "画面冻结",
  "kind.video_blocked": "画面遮挡",
  "kind.scene_changed": "画面移位",
  "kind.intrusion": "区域入侵",
  "kind.loitering": "徘徊",
  "kind.crowd": "人员聚集",
  "kind.line_crossing": "越线",
  "kind.vehicle_dwell": "车辆滞留",
  "kind.store_full": "存储已满",

  "label.person": "人员",
  "label.car": "汽车",
  "label.bicycle": "自行车",
  "label.motorcycle": "摩托车",
  "label.bus": "公交车",
  "label.truck": "货车",
  "label.camera": "摄像机",

  "cameras.refreshing": "每 {s} 秒刷新",
  "cameras.noVillage": "未分配村/社区",
  "cameras.noFrame": "暂无画面",
  "cameras.fps": "帧率",
  "cameras.since": "持续",
  "cameras.lastFrame": "最后画面",
  "cameras.reconnects": "重连次数",
  "cameras.location": "位置",
  "cameras.empty": "没有摄像机。",
  "cameras.summary": "共 {total} 路：在线 {online}，异常 {degraded}，离线 {offline}",

  "state.online": "在线",
  "state.degraded": "异常",
  "state.offline": "离线",
  "state.connecting": "连接中",
  "state.disabled": "已停用",

  "reason.unreachable": "网络不通或超时",
  "reason.refused": "连接被拒绝",
  "reason.auth_failed": "用户名或密码错误",
  "reason.not_found": "码流地址错误",
  "reason.protocol": "协议错误",
  "reason.unsupported_codec": "不支持的编码",
  "reason.stalled": "无视频数据",
  "reason.stream_ended": "码流中断",
  "reason.decode_failed": "无法解码",
  "reason.other": "其他故障",
  "reason.low_fps": "帧率过低",
  "reason.packet_loss": "丢包",
  "reason.decode_errors": "部分帧解码失败",
  "reason.device_offline": "设备未注册",
  "reason.keepalive_lost": "设备心跳超时",
  "reason.invite_refused": "设备拒绝点播",
  "reason.no_media": "收流超时",

  "report.from": "开始",
  "report.to": "结束",
  "report.groupBy": "统计方式",
  "report.group.village": "按村/社区",
  "report.group.grid": "按网格",
  "report.group.camera": "按摄像机",
  "report.group.township": "全镇",
  "report.show": "生成报表",
  "report.key": "名称",
  "report.cameras": "摄像机数",
  "report.sampled": "统计时长",
  "report.online": "在线时长",
  "report.rate": "在线率",
  "report.empty": "该时段没有统计数据。",
  "nav.users": "用户管理",
  "users.username": "用户名",
  "users.password": "初始密码",
  "users.role": "角色",
  "users.villages": "村/社区",
  "users.villagesHint": "用逗号分隔；留空为全部",
  "users.allVillages": "全部",
  "users.state": "状态",
  "users.active": "启用",
  "users.disabled": "已停用",
  "users.create": "新建用户",
  "users.created": "已创建用户 {username}。",
  "users.manage": "管理",
  "users.empty": "没有用户。",
  "users.editing": "管理用户 {username}",
  "users.save": "保存角色和村/社区",
  "users.saved": "已保存 {username} 的角色和村/社区。",
  "users.newPassword": "新密码（至少 8 个字符）",
  "users.resetPassword": "重置密码",
  "users.passwordReset": "已重置 {username} 的密码，其登录会话已结束。",
  "users.disable": "停用账号",
  "users.enable": "启用账号",
  "users.disabledDone": "已停用 {username}，其登录会话已结束。",
  "users.enabledDone": "已启用 {username}。",
  "users.tokens": "令牌",
  "users.tokensEmpty": "没有令牌。",
  "users.tokenKind": "类型",
  "users.tokenName": "名称",
  "users.tokenCreated": "创建时间",
  "users.tokenLastUsed": "最后使用",
  "users.tokenExpires": "到期时间",
  "users.token.session": "登录会话",
  "users.token.api": "API 令牌",
  "users.revoke": "撤销",
  "users.revoked": "已撤销",
  "users.revokedDone": "令牌已撤销。",
  "users.adminOnly": "只有管理员可以管理用户。",
  "report.unassigned": "（未分配）",
  "report.township": "全镇",
  "report.chartTitle": "在线率",

  "unit.day": "{n} 天",
  "unit.hour": "{n} 小时",
  "unit.minute": "{n} 分",
  "unit.second": "{n} 秒",
};

const en = {
  "app.title": "Xueliang · Governance Centre",
  "lang.switch": "中文",
  "nav.live": "Live wall",
  "nav.events": "Events",
  "nav.cameras": "Cameras",
  "nav.report": "Online rate",
  "nav.logout": "Log out",
  "who": "{username} ({role})",
  "role.admin": "administrator",
  "role.operator": "operator",
  "role.viewer": "viewer",

  "login.heading": "Log in",
  "login.username": "Username",
  "login.password": "Password",
  "login.submit": "Log in",
  "login.busy": "Logging in…",
  "login.invalid": "Wrong username or password.",
  "login.tooMany": "Too many attempts; try again in {s} s.",
  "login.tooManyNoWait": "Too many attempts; try again later.",
  "login.expired": "Your session has ended; please log in again.",

  "error.network": "Cannot reach the server.",
  "error.forbidden": "You are not allowed to do this.",
  "error.notFound": "Not found.",
  "error.conflict": "Not possible in the current state: {message}",
  "error.generic": "Something went wrong: {message}",

  "live.connecting": "Connecting to the live feed…",
  "live.connected": "Live feed connected",
  "live.reconnecting": "Live feed lost; reconnecting…",
  "live.empty": "No events yet. New events appear here as they happen.",
  "live.lagged": "Too many events at once; reloaded.",
  "live.new": "new",

  "event.status.active": "active",
  "event.status.ended": "ended",
  "event.camera": "Camera",
  "event.village": "Village",
  "event.grid": "Grid",
  "event.kind": "Kind",
  "event.label": "Object",
  "event.score": "Score",
  "event.status": "Status",
  "event.workflow": "Handling",
  "event.assignee": "Assignee",
  "event.startedAt": "Started",
  "event.endedAt": "Ended",
  "event.detail": "Detail",
  "event.zone": "Zone",
  "event.rule": "Rule",
  "event.time": "Time",
  "event.id": "No.",
  "event.updatedBy": "Last action by",

  "snapshot.none": "No picture",
  "snapshot.alt": "Event snapshot",

  "list.filters": "Filters",
  "list.any": "Any",
  "list.since": "From",
  "list.until": "Until",
  "list.minScore": "Min. score",
  "list.apply": "Search",
  "list.reset": "Reset",
  "list.loadMore": "Load more",
  "list.loading": "Loading…",
  "list.empty": "No events match.",
  "list.count": "{n} shown",

  "detail.back": "← Back to events",
  "detail.audit": "Audit trail",
  "detail.auditEmpty": "No actions yet.",
  "detail.actions": "Handle",
  "detail.assignee": "Assign to",
  "detail.note": "Note",
  "detail.notePlaceholder": "Note (optional with the other actions)",
  "detail.needAssignee": "Say whom to assign it to.",
  "detail.needNote": "Write the note first.",
  "detail.done": "Recorded: {action}",
  "detail.by": "User",
  "detail.action": "Action",
  "detail.viewerHint": "Viewers cannot handle events.",
  "detail.notFound": "No such event, or not yours to see.",

  "action.acknowledge": "Acknowledge",
  "action.assign": "Assign",
  "action.resolve": "Resolved",
  "action.false_alarm": "False alarm",
  "action.note": "Add note",

  "workflow.new": "new",
  "workflow.acknowledged": "acknowledged",
  "workflow.assigned": "assigned",
  "workflow.resolved": "resolved",
  "workflow.false_alarm": "false alarm",

  "kind.object": "object",
  "kind.camera_offline": "camera offline",
  "kind.camera_recovered": "camera recovered",
  "kind.video_frozen": "picture frozen",
  "kind.video_blocked": "picture blocked",
  "kind.scene_changed": "view moved",
  "kind.intrusion": "intrusion",
  "kind.loitering": "loitering",
  "kind.crowd": "crowd",
  "kind.line_crossing": "line crossing",
  "kind.vehicle_dwell": "vehicle dwell",
  "kind.store_full": "store full",

  "label.person": "person",
  "label.car": "car",
  "label.bicycle": "bicycle",
  "label.motorcycle": "motorcycle",
  "label.bus": "bus",
  "label.truck": "truck",
  "label.camera": "camera",

  "cameras.refreshing": "refreshed every {s} s",
  "cameras.noVillage": "No village",
  "cameras.noFrame": "No picture yet",
  "cameras.fps": "fps",
  "cameras.since": "for",
  "cameras.lastFrame": "Last frame",
  "cameras.reconnects": "Reconnects",
  "cameras.location": "Location",
  "cameras.empty": "No cameras.",
  "cameras.summary": "{total} cameras: {online} online, {degraded} degraded, {offline} offline",

  "state.online": "online",
  "state.degraded": "degraded",
  "state.offline": "offline",
  "state.connecting": "connecting",
  "state.disabled": "disabled",

  "reason.unreachable": "unreachable or timed out",
  "reason.refused": "connection refused",
  "reason.auth_failed": "wrong username or password",
  "reason.not_found": "wrong stream path",
  "reason.protocol": "protocol error",
  "reason.unsupported_codec": "unsupported codec",
  "reason.stalled": "no video arriving",
  "reason.stream_ended": "stream ended",
  "reason.decode_failed": "cannot decode",
  "reason.other": "other fault",
  "reason.low_fps": "low frame rate",
  "reason.packet_loss": "packet loss",
  "reason.decode_errors": "some frames fail to decode",
  "reason.device_offline": "device not registered",
  "reason.keepalive_lost": "device keepalives stopped",
  "reason.invite_refused": "device refused the stream request",
  "reason.no_media": "no media after the stream request",

  "report.from": "From",
  "report.to": "To",
  "report.groupBy": "Group by",
  "report.group.village": "village",
  "report.group.grid": "grid",
  "report.group.camera": "camera",
  "report.group.township": "whole township",
  "report.show": "Show report",
  "report.key": "Name",
  "report.cameras": "Cameras",
  "report.sampled": "Time measured",
  "report.online": "Time online",
  "report.rate": "Online rate",
  "report.empty": "Nothing was measured in this range.",
  "nav.users": "Users",
  "users.username": "User name",
  "users.password": "First password",
  "users.role": "Role",
  "users.villages": "Villages",
  "users.villagesHint": "comma-separated; empty: all",
  "users.allVillages": "all",
  "users.state": "State",
  "users.active": "active",
  "users.disabled": "disabled",
  "users.create": "Create user",
  "users.created": "Created user {username}.",
  "users.manage": "Manage",
  "users.empty": "No users.",
  "users.editing": "Manage {username}",
  "users.save": "Save role and villages",
  "users.saved": "Saved the role and villages of {username}.",
  "users.newPassword": "New password (8 characters or more)",
  "users.resetPassword": "Reset password",
  "users.passwordReset": "Reset the password of {username}; their sessions have ended.",
  "users.disable": "Disable account",
  "users.enable": "Enable account",
  "users.disabledDone": "Disabled {username}; their sessions have ended.",
  "users.enabledDone": "Enabled {username}.",
  "users.tokens": "Tokens",
  "users.tokensEmpty": "No tokens.",
  "users.tokenKind": "Kind",
  "users.tokenName": "Name",
  "users.tokenCreated": "Created",
  "users.tokenLastUsed": "Last used",
  "users.tokenExpires": "Expires",
  "users.token.session": "session",
  "users.token.api": "API token",
  "users.revoke": "Revoke",
  "users.revoked": "revoked",
  "users.revokedDone": "Token revoked.",
  "users.adminOnly": "Only administrators manage users.",
  "report.unassigned": "(none)",
  "report.township": "Township",
  "report.chartTitle": "Online rate",

  "unit.day": "{n} d",
  "unit.hour": "{n} h",
  "unit.minute": "{n} min",
  "unit.second": "{n} s",
};

const DICTIONARIES = { zh, en };

function stored() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

let lang = stored() === "en" ? "en" : "zh";

export function currentLang() {
  return lang;
}

/** The string for `key` in the current language, `{name}` filled from `vars`. */
export function t(key, vars = {}) {
  const text = DICTIONARIES[lang][key] ?? zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** `t(prefix + value)` when there is such a string, else the raw value. */
export function tOr(prefix, value) {
  if (value === undefined || value === null || value === "") return "—";
  const key = `${prefix}${value}`;
  return key in DICTIONARIES[lang] || key in zh ? t(key) : String(value);
}

/** Fills every `[data-i18n]` element under `root` with its string. */
export function applyStatic(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("app.title");
  for (const node of root.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
}

/** Switches the language, remembers it and tells the views (`langchange`). */
export function setLang(next) {
  lang = next === "en" ? "en" : "zh";
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // Private mode: the choice lasts for this page only.
  }
  applyStatic();
  window.dispatchEvent(new Event("langchange"));
}

/** A message for an API error, for the operator. */
export function errorText(e) {
  if (!e || typeof e.status !== "number") return t("error.generic", { message: String(e) });
  if (e.status === 0) return t("error.network");
  if (e.status === 403) return t("error.forbidden");
  if (e.status === 404) return t("error.notFound");
  if (e.status === 409) return t("error.conflict", { message: e.message });
  return t("error.generic", { message: e.message || e.code });
}
