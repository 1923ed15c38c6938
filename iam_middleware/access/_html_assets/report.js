// The access report page (iam_middleware/access/_html.py): the filters and the details panel. Inline in the page,
// allowed by its hash. Every value is data: it reaches the page as text nodes and attribute values only.
"use strict";
(() => {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const table = document.getElementById("matrix");
  const form = document.getElementById("filters");
  const shown = document.getElementById("shown");
  const dialog = document.getElementById("details");
  const field = (id) => document.getElementById(id);
  const filters = {principal: field("f-principal"), route: field("f-route"), action: field("f-action"),
                   outcome: field("f-outcome")};
  let opener = null;

  // An element with attributes and children (strings become text nodes, never markup).
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    node.append(...children.filter((child) => child !== null));
    return node;
  }

  const contains = (text, wanted) => !wanted || text.toLowerCase().includes(wanted.toLowerCase());

  // A row shows when its route and action pass and, with an outcome chosen, one of its shown cells has it; a column
  // shows when its principal passes and, with an outcome chosen, one of the shown rows has it there.
  function applyFilters() {
    const principal = filters.principal.value.trim();
    const route = filters.route.value.trim();
    const action = filters.action.value;
    const outcome = filters.outcome.value;
    const columns = data.principals.map((p) => contains(p.name, principal));
    const used = columns.map(() => false);
    let rows = 0;
    for (const row of table.tBodies[0].rows) {
      const info = data.routes[Number(row.dataset.r)];
      const passes = contains(info.label, route) && (!action || info.action === action);
      let any = false;
      for (const cell of row.querySelectorAll("td[data-p]")) {
        const p = Number(cell.dataset.p);
        const hit = !outcome || cell.dataset.outcome === outcome;
        cell.classList.toggle("dim", !hit);
        if (passes && hit && columns[p]) {
          any = true;
          used[p] = true;
        }
      }
      row.hidden = !any;
      rows += any ? 1 : 0;
    }
    for (const cell of table.querySelectorAll("[data-p]")) cell.hidden = !used[Number(cell.dataset.p)];
    const principals = used.filter(Boolean).length;
    shown.textContent = `Showing ${rows} of ${data.routes.length} routes and ${principals} of ` +
      `${data.principals.length} principals.`;
  }

  function list(items) {
    return el("ul", {}, ...items.map((item) => el("li", {}, item)));
  }

  function statement(ref) {
    const [number, outright] = ref;
    const s = data.statements[number];
    const name = s.sid ? `Sid ${s.sid}` : `statement ${s.statement} (no Sid)`;
    return el("article", {class: `statement effect-${s.effect}`},
      el("h4", {}, `${s.effect}: ${s.policy}, ${name}`),
      el("p", {}, `${s.type} policy; ` + (outright ? "applies to every such request"
        : "applies only under the conditions above")),
      el("pre", {}, el("code", {}, s.text)));
  }

  function conditions(cell) {
    const parts = [];
    if (cell.when.length) parts.push(el("p", {}, "Allowed when:"), list(cell.when));
    if (cell.unless.length) parts.push(el("p", {}, "Denied by a Deny statement when:"), list(cell.unless));
    if (cell.keys.length) parts.push(el("p", {}, "Condition keys the answer depends on: " + cell.keys.join(", ")));
    if (cell.ids.length) parts.push(el("p", {}, "Ids of the route it depends on: " +
      cell.ids.map((id) => `{${id}}`).join(", ")));
    if (!parts.length) parts.push(el("p", {}, cell.outcome === "Conditional" ? cell.condition
      : "None: the answer is the same for every request."));
    return parts;
  }

  function details(cell) {
    const principal = data.principals[cell.p];
    const route = data.routes[cell.r];
    const css = cell.decision === "ExplicitlyDenied" ? "explicit" : cell.outcome.toLowerCase();
    const rows = [
      ["Outcome", el("span", {class: `badge o-${css}`}, cell.label)],
      ["Principal", `${principal.name} (${principal.kind}): ${principal.arn}`],
      ["Route", route.label],
      ["Action", route.action],
      ["Resource", cell.resource === null ? "none (public route)" : cell.resource],
      ["Decision", cell.decision === null ? (cell.outcome === "Public" ? "no policy is evaluated"
        : "depends on the request") : cell.decision],
    ];
    if (cell.condition) rows.push(["Condition", cell.condition]);
    const statements = cell.statements.length ? cell.statements.map(statement)
      : [el("p", {}, cell.outcome === "Public" ? "None: a public route needs no credential and no policy."
        : "None applies: no statement allows this action, so it is denied by default.")];
    return [
      el("dl", {}, ...rows.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)])),
      el("h3", {}, "Conditions"), ...conditions(cell),
      el("h3", {}, "Deciding statements"),
      el("p", {}, "Every statement that takes part in this decision, as its policy writes it."),
      cell.decision === "ImplicitlyDenied" ? el("p", {}, "Denied by default: no statement allows it in every " +
        "policy type that must (identity-based, and any guardrail, permissions boundary or session policy).") : null,
      ...statements,
    ];
  }

  function open(button) {
    const cell = data.cells[Number(button.dataset.cell)];
    field("details-title").textContent = `${data.principals[cell.p].name} on ${data.routes[cell.r].label}`;
    field("details-body").replaceChildren(...details(cell).filter((node) => node !== null));
    opener = button;
    dialog.showModal();
  }

  table.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-cell]");
    if (button) open(button);
  });
  field("details-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => opener && opener.focus());
  form.addEventListener("input", applyFilters);
  form.addEventListener("submit", (event) => event.preventDefault());
  field("f-clear").addEventListener("click", () => {
    form.reset();
    applyFilters();
  });
  applyFilters();
})();
