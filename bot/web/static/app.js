// Optional conveniences; every page works without JavaScript.
// On the calendar, the left and right arrow keys go to the previous and next week.
document.addEventListener("keydown", function (event) {
  if (event.altKey || event.ctrlKey || event.metaKey || /^(INPUT|SELECT|TEXTAREA)$/.test(event.target.tagName)) return;
  var rel = { ArrowLeft: "prev", ArrowRight: "next" }[event.key];
  var link = rel && document.querySelector('.weeknav a[rel="' + rel + '"]');
  if (link) window.location.href = link.href;
});
