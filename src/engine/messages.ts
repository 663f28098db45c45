/**
 * Delivery of procpool/task's messages to a call's `onMessage`. The child
 * sends an item's messages before its outcomes on one ordered channel, so
 * handing each to the callback as it is read keeps both rules (in order,
 * before the result) with no buffering. A callback that throws fails its call.
 */
import type { MessageInfo } from '../options.js';
import type { Attempt } from './backend.js';

/** The call wants nothing more of `attempt`: its running item is told (procpool/task's signal) where the runner can. */
export function dropAttempt(attempt: Attempt): void {
  if (attempt.cancel === undefined) attempt.skip();
  else attempt.cancel();
}

/** Calls `onMessage`; its throw fails `call`. */
export function deliver(onMessage: (value: unknown, info: MessageInfo) => void, value: unknown, info: MessageInfo, call: { fail(error: unknown): void }): void {
  try {
    onMessage(value, info);
  } catch (error) {
    call.fail(error);
  }
}
