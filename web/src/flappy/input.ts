// The Flappy controls: Space or a click on the canvas flaps, R restarts. Keys typed into a form field, and keys with
// Ctrl, Cmd or Alt, are left alone.
export interface FlappyActions {
  flap(): void;
  restart(): void;
}

function isTyping(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA"].includes(target.tagName));
}

/** Listens until the returned function is called. */
export function listenInput(canvas: HTMLCanvasElement, actions: FlappyActions): () => void {
  const onKey = (e: KeyboardEvent) => {
    if (isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.code === "Space") {
      e.preventDefault();
      actions.flap();
    } else if (e.key === "r" || e.key === "R") {
      e.preventDefault();
      actions.restart();
    }
  };
  const onClick = () => {
    canvas.focus({ preventScroll: true });
    actions.flap();
  };
  window.addEventListener("keydown", onKey);
  canvas.addEventListener("pointerdown", onClick);
  return () => {
    window.removeEventListener("keydown", onKey);
    canvas.removeEventListener("pointerdown", onClick);
  };
}
