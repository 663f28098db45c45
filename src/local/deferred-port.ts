/**
 * A child port whose process starts once the spawner is loaded. The spawner
 * (execa and its module graph) is most of what importing procpool would
 * cost, so it loads when the first pool starts its first child, not on
 * `import`. Until then the port records what is asked of it and replays it
 * on the real child, in order.
 */
import type { ParentMessage } from '../protocol.js';
import { probeSetpriv } from './orphan-guard.js';
import type { ChildOutput, ChildPort, SpawnPort } from './spawn.js';

type ExitListener = (exitCode: number | null, signal: NodeJS.Signals | null) => void;

let spawner: Promise<SpawnPort> | undefined;
let loaded: SpawnPort | undefined;

/** Starts loading the spawner (once), and probing for setpriv beside it. */
function loadSpawner(): Promise<SpawnPort> {
  spawner ??= Promise.all([import('./spawn.js'), probeSetpriv()]).then(([module, setpriv]) => {
    module.useSetpriv(setpriv);
    return (loaded = module.spawnChild);
  });
  return spawner;
}

/** Spawns at once when the spawner is loaded, else through a deferred port. */
export const spawnLazily: SpawnPort = (options, output) => (loaded === undefined ? new DeferredPort(options, output) : loaded(options, output));

type State = { kind: 'loading' } | { kind: 'spawned'; port: ChildPort } | { kind: 'killed'; signal: NodeJS.Signals } | { kind: 'failed'; error: Error };

class DeferredPort implements ChildPort {
  readonly outputDone: Promise<void>;
  #state: State = { kind: 'loading' };
  #sent: ParentMessage[] = [];
  #onMessage: Array<(message: unknown) => void> = [];
  #onDisconnect: Array<() => void> = [];
  #onExit: ExitListener[] = [];
  #ref: boolean | undefined;

  constructor(options: Parameters<SpawnPort>[0], output: ChildOutput) {
    this.outputDone = loadSpawner().then(
      (spawn) => {
        if (this.#state.kind === 'loading') this.#spawn(spawn(options, output));
        return this.#state.kind === 'spawned' ? this.#state.port.outputDone : undefined;
      },
      (error: unknown) => {
        this.#state = { kind: 'failed', error: error instanceof Error ? error : new Error(String(error)) };
        for (const listener of this.#onExit) listener(null, null);
      },
    );
  }

  get pid(): number | undefined {
    return this.#state.kind === 'spawned' ? this.#state.port.pid : undefined;
  }

  get spawnError(): Error | undefined {
    if (this.#state.kind === 'failed') return this.#state.error;
    return this.#state.kind === 'spawned' ? this.#state.port.spawnError : undefined;
  }

  get stderrTail(): string {
    return this.#state.kind === 'spawned' ? this.#state.port.stderrTail : '';
  }

  send(message: ParentMessage): boolean {
    if (this.#state.kind === 'spawned') return this.#state.port.send(message);
    if (this.#state.kind === 'loading') this.#sent.push(message);
    return true;
  }

  onMessage(listener: (message: unknown) => void): void {
    if (this.#state.kind === 'spawned') this.#state.port.onMessage(listener);
    else this.#onMessage.push(listener);
  }

  onDisconnect(listener: () => void): void {
    if (this.#state.kind === 'spawned') this.#state.port.onDisconnect(listener);
    else this.#onDisconnect.push(listener);
  }

  onExit(listener: ExitListener): void {
    if (this.#state.kind === 'spawned') this.#state.port.onExit(listener);
    else this.#onExit.push(listener);
  }

  /** Before the process exists, a kill means it never starts: it "exits" by that signal, a turn later. */
  kill(signal: NodeJS.Signals): void {
    if (this.#state.kind === 'spawned') return this.#state.port.kill(signal);
    if (this.#state.kind !== 'loading') return;
    this.#state = { kind: 'killed', signal };
    setImmediate(() => {
      for (const listener of this.#onDisconnect) listener();
      for (const listener of this.#onExit) listener(null, signal);
    });
  }

  setRef(on: boolean): void {
    if (this.#state.kind === 'spawned') this.#state.port.setRef(on);
    else this.#ref = on;
  }

  #spawn(port: ChildPort): void {
    this.#state = { kind: 'spawned', port };
    for (const listener of this.#onMessage) port.onMessage(listener);
    for (const listener of this.#onDisconnect) port.onDisconnect(listener);
    for (const listener of this.#onExit) port.onExit(listener);
    if (this.#ref !== undefined) port.setRef(this.#ref);
    // The checks that made these messages sendable ran in the parent already (initArgs).
    for (const message of this.#sent.splice(0)) if (!port.send(message)) port.kill('SIGKILL');
  }
}
