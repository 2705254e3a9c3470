// The clinician's page: a form generated from the guideline's facts, evaluated as one types.
// Plain JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

const GUIDELINE = document.body.dataset.guideline;
const WORDS = {
  fr: {unknown: "inconnu", yes: "oui", no: "non", none: "aucun", why: "Pourquoi", source: "Source",
       action: "Actions", caution: "Mises en garde", referral: "Avis spécialisés", information: "Information",
       undetermined: "Décisions non déterminées", needs: "il manque", review: "Document de revue",
       print: "Imprimer", date: "Date d'évaluation", patient: "Patient", results: "Recommandations",
       inputs: "Données saisies", noRec: "Aucune recommandation.", failed: "Évaluation impossible : ",
       decision: {now: "Débuter maintenant", deferred: "Début différé", not_indicated: "Pas d'indication",
                  already_started: "Traitement en cours", unknown: "Décision de début non déterminée"},
       version: "version", evaluated: "évalué le", dose: "Dose", schedule: "Schéma"},
  en: {unknown: "unknown", yes: "yes", no: "no", none: "none", why: "Why", source: "Source",
       action: "Actions", caution: "Cautions", referral: "Referrals", information: "Information",
       undetermined: "Undetermined decisions", needs: "needs", review: "Review document",
       print: "Print", date: "Evaluation date", patient: "Patient", results: "Recommendations",
       inputs: "Inputs", noRec: "No recommendation.", failed: "Cannot evaluate: ",
       decision: {now: "Start now", deferred: "Start deferred", not_indicated: "Not indicated",
                  already_started: "On treatment", unknown: "Start decision undetermined"},
       version: "version", evaluated: "evaluated on", dose: "Dose", schedule: "Schedule"},
};
const GROUPS = [["action", ["action"]], ["caution", ["warning", "contraindication"]],
                ["referral", ["referral"]], ["information", ["information"]]];
let lang = "fr";
let form = null;
let timer = null;
let counter = 0;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value; else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

async function loadForm() {
  const kept = collect(); // the values typed so far, read with the fields they were typed in
  const response = await fetch(`/api/g/${GUIDELINE}/form?lang=${lang}`);
  form = await response.json();
  const w = WORDS[lang] || WORDS.en;
  document.documentElement.lang = lang;
  document.title = form.title;
  document.getElementById("title").textContent = form.title;
  document.getElementById("subtitle").textContent = `${form.id} — ${w.version} ${form.version}`;
  document.getElementById("review").textContent = w.review;
  document.getElementById("review").href = `/g/${GUIDELINE}/review?lang=${lang}`;
  document.getElementById("print").textContent = w.print;
  document.getElementById("form-title").textContent = w.patient;
  document.getElementById("results-title").textContent = w.results;
  document.getElementById("summary-title").textContent = w.inputs;
  document.querySelector("label[for=date]").textContent = w.date;
  const box = document.getElementById("fields");
  box.replaceChildren(...form.facts.map((fact) => field(fact, w)));
  restore(kept);
}

