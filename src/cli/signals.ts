/**
 * Ctrl-C. The first stops taking input and lets running items finish; the
 * second kills them; a third leaves at once, should the clean-up itself hang.
 */

/** What the run does on the first and the second Ctrl-C. */
export interface InterruptHandlers {
  stop(): void;
  kill(): void;
}

/** Takes over SIGINT until the returned function is called. */
export function onInterrupt(handlers: InterruptHandlers): () => void {
  let count = 0;
  const listener = (): void => {
    count++;
    if (count === 1) handlers.stop();
    else if (count === 2) handlers.kill();
    else process.exit(130);
  };
  process.on('SIGINT', listener);
  return () => void process.off('SIGINT', listener);
}
