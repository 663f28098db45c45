// Child of the floor pool (bench/floor.ts): runs one item per message.
import * as tasks from './tasks.mjs';

process.on('message', (message) => {
  const { id, task, args } = message;
  try {
    process.send({ id, ok: true, value: tasks[task](...args) });
  } catch (error) {
    process.send({ id, ok: false, error });
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
