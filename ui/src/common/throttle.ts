/**
 * Calls `run` at most once per `ms` however often it is asked, the last ask never lost: a burst of
 * events becomes one reload now and one at the end.
 */
export function throttle(run: () => void, ms: number): { ask: () => void; cancel: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let last = 0;
  let pending = false;
  const fire = () => {
    timer = undefined;
    pending = false;
    last = Date.now();
    run();
  };
  return {
    ask() {
      if (pending) return;
      pending = true;
      timer = setTimeout(fire, Math.max(0, last + ms - Date.now()));
    },
    cancel() {
      clearTimeout(timer);
      pending = false;
    },
  };
}
