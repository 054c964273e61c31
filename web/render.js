// The one entry point for drawing a view: render(el, View, props).
//
// A View is a module (or object) exporting `name` and `draw(el, props)`; it builds its pixels
// into `el` from props alone, and reports interaction only through callbacks in props
// (onHover, onSelect, onToggle, ...), so the app owns all state and re-renders on change.
// render() reuses `el`: it empties it, tags it with the view's name and calls draw.

import {ensureStyles} from "./views/common.js";

/**
 * Draws `View` with `props` into `el` (replacing what was there); returns `el`.
 * Throws a TypeError naming what was passed when `el` is not an element or `View` has no draw().
 */
export function render(el, View, props = {}) {
  if (!(el instanceof Element)) {
    throw new TypeError(`render: el must be a DOM Element, got ${el === null ? "null" : typeof el}`);
  }
  if (!View || typeof View.draw !== "function") {
    const keys = View && typeof View === "object" ? Object.keys(View).join(", ") || "none" : typeof View;
    throw new TypeError(`render: View must export draw(el, props); got exports: ${keys}`);
  }
  ensureStyles(el.ownerDocument);
  el.replaceChildren();
  el.classList.add("nsv");
  el.dataset.view = View.name ?? "view";
  View.draw(el, props ?? {});
  return el;
}
