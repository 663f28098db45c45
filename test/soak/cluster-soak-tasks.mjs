// The cluster soak's task: a value that names its own item (`id:` and `bytes` characters more).
export const soakEcho = (id, bytes) => `${id}:${'x'.repeat(bytes)}`;
