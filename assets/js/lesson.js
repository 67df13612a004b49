// Folds every solution box behind a button, closes the episode menu after a click, and lets
// the keyboard reach code boxes that scroll sideways. Without JavaScript the solutions simply
// stay visible.
(function () {
  "use strict";

  function foldSolution(box, index) {
    var heading = box.firstElementChild;
    if (!heading || !/^H[1-6]$/.test(heading.tagName)) {
      return;
    }
    var body = document.createElement("div");
    body.className = "fold-body";
    body.id = "solution-body-" + index;
    body.hidden = true;
    while (heading.nextSibling) {
      body.appendChild(heading.nextSibling);
    }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "fold-toggle";
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", body.id);
    button.textContent = heading.textContent;
    button.addEventListener("click", function () {
      var open = button.getAttribute("aria-expanded") === "true";
      button.setAttribute("aria-expanded", open ? "false" : "true");
      body.hidden = open;
    });
    heading.textContent = "";
    heading.appendChild(button);
    box.appendChild(body);
    box.classList.add("folded");
  }

  function closeMenuOnOutsideClick() {
    var menu = document.querySelector(".navbar-episodes details");
    if (!menu) {
      return;
    }
    document.addEventListener("click", function (event) {
      if (menu.open && !menu.contains(event.target)) {
        menu.open = false;
      }
    });
  }

  // A code box wider than the page scrolls; it must take the keyboard focus so that it can be
  // scrolled without a mouse (WCAG 2.1.1). Checked again when the window or a solution changes.
  function focusScrollableCode() {
    document.querySelectorAll("pre").forEach(function (pre) {
      if (pre.scrollWidth > pre.clientWidth) {
        pre.tabIndex = 0;
      } else {
        pre.removeAttribute("tabindex");
      }
    });
  }

  document.querySelectorAll("blockquote.solution").forEach(foldSolution);
  closeMenuOnOutsideClick();
  focusScrollableCode();
  window.addEventListener("resize", focusScrollableCode);
  document.querySelectorAll("button.fold-toggle").forEach(function (button) {
    button.addEventListener("click", focusScrollableCode);
  });
})();
