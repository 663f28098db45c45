// Child of the floor pool (bench/floor.ts): runs one item per message.
import * as tasks from './tasks.mjs';

process.on('message', (message) => {
  const { id, task, args, chunk } = message;
  try {
    // A chunk (the same-chunksize map): one message, one result array.
    process.send({ id, ok: true, value: chunk === undefined ? tasks[task](...args) : chunk.map((item) => tasks[task](item)) });
  } catch (error) {
    process.send({ id, ok: false, error });
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
