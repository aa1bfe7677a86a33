// The REST API page: fetches /openapi.json and shows each operation. DOM built with
// textContent only (nothing from the document is parsed as HTML).

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function resolve(doc, schema, seen = new Set()) {
  // inline $refs (once each, so that recursive models terminate) for a readable schema
  if (Array.isArray(schema)) return schema.map((s) => resolve(doc, s, seen));
  if (!schema || typeof schema !== "object") return schema;
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.split("/").pop();
    if (seen.has(name)) return { $ref: name };
    const target = doc.components?.schemas?.[name];
    const inner = new Set(seen);
    inner.add(name);
    return target ? resolve(doc, target, inner) : schema;
  }
  const out = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "title") continue;
    out[key] = resolve(doc, value, seen);
  }
  return out;
}

function schemaBlock(doc, schema) {
  return el("pre", {}, JSON.stringify(resolve(doc, schema), null, 2));
}

function parametersTable(params) {
  const rows = params.map((p) =>
    el("tr", {},
      el("td", {}, el("code", {}, p.name)),
      el("td", {}, p.in),
      el("td", {}, p.required ? "yes" : "no"),
      el("td", {}, el("code", {}, JSON.stringify(p.schema || {}))),
    ));
  return el("table", {},
    el("thead", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "required"), el("th", {}, "schema"))),
    el("tbody", {}, ...rows));
}

function responsesBlock(doc, responses) {
  const parts = [];
  for (const [status, response] of Object.entries(responses)) {
    const ok = status.startsWith("2");
    parts.push(el("p", {},
      el("span", { class: `status ${ok ? "ok" : "err"}` }, status), " ", response.description || ""));
    const schema = response.content?.["application/json"]?.schema;
    if (ok && schema) parts.push(schemaBlock(doc, schema));
  }
  return parts;
}

function operationCard(doc, path, method, op) {
  const kind = method === "get" || method === "post" ? method : "other";
  const id = op.operationId || `${method}-${path}`;
  const body = el("div", { class: "body" });
  if (op.description) body.append(el("p", {}, op.description));
  if (op.parameters?.length) body.append(el("h3", {}, "Parameters"), parametersTable(op.parameters));
  const requestSchema = op.requestBody?.content?.["application/json"]?.schema;
  if (requestSchema) body.append(el("h3", {}, "Request body (JSON)"), schemaBlock(doc, requestSchema));
  body.append(el("h3", {}, "Responses"), ...responsesBlock(doc, op.responses || {}));
  const card = el("details", { class: "op", id, "data-search": `${method} ${path} ${op.summary || ""}`.toLowerCase() },
    el("summary", {},
      el("span", { class: `method ${kind}` }, method.toUpperCase()),
      el("span", { class: "path" }, path),
      el("span", { class: "summary" }, op.summary || ""),
      op.security?.length ? el("span", { class: "lock" }, "bearer token") : el("span", { class: "lock" }, "public")),
    body);
  return card;
}

function render(doc) {
  $("title").textContent = `${doc.info?.title || "API"} — REST API`;
  document.title = $("title").textContent;
  $("description").textContent = doc.info?.description || "";
  const groups = new Map();
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      const tag = op.tags?.[0] || "other";
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push(operationCard(doc, path, method, op));
    }
  }
  const main = $("ops");
  main.replaceChildren();
  const toc = $("toc");
  toc.replaceChildren();
  for (const [tag, cards] of groups) {
    main.append(el("h2", { class: "group-title", id: `tag-${tag}` }, tag), ...cards);
    toc.append(el("a", { href: `#tag-${tag}` }, `${tag} (${cards.length})`));
  }
}

function filter() {
  const words = $("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  for (const card of document.querySelectorAll(".op")) {
    const text = card.getAttribute("data-search");
    card.hidden = !words.every((w) => text.includes(w));
  }
}

async function main() {
  $("filter").addEventListener("input", filter);
  try {
    const response = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
  } catch (err) {
    $("ops").replaceChildren(el("p", { class: "error" }, `Could not load /openapi.json: ${err.message}`));
  }
}

main();
