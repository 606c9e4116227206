// Building DOM from data without ever parsing data as HTML: every text goes
// through textContent or a text node, every attribute through setAttribute.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(node, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.setAttribute("class", value);
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, value === true ? "" : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: `el("a", {href: "#/x", class: "y"}, "text", otherNode)`. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  apply(node, props);
  append(node, children);
  return node;
}

/** An SVG element, same shape as `el`. */
export function svg(tag, props = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  apply(node, props);
  append(node, children);
  return node;
}

/** A <select> with `[value, label]` options and `selected` chosen. */
export function select(name, options, selected = "") {
  const node = el("select", { name });
  for (const [value, label] of options) {
    const opt = el("option", { value }, label);
    if (value === selected) opt.selected = true;
    node.append(opt);
  }
  return node;
}
