// Plain-DOM helpers shared by the game pages (no framework): an element creator, a range slider with its live
// readout, and a labelled checkbox.

/** A `tag` element with `props` assigned and `children` appended. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

export function slider(id: string, min: number, max: number, step: number, value: number): HTMLInputElement {
  return el("input", { id, type: "range", min: String(min), max: String(max), step: String(step), value: String(value) });
}

/** An <output> showing `input`'s value with `digits` decimals, kept up to date while it moves. */
export function readout(input: HTMLInputElement, digits: number): HTMLOutputElement {
  const out = el("output", { textContent: Number(input.value).toFixed(digits) });
  input.addEventListener("input", () => (out.textContent = Number(input.value).toFixed(digits)));
  return out;
}

/** A checkbox and the <label> around it that reads `text`. */
export function checkbox(id: string, text: string): { input: HTMLInputElement; label: HTMLLabelElement } {
  const input = el("input", { id, type: "checkbox" });
  return { input, label: el("label", {}, input, ` ${text}`) };
}
