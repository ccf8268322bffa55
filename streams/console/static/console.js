// The console's only script: the live incident list and the "this incident changed"
// notice, both from the server-sent events of /console/live. Everything else is forms.
"use strict";

(function () {
  const base = document.body.dataset.base;
  const table = document.getElementById("incidents");
  const page = document.getElementById("incident");
  if (!table && !page) return;

  const when = (iso) => iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "–";

  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

  function badge(text, cls) {
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    return span;
  }

  function row(inc) {
    const tr = document.createElement("tr");
    tr.id = "row-" + inc.incident_id;
    tr.className = "st-" + inc.status + " fresh";
    const prio = cell("");
    prio.appendChild(badge(inc.priority, "prio p-" + inc.priority));
    const status = cell("", "status");
    status.appendChild(badge(inc.status, "badge " + inc.status));
    const title = cell("");
    const a = document.createElement("a");
    a.href = base + "/incidents/" + encodeURIComponent(inc.incident_id);
    a.textContent = inc.title;
    title.appendChild(a);
    tr.append(prio, status, title, cell(inc.service || "–"), cell(inc.team || "–"),
      cell(String(inc.alert_count), "count"), cell(when(inc.opened_at)),
      cell(when(inc.updated_at), "updated"));
    return tr;
  }

  function wanted(inc) {
    const status = table.dataset.status ? table.dataset.status.split(",") : [];
    if (status.length && !status.includes(inc.status)) return false;
    const q = (table.dataset.q || "").toLowerCase();
    return !q || inc.title.toLowerCase().includes(q) ||
      Object.entries(inc.labels).some(([k, v]) => (k + "=" + v).toLowerCase().includes(q));
  }

  function onList(inc) {
    const old = document.getElementById("row-" + inc.incident_id);
    const tbody = table.tBodies[0];
    if (!wanted(inc)) {
      if (old) old.remove();
    } else if (old) {
      old.replaceWith(row(inc));
    } else {
      tbody.insertBefore(row(inc), tbody.firstChild);
    }
    document.getElementById("empty").hidden = tbody.rows.length > 0;
  }

  function onPage(inc) {
    if (inc.incident_id !== page.dataset.id || inc.version <= Number(page.dataset.version)) return;
    redraw();
  }

  function redraw() {
    const typing = Array.from(page.querySelectorAll("input[type=text]")).some((i) => i.value);
    if (typing) {
      document.getElementById("changed").hidden = false;
    } else {
      window.location.replace(window.location.pathname);
    }
  }

  const live = document.getElementById("live");
  const since = (table || page).dataset.since;
  const watch = page ? "&incident=" + encodeURIComponent(page.dataset.id) +
    "&seq=" + encodeURIComponent(page.dataset.seq) : "";
  const source = new EventSource(base + "/live?since=" + encodeURIComponent(since) + watch);
  source.onopen = () => { if (live) live.className = "live on"; };
  source.onerror = () => { if (live) live.className = "live off"; };
  source.addEventListener("incident", (ev) => {
    const inc = JSON.parse(ev.data);
    if (table) onList(inc);
    if (page) onPage(inc);
  });
  source.addEventListener("timeline", () => { if (page) redraw(); });
  // a link followed or a form sent: a change arriving meanwhile must not pull the
  // browser back to this page (it redrew itself over the page the reader asked for)
  window.addEventListener("pagehide", () => source.close());
  document.addEventListener("click", (ev) => {
    if (ev.target instanceof Element && ev.target.closest("a[href], button")) source.close();
  });
})();
