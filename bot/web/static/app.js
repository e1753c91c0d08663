// Optional conveniences; every page works without JavaScript.
// On the calendar, the left and right arrow keys go to the previous and next week.
document.addEventListener("keydown", function (event) {
  if (event.altKey || event.ctrlKey || event.metaKey || /^(INPUT|SELECT|TEXTAREA)$/.test(event.target.tagName)) return;
  var rel = { ArrowLeft: "prev", ArrowRight: "next" }[event.key];
  var link = rel && document.querySelector('.weeknav a[rel="' + rel + '"]');
  if (link) window.location.href = link.href;
});

// The story editor: as the operator types, the server validates and renders the edit (the same code
// as `load` and `preview`) and sends back the preview's HTML, which replaces the one shown. Nothing is
// rendered or counted here; without JavaScript the Preview button does the same on submit.
(function () {
  var form = document.querySelector("form.editform[data-preview]");
  if (!form || !window.fetch) return;
  var target = document.querySelector("#preview .pvbody");
  var state = form.querySelector(".pvstate");
  var timer = null, sent = 0;
  function refresh() {
    var number = ++sent;
    var body = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (typeof value === "string" && name !== "do") body.append(name, value); // files go with Preview or Save
    });
    if (state) state.textContent = "checking…";
    fetch(form.getAttribute("data-preview"), {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      if (!response.ok) throw new Error("the preview answered " + response.status);
      return response.json();
    }).then(function (data) {
      if (number !== sent) return; // a later edit's answer is on its way
      target.innerHTML = data.html;
      if (state) state.textContent = data.ok ? "preview up to date" : "this edit would be refused";
    }).catch(function (error) {
      if (number === sent && state) state.textContent = "no live preview (" + error.message + "): use Preview";
    });
  }
  form.addEventListener("input", function (event) {
    if (event.target.type === "file") return;
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
  // A picture chosen is sent at once (as the Preview button sends it): the server checks and prepares it
  // as `load` does, and the page comes back with the picture in the form and in the preview.
  form.addEventListener("change", function (event) {
    if (event.target.type !== "file" || !event.target.files.length) return;
    var button = form.querySelector('button[name="do"][value="preview"]');
    if (state) state.textContent = "sending the picture…";
    if (form.requestSubmit) form.requestSubmit(button); else button.click();
  });
})();
