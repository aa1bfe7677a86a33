// Labels both pages show for protocol values (topics, statuses, reasons), in zh and en.

export const TOPICS = ["payment", "arrival", "account", "security", "technical", "feedback", "other"];

export const TOPIC_LABELS = {
  account: { zh: "账户与登录", en: "Account & login" },
  payment: { zh: "付款问题", en: "Payments" },
  arrival: { zh: "到账查询", en: "Money not arrived" },
  security: { zh: "账户安全", en: "Security" },
  technical: { zh: "App 使用问题", en: "Using the app" },
  feedback: { zh: "意见反馈", en: "Feedback" },
  other: { zh: "其他问题", en: "Something else" },
};

export const TOPIC_ICONS = {
  account: "👤",
  payment: "💳",
  arrival: "⏱",
  security: "🛡",
  technical: "📱",
  feedback: "💬",
  other: "❓",
};

const VALUES = {
  priority: {
    urgent: { zh: "紧急", en: "Urgent" },
    high: { zh: "高", en: "High" },
    normal: { zh: "普通", en: "Normal" },
  },
  tx: {
    processing: { zh: "处理中", en: "Processing" },
    succeeded: { zh: "成功", en: "Succeeded" },
    failed: { zh: "失败", en: "Failed" },
    pending: { zh: "待处理", en: "Pending" },
  },
  reason: {
    insufficient_balance: { zh: "余额不足", en: "Insufficient balance" },
    invalid_payee: { zh: "收款人无效", en: "Invalid payee" },
    maintenance: { zh: "系统维护", en: "Maintenance" },
    network_error: { zh: "网络错误", en: "Network error" },
    account_frozen: { zh: "账户已冻结", en: "Account frozen" },
  },
  alert: {
    new_device_login: { zh: "新设备登录", en: "New device login" },
    suspicious_activity: { zh: "可疑活动", en: "Suspicious activity" },
    account_frozen: { zh: "账户已冻结", en: "Account frozen" },
    account_unfrozen: { zh: "账户已解冻", en: "Account unfrozen" },
    password_changed: { zh: "密码已修改", en: "Password changed" },
  },
  severity: {
    info: { zh: "提示", en: "Info" },
    warning: { zh: "警告", en: "Warning" },
    critical: { zh: "严重", en: "Critical" },
  },
  conv: {
    bot: { zh: "智能助手", en: "Bot" },
    queued: { zh: "排队中", en: "Queued" },
    assigned: { zh: "进行中", en: "Active" },
    resolved: { zh: "已解决", en: "Resolved" },
    closed: { zh: "已关闭", en: "Closed" },
  },
  agentStatus: {
    online: { zh: "在线", en: "Online" },
    away: { zh: "离开", en: "Away" },
    offline: { zh: "离线", en: "Offline" },
  },
  speed: {
    instant: { zh: "实时到账", en: "Instant" },
    standard: { zh: "普通到账", en: "Standard" },
  },
};

/** The label of `value` in a family ("tx", "reason"...), or the raw value. */
export function label(family, value, lang) {
  if (family === "topic") return TOPIC_LABELS[value]?.[lang] ?? value ?? "";
  return VALUES[family]?.[value]?.[lang] ?? value ?? "";
}

/** A tiny i18n: `t(key, vars)` from a {key: {zh, en}} table, zh when missing. */
export function makeT(table, getLang) {
  return (key, vars = {}) => {
    const entry = table[key];
    let s = entry ? entry[getLang()] ?? entry.zh : key;
    for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
    return s;
  };
}
