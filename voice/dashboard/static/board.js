// Keep the live board current without disturbing the person using it.
//
// Every few seconds the board's panels are fetched and patched into the page node by node: an element the
// server still sends is kept and only its changed text or attributes are updated, so a keyboard user's focus
// (say, on a "Switch off" button) stays where it is. Comparing parsed nodes, not HTML strings, means markup
// the browser serialises differently (an apostrophe in a name) never counts as a change. What changed in a
// way that matters (someone's state, how many callers wait) is read out through a polite status region.
(function () {
  const board = document.getElementById("board");
  const stamp = document.getElementById("updated");
  const announcer = document.getElementById("board-announcer");
  if (!board) return;

  // Elements with an id are matched by it (people, callers); others by their position among siblings.
  const keyOf = (node) => (node.nodeType === Node.ELEMENT_NODE && node.id) || null;

  function patch(from, to) {
    if (from.nodeType !== Node.ELEMENT_NODE) {
      if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
      return;
    }
    for (const attr of Array.from(from.attributes)) {
      if (!to.hasAttribute(attr.name)) from.removeAttribute(attr.name);
    }
    for (const attr of Array.from(to.attributes)) {
      if (from.getAttribute(attr.name) !== attr.value) from.setAttribute(attr.name, attr.value);
    }
    patchChildren(from, to);
  }

  function sameKind(a, b) {
    return a.nodeType === b.nodeType && a.nodeName === b.nodeName && keyOf(a) === keyOf(b);
  }

  function patchChildren(from, to) {
    const olds = Array.from(from.childNodes);
    const byKey = new Map(olds.filter(keyOf).map((node) => [keyOf(node), node]));
    const unkeyed = olds.filter((node) => !keyOf(node));
    const wanted = [];
    for (const fresh of Array.from(to.childNodes)) {
      const key = keyOf(fresh);
      let match = key ? byKey.get(key) : unkeyed.shift();
      if (match && sameKind(match, fresh)) {
        if (key) byKey.delete(key);
        patch(match, fresh);
      } else {
        if (match && !key) unkeyed.unshift(match);
        match = document.importNode(fresh, true);
      }
      wanted.push(match);
    }
    for (const old of olds) {
      if (!wanted.includes(old)) old.remove();
    }
    // Insert or move only what is out of place: moving a focused element would drop its focus.
    wanted.forEach((node, index) => {
      if (from.childNodes[index] !== node) from.insertBefore(node, from.childNodes[index] || null);
    });
  }

  function snapshot(root) {
    const people = new Map();
    root.querySelectorAll("li[data-name]").forEach((li) => people.set(li.id, { name: li.dataset.name, state: li.dataset.state }));
    // Teams in the field: a safety change (overdue, escalating, acknowledged, back) is said first.
    const field = new Map();
    root.querySelectorAll("li[data-field]").forEach((li) => field.set(li.id, { name: li.dataset.field, state: li.dataset.fieldState }));
    const count = (id) => { const el = root.querySelector("#" + id); return el ? Number(el.dataset.count) : 0; };
    return { people, field, intake: count("board-intake"), holding: count("board-holding"), waiting: count("board-waiting") };
  }

  const plural = (n, one, many) => (n === 1 ? "1 " + one : n + " " + many);

  function changes(before, after) {
    const said = [];
    after.field.forEach((team, id) => {
      const was = before.field.get(id);
      if (!was) said.push(team.name + ": " + team.state);
      else if (was.state !== team.state) said.push(team.name + " is now " + team.state);
    });
    before.field.forEach((team, id) => {
      if (!after.field.has(id)) said.push(team.name + " is off the field list");
    });
    after.people.forEach((person, id) => {
      const was = before.people.get(id);
      if (was && was.state !== person.state) said.push(person.name + " is now " + person.state);
    });
    if (after.intake !== before.intake) {
      said.push(after.intake ? plural(after.intake, "caller", "callers") + " in the intake" : "No callers in the intake");
    }
    if (after.holding !== before.holding) {
      said.push(after.holding ? plural(after.holding, "caller", "callers") + " on hold" : "Nobody on hold");
    }
    if (after.waiting !== before.waiting) {
      said.push(after.waiting ? plural(after.waiting, "caller", "callers") + " waiting for a callback" : "Nobody is waiting for a callback");
    }
    return said;
  }

  function announce(messages) {
    if (!announcer || !messages.length) return;
    announcer.textContent = messages.join(". ") + ".";
  }

  async function refresh() {
    try {
      const response = await fetch(board.dataset.src, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" });
      // Redirected means the session timed out: reload, which lands on the login page.
      if (response.redirected) { window.location.reload(); return; }
      if (!response.ok) { stamp.textContent = "Not updating: the server answered " + response.status; return; }
      const fresh = document.createElement("template");
      fresh.innerHTML = await response.text();
      const focused = board.contains(document.activeElement) ? document.activeElement.id : null;
      const before = snapshot(board);
      patchChildren(board, fresh.content);
      // Should the focused control have gone (its person left the roster), focus is not left on nothing.
      if (focused && !board.contains(document.activeElement)) {
        const again = document.getElementById(focused);
        if (again) again.focus();
      }
      announce(changes(before, snapshot(board)));
      stamp.textContent = "Updated " + new Date().toLocaleTimeString([], { hour: "numeric", minute: "2-digit", second: "2-digit", timeZone: board.dataset.zone });
    } catch (err) {
      stamp.textContent = "Not updating: connection lost";
    }
  }
  setInterval(refresh, Number(board.dataset.interval) || 3000);
})();