function field(fact, w) {
  const id = `f-${fact.name}`;
  const help = fact.description ? el("p", {class: "help", id: `${id}-help`, text: fact.description}) : null;
  const error = el("p", {class: "error", id: `${id}-error`, hidden: ""});
  if (fact.type === "boolean" || fact.type === "list") {
    const box = el("fieldset", {class: "field", id: `${id}-box`, "data-fact": fact.name});
    box.append(el("legend", {text: fact.label}));
    if (fact.type === "boolean") {
      for (const [value, label] of [["", w.unknown], ["true", w.yes], ["false", w.no]]) {
        const input = el("input", {type: "radio", name: id, id: `${id}-${value || "unknown"}`, value});
        if (value === "") input.checked = true;
        box.append(el("label", {}, input, ` ${label}`));
      }
    } else {
      const unknown = el("input", {type: "checkbox", id: `${id}-unknown`, "data-unknown": "1", checked: ""});
      box.append(el("label", {}, unknown, ` ${w.unknown}`));
      for (const option of fact.values) {
        const input = el("input", {type: "checkbox", name: id, id: `${id}-${option.value}`, value: option.value});
        input.addEventListener("change", () => { if (input.checked) unknown.checked = false; });
        box.append(el("label", {}, input, ` ${option.label}`));
      }
    }
    box.append(help || "", error);
    return box;
  }
  const box = el("p", {class: "field", id: `${id}-box`, "data-fact": fact.name});
  box.append(el("label", {for: id, text: fact.label + (fact.unit && fact.units.length < 2 ? ` (${fact.unit})` : "")}));
  let input;
  if (fact.type === "enum") {
    input = el("select", {id, name: fact.name});
    input.append(el("option", {value: "", text: `— ${w.unknown} —`}));
    for (const option of fact.values) input.append(el("option", {value: option.value, text: option.label}));
  } else if (fact.type === "date") {
    input = el("input", {type: "date", id, name: fact.name});
  } else {
    input = el("input", {type: "number", id, name: fact.name, step: fact.type === "integer" ? "1" : "any"});
    if (fact.min !== null) input.min = fact.min;
    if (fact.max !== null) input.max = fact.max;
  }
  input.setAttribute("aria-describedby", `${id}-error${help ? ` ${id}-help` : ""}`);
  box.append(" ", input);
  if (fact.units && fact.units.length > 1) {
    const unit = el("select", {id: `${id}-unit`, "aria-label": `${fact.label}: unit`});
    for (const u of fact.units) unit.append(el("option", {value: u, text: u}));
    box.append(" ", unit);
  }
  box.append(help || "", error);
  return box;
}

function collect() {
  const facts = {};
  if (!form) return facts;
  for (const fact of form.facts) {
    const id = `f-${fact.name}`;
    if (fact.type === "boolean") {
      const checked = document.querySelector(`input[name="${id}"]:checked`);
      if (checked && checked.value) facts[fact.name] = checked.value === "true";
    } else if (fact.type === "list") {
      if (!document.getElementById(`${id}-unknown`).checked) {
        facts[fact.name] = [...document.querySelectorAll(`input[name="${id}"]:checked`)].map((i) => i.value);
      }
    } else {
      const value = document.getElementById(id).value;
      if (value === "") continue;
      if (fact.type === "quantity") {
        const unit = document.getElementById(`${id}-unit`);
        facts[fact.name] = {value: Number(value), unit: unit ? unit.value : fact.unit};
      } else if (fact.type === "number" || fact.type === "integer") {
        facts[fact.name] = Number(value);
      } else {
        facts[fact.name] = value;
      }
    }
  }
  return facts;
}

