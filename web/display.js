// Draws a neuroscope.display value: {neuroscope_display: 1, title, text, parts: [{view, props, title}]},
// what neuroscope.show(), neuroscope.inspect() and the visualizers return in the Lens notebook
// and what their Jupyter HTML draws. Each part is one Lens view; a part that cannot be drawn
// shows its error in place, so the others still draw.

/** True for a value built by neuroscope.display (a dict with the neuroscope_display marker). */
export const isDisplay = (value) => Boolean(value && typeof value === "object" && value.neuroscope_display === 1
  && Array.isArray(value.parts));

/** Appends one section per part to `el`: its title, then the view drawn with render(el, View, props). */
export function drawParts(el, parts, views, render) {
  for (const part of parts) {
    const section = document.createElement("section");
    section.className = "nsd-part";
    section.dataset.view = part.view;
    if (part.title) {
      const title = document.createElement("div");
      title.className = "nsd-part-title";
      title.textContent = part.title;
      title.style.cssText = "font: 600 13px system-ui, sans-serif; margin: 10px 0 4px;";
      section.append(title);
    }
    const body = document.createElement("div");
    section.append(body);
    el.append(section);
    const View = views[part.view];
    try {
      if (!View) throw new TypeError(`no view named ${part.view}; expected one of ${Object.keys(views).join(", ")}`);
      render(body, View, part.props ?? {});
    } catch (error) {
      body.className = "view-error";
      body.textContent = `This view could not be drawn: ${error.name}: ${error.message}`;
    }
  }
}
