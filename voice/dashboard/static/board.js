// Refresh the live board's panels in place every few seconds (no full reload, no flicker).
(function () {
  const board = document.getElementById("board");
  const stamp = document.getElementById("updated");
  if (!board) return;
  async function refresh() {
    try {
      const response = await fetch(board.dataset.src, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" });
      // Redirected means the session timed out: reload, which lands on the login page.
      if (response.redirected) { window.location.reload(); return; }
      if (!response.ok) { stamp.textContent = "Not updating: the server answered " + response.status; return; }
      const html = await response.text();
      if (html !== board.innerHTML) board.innerHTML = html;
      stamp.textContent = "Updated " + new Date().toLocaleTimeString([], { hour: "numeric", minute: "2-digit", second: "2-digit", timeZone: board.dataset.zone });
    } catch (err) {
      stamp.textContent = "Not updating: connection lost";
    }
  }
  setInterval(refresh, 3000);
})();
