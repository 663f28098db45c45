// ClusterPool and procpool/task: what it does not carry yet is refused, never ignored.
import { describe, expect, it } from 'vitest';
import { ClusterPool } from 'procpool/cluster';
import { tasksModule } from './harness.js';

describe('ClusterPool: procpool/task features it does not support yet', () => {
  it('a call with onMessage is refused with a TypeError that says why; killGrace and finalizer are unknown options', async () => {
    // Nothing is sent: the refusals come before any use of Redis (this port has no server).
    const pool = new ClusterPool(tasksModule, { redis: 'redis://127.0.0.1:9', workerTimeout: 1000, unavailableTimeout: 1000 });
    try {
      await expect(pool.apply('double', [1], { onMessage: () => undefined })).rejects.toThrow(/does not support `onMessage`.*channel through Redis/);
      await expect(pool.map('double', [1], { onMessage: () => undefined })).rejects.toThrow(TypeError);
    } finally {
      await pool.terminate();
    }
    expect(() => new ClusterPool(tasksModule, { redis: 'redis://127.0.0.1:9', killGrace: 10 } as never)).toThrow(/Unknown option `killGrace`/);
    expect(() => new ClusterPool(tasksModule, { redis: 'redis://127.0.0.1:9', finalizer: 'x' } as never)).toThrow(/Unknown option `finalizer`/);
  });
});