function restore(facts) {
  for (const [name, value] of Object.entries(facts)) {
    const id = `f-${name}`;
    if (typeof value === "boolean") {
      document.getElementById(`${id}-${value}`).checked = true;
    } else if (Array.isArray(value)) {
      document.getElementById(`${id}-unknown`).checked = false;
      for (const box of document.querySelectorAll(`input[name="${id}"]`)) box.checked = value.includes(box.value);
    } else if (value && typeof value === "object") {
      document.getElementById(id).value = value.value;
      const unit = document.getElementById(`${id}-unit`);
      if (unit) unit.value = value.unit;
    } else if (document.getElementById(id)) {
      document.getElementById(id).value = value;
    }
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(evaluate, 250);
}

async function evaluate() {
  const mine = ++counter;
  const facts = collect();
  const date = document.getElementById("date").value;
  const response = await fetch(`/api/g/${GUIDELINE}/evaluate?lang=${lang}${date ? `&date=${date}` : ""}`,
                               {method: "POST", headers: {"Content-Type": "application/json"},
                                body: JSON.stringify(facts)});
  const data = await response.json();
  if (mine !== counter) return; // a newer evaluation is under way
  for (const box of document.querySelectorAll(".field")) {
    box.classList.remove("needed");
    const error = box.querySelector(".error");
    if (error) { error.hidden = true; error.textContent = ""; }
    const input = box.querySelector("input, select");
    if (input) input.removeAttribute("aria-invalid");
  }
  const failure = document.getElementById("failure");
  failure.hidden = true;
  if (!response.ok) {
    for (const problem of data.errors || []) {
      const box = document.getElementById(`f-${problem.fact}-box`);
      if (box) {
        const error = box.querySelector(".error");
        error.textContent = problem.message;
        error.hidden = false;
        const input = box.querySelector("input, select");
        if (input) input.setAttribute("aria-invalid", "true");
      } else {
        failure.textContent = (WORDS[lang] || WORDS.en).failed + problem.message;
        failure.hidden = false;
      }
    }
    return;
  }
  show(data, facts);
}

function show(data, facts) {
  const w = WORDS[lang] || WORDS.en;
  const decision = (data.values.start_decision || {}).value || "unknown";
  const banner = document.getElementById("decision");
  const decided = data.recommendations.find((r) => r.id === "start-now" || r.id === "start-deferred");
  banner.replaceChildren(el("p", {class: `decision ${decision}`, id: "start-decision",
                                  text: w.decision[decision] + (decided ? ` — ${decided.text}` : "")}));
  document.getElementById("borderline").replaceChildren(
    ...data.borderline.map((b) => el("p", {class: "borderline", text: `⚠ ${b.text}`})));
  const groups = [];
  for (const [key, kinds] of GROUPS) {
    const recs = data.recommendations.filter((r) => kinds.includes(r.kind));
    if (!recs.length) continue;
    groups.push(el("div", {class: "group", id: `group-${key}`}, el("h3", {text: w[key]}), ...recs.map((r) => card(r, w))));
  }
  if (!groups.length) groups.push(el("p", {text: w.noRec}));
  document.getElementById("groups").replaceChildren(...groups);
  const needed = new Set();
  const list = el("ul");
  for (const u of data.undetermined) {
    for (const name of u.needs) needed.add(name);
    const labels = u.needs.map((n) => (data.values[n] || {}).label || n).join(", ");
    list.append(el("li", {text: `${u.title} : ${w.needs} ${labels}`}));
  }
  document.getElementById("undetermined").replaceChildren(
    ...(data.undetermined.length ? [el("h3", {text: `${w.undetermined} (${data.undetermined.length})`}), list] : []));
  for (const name of needed) {
    const box = document.getElementById(`f-${name}-box`);
    if (box) box.classList.add("needed");
  }
  const rows = Object.keys(facts).map((name) => {
    const value = data.values[name] || {};
    return el("tr", {}, el("th", {text: value.label || name}), el("td", {text: value.display || ""}));
  });
  rows.unshift(el("tr", {}, el("th", {text: w.evaluated}), el("td", {text: data.evaluated_on})));
  document.querySelector("#inputs tbody").replaceChildren(...rows);
}

function card(rec, w) {
  const node = el("article", {class: `rec ${rec.kind}`, id: `rec-${rec.id}`}, el("p", {text: rec.text}));
  if (rec.dose) node.append(el("p", {class: "dose", text: `${w.dose}: ${rec.dose_text}`}));
  if (rec.schedule_text) node.append(el("p", {class: "dose", text: `${w.schedule}: ${rec.schedule_text}`}));
  const why = el("ul");
  for (const value of rec.why.values) {
    why.append(el("li", {text: `${value.label || value.name} = ${value.display}${value.how ? ` — ${value.how}` : ""}`}));
  }
  const section = rec.source && rec.source.section ? `§${rec.source.section}` : "";
  why.append(el("li", {text: `${w.source}: ${section} ${rec.source && rec.source.table ? rec.source.table : ""}`.trim()}));
  node.append(el("details", {}, el("summary", {text: w.why}), why));
  return node;
}

document.addEventListener("DOMContentLoaded", async () => {
  document.getElementById("date").valueAsDate = new Date();
  await loadForm();
  document.getElementById("patient").addEventListener("input", schedule);
  document.getElementById("patient").addEventListener("change", schedule);
  for (const button of document.querySelectorAll("button.lang")) {
    button.addEventListener("click", async () => {
      lang = button.dataset.lang;
      for (const other of document.querySelectorAll("button.lang")) other.setAttribute("aria-pressed", String(other === button));
      await loadForm();
      await evaluate();
    });
  }
  document.getElementById("print").addEventListener("click", () => window.print());
  await evaluate();
  document.body.dataset.ready = "1";
});
