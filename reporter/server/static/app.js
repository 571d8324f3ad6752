// Progressive enhancement only: the pages work without it.
document.addEventListener("DOMContentLoaded", function () {
  var selects = document.querySelectorAll("select.autosubmit");
  for (var i = 0; i < selects.length; i++) {
    selects[i].addEventListener("change", function (ev) { ev.target.form.submit(); });
  }
});
