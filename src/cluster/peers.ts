/**
 * bullmq and ioredis are optional peers, loaded with require() by their one
 * home each (queue.ts, redis.ts): a program that imports the cluster
 * without them is told what to install, not which internal file failed to
 * load (a static import would fail before any code of ours runs).
 */

/** `load()`'s module; the install line when `name` is not installed. */
export function loadPeer<T>(name: 'bullmq' | 'ioredis', load: () => T): T {
  try {
    return load();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'MODULE_NOT_FOUND' || !(error as Error).message.includes(`'${name}'`)) throw error;
    throw new Error(`procpool/cluster needs its optional peer dependencies bullmq and ioredis (${name} is not installed): npm install bullmq@6 ioredis@5`, { cause: error });
  }
}
